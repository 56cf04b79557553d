"""The BLEU reward (PG-BLEU) against the discriminator on the paper's Monte Carlo batch.

One batch of SeqGAN's Monte Carlo step in the paper's setting: B = 64 sequences,
N = 16 completions of each of their T − 1 = 19 prefixes, plus the 64 sequences
themselves: 19,520 sequences to score. The sequences and completions are drawn
from the oracle (a generator with the statistics of real data); the references
are the 10,000 training sequences of the paper's oracle data (``data_seed``
1234). Timed (median of ``--repeats``):

* ``TokenBleu`` (``reward_model=bleu``): building the reference tables (once per
  worker) and scoring the 19,520 sequences, for each ``--orders``;
* the discriminator scoring the same batch as the Monte Carlo engine does
  (``score_prefix_rollouts`` for the completions, ``score`` for the sequences),
  fp32: the paper's CNN and the ``cpu`` preset's narrower one.

The issue's bound: the BLEU reward at most ~2x the discriminator's time. JSON on
the last line.

    python benchmarks/bleu_reward.py [--orders 2,4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_seconds  # noqa: E402

from seqgan_rl.config import CPU_DISCRIMINATOR, PRESETS  # noqa: E402
from seqgan_rl.data.oracle_data import load_dataset  # noqa: E402
from seqgan_rl.mc import MonteCarloQ  # noqa: E402
from seqgan_rl.models.discriminator import Discriminator  # noqa: E402
from seqgan_rl.rewards import TokenBleu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", default="2,3,4", help="BLEU orders n to time")
    parser.add_argument("--batch", type=int, default=64, help="B, sequences per batch (paper: 64)")
    parser.add_argument("--rollouts", type=int, default=16, help="N, completions per prefix (paper: 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--oracle-params", type=Path, help="the oracle .npz (default: the original file if present)")
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    data = load_dataset(PRESETS["paper"], None, args.oracle_params)
    oracle = data.oracle
    rng = torch.Generator().manual_seed(0)
    sequences = oracle.sample(args.batch, generator=rng)  # (B, T)
    engine = MonteCarloQ(args.rollouts)
    uniforms = engine.draw_uniforms(args.batch, oracle.seq_len, generator=rng)
    completions = engine.rollouts(sequences, oracle, uniforms)  # (T-1, B, N, T)
    every = torch.cat([completions.reshape(-1, oracle.seq_len), sequences]).numpy()  # (19,520, T)
    references = data.train.numpy()

    bleu_results = {}
    for n in (int(order) for order in args.orders.split(",")):
        started = time.perf_counter()
        reward = TokenBleu(references, n, vocab_size=data.vocab_size)
        build_s = time.perf_counter() - started
        score_s = median_seconds(lambda reward=reward: reward(every), repeats=args.repeats)
        bleu_results[f"bleu{n}"] = {"build_s": round(build_s, 3), "score_s": round(score_s, 3),
                                    "mean_reward": float(reward(every).mean())}

    discriminator_results = {}
    for name, sizes in (("paper", {}), ("cpu", CPU_DISCRIMINATOR)):
        discriminator = Discriminator(data.vocab_size, oracle.seq_len, **sizes).eval()

        def score(discriminator: Discriminator = discriminator) -> None:
            discriminator.score_prefix_rollouts(sequences, completions)
            discriminator.score(sequences)

        discriminator_results[name] = {"score_s": round(median_seconds(score, repeats=args.repeats), 3)}

    paper_s = discriminator_results["paper"]["score_s"]
    print(json.dumps({
        "benchmark": "bleu_reward",
        "setting": {"batch": args.batch, "rollouts": args.rollouts, "seq_len": oracle.seq_len,
                    "sequences_scored": len(every), "references": len(references), "vocab_size": data.vocab_size,
                    "data": data.description},
        "bleu": bleu_results,
        "discriminator_fp32": discriminator_results,
        "bleu_over_paper_discriminator": {key: round(value["score_s"] / paper_s, 2)
                                          for key, value in bleu_results.items()},
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
