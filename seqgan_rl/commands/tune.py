"""``seqgan-rl tune``: a Ray Tune grid over training options, NLL-oracle as the metric."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.config import TRAIN_PRESETS, TrainConfig, get_train_preset, refuse_monte_carlo_options
from seqgan_rl.config.options import add_option_flags, option_overrides
from seqgan_rl.errors import ConfigError

TRIAL_CPUS = 1.0
"""CPUs of a trial's driver (``seqgan_rl.experiment.tune.trial_resources``)."""


def tune(args: argparse.Namespace) -> dict[str, Any]:
    """The grid's trials, once every value and combination passed the pre-flight checks
    (``preflight_tune``) and one trial's reservation fits the cluster (``check_trial_resources``)."""
    from seqgan_rl.experiment.preflight import check_num_cpus, preflight_tune
    from seqgan_rl.experiment.ray_session import check_reachable
    from seqgan_rl.experiment.tune import parse_grid

    overrides = option_overrides(args, TrainConfig)
    base = get_train_preset(args.preset).with_overrides(**overrides)
    grid = parse_grid(args.grid)
    for reward_model in grid.get("reward_model", [base.reward.reward_model]):
        refuse_monte_carlo_options(reward_model, {*overrides, *grid}, "in the flags or the grid")
    check_num_cpus(args.num_cpus)
    for flag, value in (("--num-samples", args.num_samples), ("--max-concurrent-trials", args.max_concurrent_trials)):
        if value <= 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
    if args.address:
        check_reachable(args.address)  # ray.init would retry a dead address for many minutes
    preflight_tune(base, grid, args.generator_checkpoint, args.oracle_params)
    return run_tune(args, base, grid)


def run_tune(args: argparse.Namespace, base: TrainConfig, grid: dict[str, list[Any]]) -> dict[str, Any]:
    """Start or join Ray, check one trial's reservation against it, run the grid; a Ray started here is
    shut down again."""
    import ray

    from seqgan_rl.experiment.ray_session import local_ray_resources
    from seqgan_rl.experiment.tune import check_trial_resources, tune_seqgan

    started = not ray.is_initialized()
    if started and not args.address:
        predicted = local_ray_resources(args.num_cpus)
        if predicted is not None:  # before a Ray is started for nothing
            check_trial_resources(base, TRIAL_CPUS, local=True, nodes=[predicted])
    if started:
        ray.init(address=args.address or "local", num_cpus=None if args.address else args.num_cpus,
                 include_dashboard=False, log_to_driver=False)
    try:
        check_trial_resources(base, TRIAL_CPUS, local=started and not args.address)
        results = tune_seqgan(base, grid, generator_checkpoint=args.generator_checkpoint,
                              storage_path=args.storage_path, oracle_params=args.oracle_params,
                              num_samples=args.num_samples, max_concurrent_trials=args.max_concurrent_trials,
                              trial_cpus=TRIAL_CPUS)
        best = results.get_best_result()
        return {"best_config": best.config, "best_nll_oracle": best.metrics.get("nll_oracle"),
                "trials": [{"config": r.config, "nll_oracle": r.metrics.get("nll_oracle"),
                            "nll_test": r.metrics.get("nll_test")} for r in results],
                "storage_path": str(args.storage_path)}
    finally:
        if started:
            ray.shutdown()


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("tune", help="Ray Tune grid over training options (metric: NLL-oracle)",
                            description="A Ray Tune grid over training options from one MLE checkpoint; every "
                                        "trial is a `train` run, NLL-oracle the metric.")
    parser.add_argument("--generator-checkpoint", type=Path, required=True,
                        help="MLE checkpoint every trial starts from")
    parser.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2",
                        help="a training option and its values (repeatable), e.g. rollout_beta=0.6,0.8")
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="cpu", help="the base configuration")
    parser.add_argument("--num-samples", type=int, default=1, help="repeats of the grid")
    parser.add_argument("--max-concurrent-trials", type=int, default=1)
    parser.add_argument("--oracle-params", type=Path)
    parser.add_argument("--storage-path", type=Path, default=Path("runs") / "tune")
    parser.add_argument("--address", help="join this Ray cluster (default: a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    add_option_flags(parser, TrainConfig, title="base training options (default: the --preset's value)",
                     presets=TRAIN_PRESETS)
    parser.set_defaults(handler=tune)
