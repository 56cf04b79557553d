"""SeqGAN end to end on the synthetic oracle: NLL-oracle after MLE and after adversarial training.

Runs ``seqgan-rl train`` (``seqgan_rl.experiment.run.run_training``) with a preset:
``paper`` (the original release's schedule; a GPU job), ``cpu`` (this 2-core
machine) or ``smoke``. ``--generator-checkpoint`` starts from an existing MLE
checkpoint (the MLE phase is then not timed). The paper's reference:
NLL-oracle 9.038 after MLE → 8.736 after SeqGAN (the original release's log:
9.07 → 8.68). Prints a JSON object as its last line with the NLL-oracle and
NLL-test before and after the adversarial phase, its improvement, the wall
time of each phase and per adversarial batch, and the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, pick_device  # noqa: E402

from seqgan_rl.config import TRAIN_PRESETS, get_train_preset  # noqa: E402
from seqgan_rl.experiment.run import run_training  # noqa: E402

PAPER_NLL_ORACLE = {"mle": 9.038, "seqgan": 8.736}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="cpu")
    parser.add_argument("--batches", type=int, help="adversarial batches (default: the preset's)")
    parser.add_argument("--generator-checkpoint", type=Path, help="MLE checkpoint to start from (skips MLE)")
    parser.add_argument("--oracle-params", type=Path, help="default: ../shared/data/oracle_lstm_params.npz")
    parser.add_argument("--run-dir", type=Path, help="default: a temporary directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    device = pick_device(args.device)
    config = get_train_preset(args.preset).with_overrides(adversarial_batches=args.batches, seed=args.seed)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="seqgan-oracle-")) / "run"
    summary = run_training(config, run_dir, oracle_params=args.oracle_params,
                           generator_checkpoint=args.generator_checkpoint, device=device, progress=args.progress)
    records = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    batches = [r for r in records if r["iteration"] > 0]

    def mean(key: str) -> float | None:
        values = [r[key] for r in batches if key in r]
        return sum(values) / len(values) if values else None

    before, after = summary["nll_oracle_mle"], summary["nll_oracle_final"]
    print(json.dumps({
        "benchmark": "seqgan_oracle",
        "preset": args.preset,
        "seed": args.seed,
        "adversarial_batches": config.schedule.adversarial_batches,
        "data": summary["data"],
        "nll_oracle_mle": before,
        "nll_oracle_final": after,
        "nll_oracle_best": min((r["eval/nll_oracle"] for r in records if "eval/nll_oracle" in r), default=None),
        "nll_oracle_improvement": None if before is None or after is None else before - after,
        "nll_test_mle": summary["nll_test_mle"],
        "nll_test_final": summary["nll_test_final"],
        "mle_s": summary.get("mle_s"),
        "d_pretrain_s": summary.get("d_pretrain_s"),
        "adversarial_s": summary.get("adversarial_s"),
        "per_batch_s": {key.removeprefix("time/"): mean(key) for key in (
            "time/iteration_s", "time/sample_s", "time/learner_s", "time/monte_carlo_q_s", "time/sync_s",
            "time/d_steps_s", "time/eval_s")},
        "paper_nll_oracle": PAPER_NLL_ORACLE,
        "run_dir": str(run_dir),
        "machine": machine(device),
    }))


if __name__ == "__main__":
    main()
