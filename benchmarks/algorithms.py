"""SeqGAN's policy gradient vs PPO, APPO and IMPALA with the same budget, from the same MLE checkpoint.

Each algorithm trains the same generator (same MLE weights) on the synthetic
oracle for the same number of adversarial batches of 64 sequences with one
gradient step each (lr, clip, discriminator, its schedule and the Monte Carlo
rollouts as in the chosen preset; PPO/APPO/IMPALA get the Monte Carlo values as
shaped rewards, see ``seqgan_rl.rllib.with_seqgan``). Prints a JSON object as its
last line with, per algorithm, NLL-oracle and NLL-test before and after, the
best NLL-oracle seen, and the wall time of the adversarial phase.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.config import ALGORITHMS, TRAIN_PRESETS, get_train_preset  # noqa: E402
from seqgan_rl.experiment.run import run_training  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generator-checkpoint", type=Path, required=True, help="the MLE checkpoint all start from")
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="cpu")
    parser.add_argument("--batches", type=int, default=30, help="adversarial batches per algorithm")
    parser.add_argument("--algos", default=",".join(ALGORITHMS))
    parser.add_argument("--reward", choices=("shaped", "terminal"), default="shaped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="seqgan-algorithms-"))
    results = {}
    for algo in args.algos.split(","):
        config = get_train_preset(args.preset).with_overrides(
            algo=algo, reward=args.reward, adversarial_batches=args.batches, seed=args.seed,
            eval_every=max(1, args.batches // 3), checkpoint_every=args.batches)
        summary = run_training(config, out_dir / algo, generator_checkpoint=args.generator_checkpoint,
                               device="cpu", progress=False)
        records = [json.loads(line) for line in (out_dir / algo / "metrics.jsonl").read_text().splitlines()]
        results[algo] = {
            "nll_oracle_start": summary["nll_oracle_mle"], "nll_oracle_final": summary["nll_oracle_final"],
            "nll_oracle_best": min(r["eval/nll_oracle"] for r in records if "eval/nll_oracle" in r),
            "nll_test_start": summary["nll_test_mle"], "nll_test_final": summary["nll_test_final"],
            "adversarial_s": summary["adversarial_s"],
        }
        print(json.dumps({algo: results[algo]}), flush=True)
    print(json.dumps({
        "benchmark": "algorithms",
        "setting": {"preset": args.preset, "batches": args.batches, "reward": args.reward, "seed": args.seed,
                    "generator_checkpoint": str(args.generator_checkpoint),
                    "budget": "one gradient step per batch of 64 sequences, lr 0.01, clip 5"},
        "results": results,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
