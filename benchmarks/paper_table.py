"""The SeqGAN paper's synthetic-data table over seeds: random, MLE, scheduled sampling, PG-BLEU, SeqGAN.

Every row is trained on the paper's oracle (``oracle_lstm_params.npz``, its
10,000 training and 10,000 held-out sequences, ``data_seed`` 1234) with the
``cpu`` preset's budget, the same for every row:

* ``random``: the generator as initialised (N(0, 0.1²)), untrained;
* ``mle``: 120 MLE epochs over the 10,000 training sequences (teacher forcing);
* ``ss``: the same 120 epochs with scheduled sampling (``--ss-schedule``,
  ``--ss-final``: the probability of feeding the model's own token reached in the
  last epoch);
* ``pg-bleu``: the ``mle`` generator, then 100 adversarial batches of 64
  sequences under SeqGAN's policy gradient with BLEU-``--bleu-n`` against the
  training sequences as the reward (Monte Carlo Q with N = 16), no discriminator;
* ``seqgan``: the ``mle`` generator, then the ``cpu`` preset's adversarial phase
  (10 discriminator pretraining rounds, 100 batches of 64 sequences, one d-step
  of one epoch on 5,000 negatives per batch).

The rows of one seed that start from MLE share its checkpoint. Each (row, seed)
is a run directory under ``--out-dir``; a finished one is read back, an
interrupted adversarial run is resumed, so the table can be stopped and started
again. Reported: NLL-oracle and NLL-test at the end of the budget, mean ±
standard deviation over the seeds, beside the paper's NLL-oracle; for the
adversarial rows also the lowest NLL-oracle along the run (an oracle-selected
stopping point, optimistic) and the batch it came at. A Markdown table, then
JSON on the last line.

Example (the README's table; about 2 h on a 2-core CPU)::

    python benchmarks/paper_table.py --out-dir runs/paper-table --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from algorithms import finished, run_one  # noqa: E402

from seqgan_rl.config import TRAIN_PRESETS, PretrainConfig, TrainConfig  # noqa: E402
from seqgan_rl.errors import ConfigError  # noqa: E402

ROWS = ("random", "mle", "ss", "pg-bleu", "seqgan")
PAPER_NLL_ORACLE = {"random": 10.310, "mle": 9.038, "ss": 8.985, "pg-bleu": 8.946, "seqgan": 8.736}
"""Yu et al. (2017), Table 1 (synthetic data, NLL-oracle)."""


def mle_config(seed: int, eval_every: int) -> PretrainConfig:
    """The ``cpu`` preset's MLE phase for ``seed`` (the paper's MLE setting)."""
    return TRAIN_PRESETS["cpu"].mle.with_overrides(seed=seed, eval_every=eval_every)


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def mle_row(config: PretrainConfig, run_dir: Path, oracle_params: Path | None) -> dict[str, Any]:
    """Train (or read back) one MLE run; its last evaluation."""
    from seqgan_rl.mle import run_pretraining

    saved = run_dir / "config.json"
    done = (run_dir / "checkpoint.pt").is_file() and saved.is_file() and \
        PretrainConfig.from_dict(json.loads(saved.read_text())["config"]) == config  # options added later: defaults
    if not done:
        if saved.is_file():
            raise ConfigError(f"{run_dir} holds another or an unfinished MLE run; remove it to train this row")
        run_pretraining(config, run_dir, oracle_params=oracle_params, device="cpu", progress=False)
    last = read_records(run_dir)[-1]
    return {"seed": config.seed, "nll_oracle": last["eval/nll_oracle"], "nll_test": last["eval/nll_test"],
            "seconds": last["time/elapsed_s"]}


def random_row(seed: int, oracle_params: Path | None) -> dict[str, Any]:
    """An untrained generator (N(0, 0.1²) parameters drawn from ``seed``), evaluated as MLE evaluates."""
    import torch

    from seqgan_rl.data.oracle_data import load_dataset
    from seqgan_rl.evaluation.nll import nll_metrics
    from seqgan_rl.models.generator import Generator, GeneratorConfig

    config = mle_config(seed, 1)
    data = load_dataset(config, None, oracle_params)
    torch.manual_seed(seed)  # as run_pretraining before it builds the generator
    generator = Generator(GeneratorConfig(vocab_size=data.vocab_size, seq_len=data.seq_len,
                                          emb_dim=config.emb_dim, hidden_dim=config.hidden_dim))
    metrics = nll_metrics(generator, data, config.num_eval_samples, torch.Generator().manual_seed(seed))
    return {"seed": seed, "nll_oracle": metrics["eval/nll_oracle"], "nll_test": metrics["eval/nll_test"]}


def adversarial_row(config: TrainConfig, run_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Train, resume or read back one adversarial run from the seed's MLE checkpoint."""
    run = run_one(config, run_dir, checkpoint)
    best = min(run["curve"], key=lambda point: point[1])
    return {"seed": config.seed, "nll_oracle": run["nll_oracle_final"], "nll_test": run["nll_test_final"],
            "nll_oracle_best": best[1], "best_batch": best[0], "nll_oracle_start": run["nll_oracle_start"],
            "seconds_per_batch": run["seconds_per_batch"], "curve": run["curve"]}


def mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [key for key in ("nll_oracle", "nll_test", "nll_oracle_best") if key in runs[0]]
    return {"seeds": [run["seed"] for run in runs], **{key: mean_std([run[key] for run in runs]) for key in keys}}


def markdown(table: dict[str, dict[str, Any]]) -> str:
    def cell(entry: dict[str, Any], key: str) -> str:
        return f"{entry[key]['mean']:.3f} ± {entry[key]['std']:.3f}" if key in entry else "–"

    lines = ["| row | seeds | NLL-oracle | NLL-test | best NLL-oracle along the run | paper NLL-oracle |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row, entry in table.items():
        lines.append(f"| {row} | {len(entry['seeds'])} | {cell(entry, 'nll_oracle')} | {cell(entry, 'nll_test')} | "
                     f"{cell(entry, 'nll_oracle_best')} | {PAPER_NLL_ORACLE[row]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="one run directory per row and seed")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows, of {', '.join(ROWS)}")
    parser.add_argument("--oracle-params", type=Path, help="the oracle .npz (default: the original file if present)")
    parser.add_argument("--ss-schedule", default="linear", choices=("linear", "exponential", "inverse_sigmoid"),
                        help="the ss row's scheduled-sampling schedule")
    parser.add_argument("--ss-final", type=float, default=0.25,
                        help="the ss row's probability of feeding the model's own token in the last epoch")
    parser.add_argument("--bleu-n", type=int, default=2, help="the pg-bleu row's BLEU order")
    parser.add_argument("--mle-eval-every", type=int, default=40,
                        help="MLE evaluations every this many epochs (they do not change the training)")
    parser.add_argument("--finished-only", action="store_true", help="train nothing: report the finished runs")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = [row for row in args.rows.split(",") if row]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(ROWS)}")
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
    for seed in seeds:
        out = args.out_dir / f"seed{seed}"
        mle = mle_config(seed, args.mle_eval_every)
        for row in rows:
            if row == "random":
                result = random_row(seed, args.oracle_params)
            elif row in ("mle", "ss"):
                config = mle if row == "mle" else mle.with_overrides(scheduled_sampling=args.ss_schedule,
                                                                     ss_final=args.ss_final)
                if args.finished_only and not (out / row / "checkpoint.pt").is_file():
                    continue
                result = mle_row(config, out / row, args.oracle_params)
            else:
                config = TRAIN_PRESETS["cpu"].with_overrides(seed=seed)  # its MLE phase: the mle row's checkpoint
                if row == "pg-bleu":
                    config = config.with_overrides(reward_model="bleu", bleu_n=args.bleu_n)
                if args.finished_only and not finished(out / row, config):
                    continue
                result = adversarial_row(config, out / row, out / "mle" / "checkpoint.pt")
            runs[row].append(result)
            print(json.dumps({"row": row, **{k: v for k, v in result.items() if k != "curve"}}), flush=True)
    table = {row: summarise(results) for row, results in runs.items() if results}
    print(markdown(table))
    print(json.dumps({
        "benchmark": "paper_table",
        "setting": {"oracle": "the original release's oracle (data_seed 1234: 10,000 training, 10,000 held-out)",
                    "budget": "the cpu preset: MLE 120 epochs; adversarial rows 100 batches of 64 sequences",
                    "seeds": seeds, "ss": {"schedule": args.ss_schedule, "final": args.ss_final},
                    "pg_bleu": {"bleu_n": args.bleu_n}},
        "paper_nll_oracle": PAPER_NLL_ORACLE,
        "table": table,
        "runs": runs,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
