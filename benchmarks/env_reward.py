"""Cost of the token env's terminal reward from the discriminator actor: per episode, vs batched.

Each finished episode of ``TokenGenerationEnv`` asks the named discriminator
actor for one score (one Ray round trip). This measures, for a batch of 64
episodes of the paper setting (vocabulary 5,000, length 20): the actor called
once per episode (what the env does), the actor called once for the whole
batch, and the same model scoring in-process; and a whole batch of env episodes
(random tokens, 20 steps each) with the actor as the scorer. Prints a JSON
object as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--discriminator", choices=("paper", "cpu"), default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import ray

    from seqgan_rl.config import CPU_DISCRIMINATOR
    from seqgan_rl.distributed import start_discriminator_actor
    from seqgan_rl.models.discriminator import Discriminator
    from seqgan_rl_envs import TokenGenerationEnv

    vocab, length = 5000, 20
    sizes = {} if args.discriminator == "paper" else dict(CPU_DISCRIMINATOR)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    actor = start_discriminator_actor("env-reward-benchmark", vocab, length, discriminator_kwargs=sizes)
    tokens = np.random.default_rng(0).integers(0, vocab, (args.episodes, length))
    local = Discriminator(vocab, length, **sizes).eval()

    def median(fn) -> float:
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    per_episode = median(lambda: [ray.get(actor.score.remote(tokens[i : i + 1])) for i in range(args.episodes)])
    batched = median(lambda: ray.get(actor.score.remote(tokens)))
    in_process = median(lambda: local.score(torch.from_numpy(tokens)))
    envs = [TokenGenerationEnv(vocab_size=vocab, seq_len=length, scorer="env-reward-benchmark")
            for _ in range(args.episodes)]

    def run_episodes() -> None:
        for env, row in zip(envs, tokens):
            env.reset()
            for token in row:
                env.step(int(token))

    env_batch = median(run_episodes)
    ray.shutdown()
    print(json.dumps({
        "benchmark": "env_reward",
        "setting": {"episodes": args.episodes, "vocab_size": vocab, "seq_len": length,
                    "discriminator": args.discriminator},
        "actor_per_episode_s": per_episode,
        "actor_per_episode_ms_each": 1000 * per_episode / args.episodes,
        "actor_batched_s": batched,
        "in_process_batched_s": in_process,
        "env_episodes_with_actor_reward_s": env_batch,
        "reward_share_of_env_time": per_episode / env_batch,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
