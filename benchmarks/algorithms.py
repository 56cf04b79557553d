"""Generator optimisers compared over seeds: every configuration from one MLE checkpoint, same budget.

Each configuration (``NAME`` or ``NAME:FIELD=VALUE,FIELD=VALUE``, fields of
``TrainConfig``: ``ppo:algo=ppo``, ``seqgan+kl:kl_coef=0.05``) trains the same
generator (the MLE checkpoint's weights) on the synthetic oracle for the same
number of adversarial batches of the preset: the same number of generated
sequences per batch and the same discriminator schedule; each algorithm with its
own settings (``seqgan_rl.config.ALGORITHM_DEFAULTS``) unless the configuration
overrides them. Every (configuration, seed) is one run directory under
``--out-dir``; a finished one is read back, an interrupted one is resumed from
its latest checkpoint, so the benchmark can be stopped and started again.

Prints one JSON line per finished run, then a JSON object as its last line: per
configuration, NLL-oracle and NLL-test at the end (mean ± standard deviation over
the seeds), the best NLL-oracle along the run, seconds per adversarial batch,
and the MLE start. ``--plot`` writes NLL-oracle against NLL-test, one point per
run and one colour per configuration, the MLE start marked, with the MLE
generator's temperature curve (``--temperatures``: what lowering the sampling
temperature alone buys, the line an adversarial run has to beat).

Example (the table of docs/results.md)::

    python benchmarks/algorithms.py --generator-checkpoint MLE/checkpoint.pt --batches 40 --seeds 0,1,2 \\
        --out-dir runs/algorithms --plot runs/algorithms/frontier.png \\
        --configs seqgan "seqgan+kl:kl_coef=0.05" ppo:algo=ppo "ppo+kl:algo=ppo,kl_coef=0.05" appo:algo=appo \\
        impala:algo=impala
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _common import machine  # noqa: E402

from seqgan_rl.config import TRAIN_PRESETS, TrainConfig, get_train_preset  # noqa: E402
from seqgan_rl.config.options import parse_option_value  # noqa: E402
from seqgan_rl.errors import ConfigError  # noqa: E402
from seqgan_rl.experiment.run import CONFIG_FILE, run_training  # noqa: E402

DEFAULT_CONFIGS = ("seqgan", "ppo:algo=ppo", "appo:algo=appo", "impala:algo=impala")


def parse_configuration(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:FIELD=VALUE,...]`` → (name, typed ``TrainConfig`` overrides); ``NAME`` alone = the preset."""
    name, _, rest = text.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        field, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"configuration {text!r}: {item!r} is not FIELD=VALUE")
        try:
            overrides[field] = parse_option_value(TrainConfig, field, value)
        except KeyError:
            raise ConfigError(f"configuration {text!r}: unknown option {field!r}") from None
    if not name:
        raise ConfigError(f"configuration {text!r} has no name")
    return name, overrides


def finished(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a run of at least ``config``'s adversarial batches, summary written."""
    summary_file = run_dir / "summary.json"
    return summary_file.is_file() and json.loads(summary_file.read_text())["adversarial_batches"] >= \
        config.schedule.adversarial_batches


def run_one(config: TrainConfig, run_dir: Path, checkpoint: Path) -> dict[str, Any]:
    """Train (or finish, or read back) one run; its figures from summary.json and metrics.jsonl."""
    summary_file = run_dir / "summary.json"
    if not finished(run_dir, config):
        resume = (run_dir / CONFIG_FILE).is_file() and (run_dir / "checkpoints").is_dir()
        run_training(config, run_dir, generator_checkpoint=checkpoint, device="cpu", progress=False, resume=resume,
                     resume_batches=config.schedule.adversarial_batches if resume else None)
    summary = json.loads(summary_file.read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    iterations = [r for r in records if r.get("iteration", 0) > 0]
    return {
        "seed": config.seed,
        "nll_oracle_start": summary["nll_oracle_mle"], "nll_oracle_final": summary["nll_oracle_final"],
        "nll_oracle_best": min(r["eval/nll_oracle"] for r in records if "eval/nll_oracle" in r),
        "nll_test_start": summary["nll_test_mle"], "nll_test_final": summary["nll_test_final"],
        "seconds_per_batch": statistics.fmean(r["time/iteration_s"] for r in iterations),
        "reward_s_per_batch": statistics.fmean(r.get("time/monte_carlo_q_s", 0.0) for r in iterations),
        "d_steps_s_per_batch": statistics.fmean(r.get("time/d_steps_s", 0.0) for r in iterations),
        **{name: last_value(records, f"eval/{name}") for name in INFO_METRICS},
        "curve": [[r["iteration"], r["eval/nll_oracle"], r["eval/nll_test"]] for r in records
                  if "eval/nll_oracle" in r],
    }


INFO_METRICS = ("d_spearman", "d_spearman_generated", "d_slope", "d_error_std", "d_accuracy", "ideal_accuracy")
"""The reward model's information measure at the run's last evaluation (``seqgan_rl.evaluation.information``)."""


def last_value(records: list[dict[str, Any]], key: str) -> float:
    """The last finite value of ``key`` in the records (NaN if none: e.g. the constant reward's Spearman)."""
    values = [r[key] for r in records if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return values[-1] if values else float("nan")


def control_path(runs: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The control's mean (NLL-test, NLL-oracle) at each evaluation, over its seeds, sorted by NLL-test."""
    by_iteration: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for iteration, oracle, test in run["curve"]:
            by_iteration.setdefault(iteration, []).append((test, oracle))
    points = [(statistics.fmean(t for t, _ in pts), statistics.fmean(o for _, o in pts))
              for _, pts in sorted(by_iteration.items())]
    return sorted(points)


def control_at(path: list[tuple[float, float]], nll_test: float) -> tuple[float, bool]:
    """The control's NLL-oracle at ``nll_test`` (linear between its points; beyond them, along the nearest
    segment) and whether that was an extrapolation."""
    tests, oracles = [t for t, _ in path], [o for _, o in path]
    if tests[0] <= nll_test <= tests[-1] or len(path) < 2:
        return float(np.interp(nll_test, tests, oracles)), not tests[0] <= nll_test <= tests[-1]
    (t0, o0), (t1, o1) = (path[0], path[1]) if nll_test < tests[0] else (path[-2], path[-1])
    return o0 + (o1 - o0) * (nll_test - t0) / (t1 - t0), True


def gains_over_control(runs: list[dict[str, Any]], path: list[tuple[float, float]]) -> dict[str, Any]:
    """Each run's gain over the control at matched NLL-test: the control's NLL-oracle interpolated at the
    run's final NLL-test, minus the run's final NLL-oracle (> 0: better than sharpening alone)."""
    gains, extrapolated = [], 0
    for run in runs:
        reference, outside = control_at(path, run["nll_test_final"])
        gains.append(reference - run["nll_oracle_final"])
        extrapolated += outside
    return {**mean_std(gains), "extrapolated_runs": extrapolated}


def mean_std(values: list[float]) -> dict[str, float]:
    if not all(math.isfinite(v) for v in values):  # e.g. the constant reward's Spearman: not defined
        return {"mean": float("nan"), "std": float("nan")}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± standard deviation over seeds of the end-of-run figures."""
    keys = ("nll_oracle_final", "nll_test_final", "nll_oracle_best", "seconds_per_batch", "reward_s_per_batch",
            "d_steps_s_per_batch", *INFO_METRICS)
    table = {key: mean_std([run[key] for run in runs]) for key in keys}
    table["nll_oracle_gain"] = mean_std([run["nll_oracle_start"] - run["nll_oracle_final"] for run in runs])
    table["nll_test_rise"] = mean_std([run["nll_test_final"] - run["nll_test_start"] for run in runs])
    table["seeds"] = len(runs)
    return table


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a Markdown table (docs/results.md): mean ± sd over seeds, one row per configuration."""
    def cell(entry: dict[str, Any], key: str, digits: int = 3) -> str:
        value = entry.get(key)
        if not isinstance(value, dict) or not math.isfinite(value["mean"]):
            return "–"
        return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"

    lines = ["| configuration | seeds | NLL-oracle | gain over MLE | NLL-test | gain over the control at matched "
             "NLL-test | D's Spearman with D* | over generated sequences | slope of D's logit on D*'s | D's error "
             "beside it (std) | seconds per batch | of which reward | of which d-steps |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in results.items():
        lines.append(f"| {name} | {entry['seeds']} | {cell(entry, 'nll_oracle_final')} | "
                     f"{cell(entry, 'nll_oracle_gain')} | "
                     f"{cell(entry, 'nll_test_final')} | {cell(entry, 'gain_over_control')} | "
                     f"{cell(entry, 'd_spearman', 2)} | {cell(entry, 'd_spearman_generated', 2)} | "
                     f"{cell(entry, 'd_slope', 2)} | {cell(entry, 'd_error_std', 1)} | "
                     f"{cell(entry, 'seconds_per_batch', 1)} | "
                     f"{cell(entry, 'reward_s_per_batch', 1)} | {cell(entry, 'd_steps_s_per_batch', 1)} |")
    return "\n".join(lines)


def temperature_curve(checkpoint: Path, data_dir: Path, temperatures: list[float]) -> list[dict[str, float]]:
    """The MLE generator sampled at each temperature: NLL-oracle and NLL-test (scored at that temperature).

    Lowering the temperature trades NLL-test for NLL-oracle without any training: an adversarial run
    is worth its cost where its point lies below this curve. 10,000 samples from a fixed seed.
    """
    import torch

    from seqgan_rl.config import PRESETS
    from seqgan_rl.data.oracle_data import load_dataset
    from seqgan_rl.evaluation.nll import nll_oracle, nll_test
    from seqgan_rl.runs import load_generator

    generator = load_generator(checkpoint, "cpu")
    data = load_dataset(PRESETS["paper"], data_dir, None)
    curve = []
    for temperature in temperatures:
        rng = torch.Generator().manual_seed(0)
        curve.append({"temperature": temperature,
                      "nll_oracle": nll_oracle(generator, data.oracle, 10_000, rng=rng, temperature=temperature),
                      "nll_test": nll_test(generator, data.valid, temperature=temperature)})
    return curve


def plot(results: dict[str, dict[str, Any]], start: tuple[float, float], curve: list[dict[str, float]],
         path: Path) -> None:
    """NLL-oracle (x) against NLL-test (y) at the end of every run (points), each configuration's mean path
    along its runs (a line), and the MLE temperature curve; lower-left is better on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 5))
    for name, entry in results.items():
        xs = [run["nll_oracle_final"] for run in entry["runs"]]
        ys = [run["nll_test_final"] for run in entry["runs"]]
        points = axis.scatter(xs, ys, label=name, s=36)
        mean_path = control_path(entry["runs"])  # (NLL-test, NLL-oracle) per evaluation, over the seeds
        axis.plot([o for _, o in mean_path], [t for t, _ in mean_path], color=points.get_facecolor()[0],
                  linewidth=1, alpha=0.7)
    axis.scatter([start[0]], [start[1]], marker="*", s=160, color="black", label="MLE start")
    if curve:
        axis.plot([p["nll_oracle"] for p in curve], [p["nll_test"] for p in curve], color="grey", linestyle="--",
                  marker=".", label="MLE at temperature " + ", ".join(f"{p['temperature']:g}" for p in curve))
    axis.set_xlabel("NLL-oracle after the adversarial phase (nats per token; lower = better samples)")
    axis.set_ylabel("NLL-test (nats per token; lower = better coverage)")
    axis.set_title("End of each run (one point per seed) and the mean path along the runs")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator-checkpoint", type=Path, required=True, help="the MLE checkpoint all start from")
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="cpu")
    parser.add_argument("--batches", type=int, default=40,
                        help="adversarial batches per run (a configuration's adversarial_batches= wins)")
    parser.add_argument("--eval-every", type=int, default=10, help="evaluate every this many batches")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="NAME or NAME:FIELD=VALUE,... (TrainConfig fields)")
    parser.add_argument("--out-dir", type=Path, required=True, help="one run directory per configuration and seed")
    parser.add_argument("--plot", type=Path, help="write the NLL-oracle / NLL-test scatter here (PNG)")
    parser.add_argument("--finished-only", action="store_true",
                        help="train nothing: report the (configuration, seed) runs already finished in --out-dir")
    parser.add_argument("--control", default=None,
                        help="the configuration every other is compared with at matched NLL-test (e.g. the "
                             "constant reward: control:reward_model=constant)")
    parser.add_argument("--markdown", action="store_true", help="print the results as a Markdown table first")
    parser.add_argument("--temperatures", default="1.0,0.95,0.9,0.85,0.8",
                        help="the MLE generator's temperature curve to compare with ('' for none)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    configurations = [parse_configuration(text) for text in args.configs]
    results: dict[str, dict[str, Any]] = {}
    for name, overrides in configurations:
        runs = []
        for seed in seeds:
            config = get_train_preset(args.preset).with_overrides(
                **{"adversarial_batches": args.batches, **overrides}, seed=seed, eval_every=args.eval_every,
                checkpoint_every=args.eval_every)
            run_dir = args.out_dir / name / f"seed{seed}"
            if args.finished_only and not finished(run_dir, config):
                continue
            run = run_one(config, run_dir, args.generator_checkpoint.resolve())
            runs.append(run)
            print(json.dumps({"config": name, **{k: v for k, v in run.items() if k != "curve"}}),
                  flush=True)
        if not runs:
            continue
        algo = get_train_preset(args.preset).with_overrides(**overrides).algorithm.algo
        results[name] = {"overrides": overrides, "algo": algo, **aggregate(runs), "runs": runs}
    if args.control in results:
        path = control_path(results[args.control]["runs"])
        for entry in results.values():
            entry["gain_over_control"] = gains_over_control(entry["runs"], path)
    first = next(iter(results.values()))["runs"][0]
    name = next(iter(results))
    temperatures = [float(t) for t in args.temperatures.split(",") if t]
    curve = temperature_curve(args.generator_checkpoint, args.out_dir / name / f"seed{first['seed']}" / "data",
                              temperatures)
    if args.plot:
        plot(results, (first["nll_oracle_start"], first["nll_test_start"]), curve, args.plot)
    if args.markdown:
        print(markdown_table(results), flush=True)
    print(json.dumps({
        "benchmark": "algorithms",
        "setting": {"preset": args.preset, "batches": args.batches, "seeds": seeds, "eval_every": args.eval_every,
                    "control": args.control,
                    "generator_checkpoint": str(args.generator_checkpoint),
                    "budget": "the preset's sequences per batch and discriminator schedule for every configuration"},
        "mle_start": {"nll_oracle": first["nll_oracle_start"], "nll_test": first["nll_test_start"]},
        "mle_temperature_curve": curve,
        "results": results,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
