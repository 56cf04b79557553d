"""Time the discriminator's scoring paths at the SeqGAN paper setting.

One Monte Carlo reward step scores B * N * (T - 1) rollouts plus the B originals:
64 * 16 * 19 + 64 = 19,520 sequences (vocabulary 5,000, T = 20). Prints one line per
path and, as the last line, a JSON object with the median seconds of each.

    python benchmarks/discriminator.py [--quick]
"""

from __future__ import annotations

import argparse
import json

import torch
from _common import machine, median_seconds

from seqgan_rl.models.discriminator import PRECISIONS, Discriminator

VOCAB, SEQ_LEN, BATCH, ROLLOUTS = 5_000, 20, 64, 16


def naive_scores(disc: Discriminator, tokens: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """P(real) through `forward` (nn.Conv1d path), in chunks so memory stays bounded."""
    with torch.no_grad():
        return torch.cat([disc(tokens[i : i + chunk]).softmax(dim=1)[:, 1] for i in range(0, len(tokens), chunk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 timed runs and skip the naive forward")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per path (default 5; --quick: 3)")
    args = parser.parse_args()
    repeats = 3 if args.quick else max(3, args.repeats)

    torch.manual_seed(0)
    disc = Discriminator(VOCAB, SEQ_LEN).eval()
    sequences = torch.randint(0, VOCAB, (BATCH, SEQ_LEN))  # (B, T)
    rollouts = torch.randint(0, VOCAB, (SEQ_LEN - 1, BATCH, ROLLOUTS, SEQ_LEN))  # (T-1, B, N, T)
    for t in range(1, SEQ_LEN):
        rollouts[t - 1, :, :, :t] = sequences[:, None, :t]
    everything = torch.cat([rollouts.reshape(-1, SEQ_LEN), sequences])  # (19,520, T)
    num_sequences = everything.shape[0]

    seconds: dict[str, float] = {}
    if not args.quick:
        seconds["naive_forward"] = median_seconds(lambda: naive_scores(disc, everything), repeats=repeats)
    for precision in PRECISIONS:
        seconds[f"score_{precision}"] = median_seconds(
            lambda precision=precision: disc.score(everything, precision=precision), repeats=repeats
        )
        # The originals are scored on their own, as the reward step has to.
        seconds[f"prefix_rollouts_{precision}"] = median_seconds(
            lambda precision=precision: (disc.score_prefix_rollouts(sequences, rollouts, precision=precision),
                                         disc.score(sequences)),
            repeats=repeats,
        )
    reference = disc.score(everything)
    max_abs_dp = {p: float((disc.score(everything, precision=p) - reference).abs().max()) for p in PRECISIONS}

    for name, value in seconds.items():
        print(f"{name:>24}: {value:7.3f} s  {num_sequences / value:9.0f} sequences/s")
    print(
        json.dumps(
            {
                "setting": {"vocab": VOCAB, "seq_len": SEQ_LEN, "batch": BATCH, "rollouts": ROLLOUTS},
                "num_sequences": num_sequences,
                "seconds": {k: round(v, 4) for k, v in seconds.items()},
                "sequences_per_s": {k: round(num_sequences / v) for k, v in seconds.items()},
                "max_abs_dp_vs_fp32": max_abs_dp,
                "repeats": repeats,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "machine": machine("cpu"),
            }
        )
    )


if __name__ == "__main__":
    main()
