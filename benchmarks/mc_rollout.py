"""Monte Carlo Q: the vectorised engine against the original loop structure.

Paper setting: B = 64 sequences, N = 16 rollouts, T = 20, vocabulary 5,000,
emb/hidden 32. Rollouts only, with a scorer that costs nothing, for the engine
and the reference loop (the original release's structure: for n in N, for
given in 1..T−1, a batch of T steps) in the same run; then the engine with the
paper's discriminator CNN scoring every completion (the original release's
``get_reward`` took 16.3 s per batch on a 2-core machine of this kind); then
a sweep of B and N (rollouts only). Prints a JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from _common import machine, median_seconds, paper_q_setting, pick_device  # noqa: E402
from reference_mc import reference_q  # noqa: E402

from seqgan_rl.mc import MonteCarloQ  # noqa: E402
from seqgan_rl.models.discriminator import Discriminator  # noqa: E402

ORIGINAL_GET_REWARD_S = 16.3


def free_scorer(tokens: torch.Tensor) -> torch.Tensor:
    """Costs nothing: isolates the rollouts."""
    return torch.zeros(tokens.shape[0], device=tokens.device)


def rollout_tokens(batch: int, rollouts: int, length: int) -> int:
    """Tokens sampled for one Q batch: each of the B·N rollouts of prefix t samples T − t tokens."""
    return batch * rollouts * length * (length - 1) // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip the sweep's largest settings")
    args = parser.parse_args()
    device = pick_device(args.device)
    batch, n = 64, 16
    config, policy, sequences, engine = paper_q_setting(device, batch, n)  # sequences: (64, 20)
    rng = torch.Generator(device=device).manual_seed(0)

    engine_s = median_seconds(lambda: engine(sequences, policy, free_scorer, generator=rng),
                              repeats=args.repeats, device=device)
    reference_s = median_seconds(lambda: reference_q(sequences, policy, free_scorer, n, generator=rng),
                                 repeats=1, warmup=0, device=device)
    discriminator = Discriminator(config.vocab_size, config.seq_len).to(device).eval()
    with_d_s = median_seconds(lambda: engine(sequences, policy, discriminator, generator=rng),
                              repeats=args.repeats, device=device)
    discriminator.score_precision = "int8"
    with_d_int8_s = median_seconds(lambda: engine(sequences, policy, discriminator, generator=rng),
                                   repeats=args.repeats, device=device) if device == "cpu" else None
    discriminator.score_precision = "fp32"
    scoring_only_s = median_seconds(
        lambda: discriminator.score(engine.rollouts(sequences, policy, torch.rand(batch, 19, n, 20)).reshape(-1, 20)),
        repeats=args.repeats, device=device) - engine_s

    sweep = {}
    for b in (64, 256, 1024):
        for rollouts in (16, 64):
            if args.quick and b * rollouts > 256 * 16:
                continue
            seqs = policy.sample(b)
            eng = MonteCarloQ(num_rollouts=rollouts)
            seconds = median_seconds(lambda eng=eng, seqs=seqs: eng(seqs, policy, free_scorer, generator=rng),
                                     repeats=1 if b * rollouts > 4096 else args.repeats, device=device)
            sweep[f"B{b}_N{rollouts}"] = {
                "B": b, "N": rollouts, "s_per_batch": seconds,
                "rollout_tokens_per_s": rollout_tokens(b, rollouts, config.seq_len) / seconds,
            }

    print(json.dumps({
        "setting": {"B": batch, "N": n, "T": config.seq_len, "vocab_size": config.vocab_size,
                    "emb_dim": config.emb_dim, "hidden_dim": config.hidden_dim},
        "engine_s_per_batch": engine_s,
        "reference_s_per_batch": reference_s,
        "speedup": reference_s / engine_s,
        "rollout_tokens_per_s": rollout_tokens(batch, n, config.seq_len) / engine_s,
        "engine_with_discriminator_s_per_batch": with_d_s,
        "engine_with_discriminator_int8_s_per_batch": with_d_int8_s,
        "discriminator_share_s_difference": with_d_s - engine_s,  # with D minus without: not timed alone
        "plain_scoring_of_all_rollouts_s": scoring_only_s,
        "original_get_reward_s": ORIGINAL_GET_REWARD_S,
        "speedup_with_discriminator_vs_original": ORIGINAL_GET_REWARD_S / with_d_s,
        "sweep": sweep,
        "machine": machine(device),
    }))


if __name__ == "__main__":
    main()
