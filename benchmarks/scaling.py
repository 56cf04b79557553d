"""Monte Carlo rollout throughput with K = 1, 2, 4 rollout workers (Ray actors) on this machine.

One call = Q for a batch of B sequences: B·N·T(T−1)/2 rollout tokens generated
and B·N·(T−1) completions scored by the discriminator. For each K the pool
splits the batch into K shards; ``ray_overhead_s`` is the K = 1 pool's time
minus the same engine in-process with the same threads (1), i.e. what shipping
weights-free shards and results through Ray costs per call.

Model of K workers on G GPUs (each GPU shared by K/G workers, ``num_gpus=G/K``):
a call costs  t(K) ≈ t_1 / min(K, C) + o  on C cores (CPU), and on GPUs
t(K) ≈ max(t_gpu / G, t_host / K) + o: a worker's GPU time t_gpu splits over
the G devices once each holds ≥ 1 worker, while the host-side work per shard
(t_host: launching kernels, the Python loop over T positions) splits over K, so
K = 2–4 workers per GPU hide the host time behind the device time; beyond that
only o (here ~tens of ms) grows. Efficiency vs K = 1 is t(1) / (K · t(K)) on
the available cores (K > C oversubscribes: efficiency falls as 1/K).
Prints a JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.models.discriminator import Discriminator  # noqa: E402
from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="B sequences per call")
    parser.add_argument("--num-rollouts", type=int, default=16, help="N")
    parser.add_argument("--workers", default="1,2,4", help="K values")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--discriminator", choices=("paper", "cpu"), default="cpu",
                        help="scorer inside the workers: the paper CNN or the cpu preset's narrower one")
    args = parser.parse_args()

    import ray

    from seqgan_rl.config import CPU_DISCRIMINATOR
    from seqgan_rl.distributed import MonteCarloWorker, RolloutPool, module_weights

    config = GeneratorConfig(vocab_size=5000, seq_len=20, emb_dim=32, hidden_dim=32)
    sizes = {} if args.discriminator == "paper" else dict(CPU_DISCRIMINATOR)
    disc_kwargs = {"vocab_size": config.vocab_size, "seq_len": config.seq_len, **sizes}
    torch.manual_seed(0)
    policy, disc = Generator(config), Discriminator(**disc_kwargs)
    sequences = policy.sample(args.batch).numpy()
    weights = (module_weights(policy, 1), module_weights(disc, 1))
    tokens_per_call = args.batch * args.num_rollouts * config.seq_len * (config.seq_len - 1) // 2
    cores = os.cpu_count() or 1

    # in-process, one thread: the work a single worker does
    torch.set_num_threads(1)
    local = MonteCarloWorker(config.__dict__, disc_kwargs, args.num_rollouts)
    local.set_weights(*weights)
    uniforms = np.random.default_rng(0).random((args.batch, config.seq_len - 1, args.num_rollouts, config.seq_len),
                                               dtype=np.float32)
    local.compute_q(sequences, uniforms)  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        local.compute_q(sequences, uniforms)
        times.append(time.perf_counter() - start)
    in_process_s = float(np.median(times))

    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False)
    results = {}
    for k in [int(k) for k in args.workers.split(",")]:
        pool = RolloutPool(k, config, disc_kwargs, num_rollouts=args.num_rollouts, num_cpus=min(1.0, cores / k))
        pool.sync(*weights)
        pool.compute_q(sequences)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pool.compute_q(sequences)
            times.append(time.perf_counter() - start)
        pool.shutdown()
        seconds = float(np.median(times))
        results[k] = {"seconds_per_call": seconds, "tokens_per_s": tokens_per_call / seconds}
    ray.shutdown()
    base = results[min(results)]["seconds_per_call"] * min(results)
    for k, entry in results.items():
        entry["efficiency_vs_k1"] = base / (k * entry["seconds_per_call"])
    k1 = results.get(1, {}).get("seconds_per_call")
    print(json.dumps({
        "benchmark": "scaling",
        "setting": {"batch": args.batch, "num_rollouts": args.num_rollouts, "seq_len": config.seq_len,
                    "vocab_size": config.vocab_size, "discriminator": args.discriminator,
                    "rollout_tokens_per_call": tokens_per_call},
        "in_process_1_thread_s": in_process_s,
        "ray_overhead_s": None if k1 is None else k1 - in_process_s,
        "workers": {str(k): v for k, v in results.items()},
        "cores": cores,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
