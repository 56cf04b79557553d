"""Hyperparameter sweeps of SeqGAN training with Ray Tune, NLL-oracle as the metric.

Each trial is one ``run_training`` (the same code as ``seqgan-rl train``) from a
shared MLE checkpoint, with some ``TrainConfig`` fields replaced by the trial's
values; every evaluation (``eval_every`` batches) is reported to Tune as
``nll_oracle`` / ``nll_test``. A trial reserves a placement group: ``trial_cpus``
for its driver (sampling, the Learner, Monte Carlo Q in-process), 1 CPU for its
own discriminator actor and a bundle per rollout worker, so
``max_concurrent_trials`` should match the machine: 1 on this 2-core machine.
The grid must not change ``num_mc_workers`` or the actors' resources (the
reservation is computed from the base configuration). Before any trial,
``seqgan-rl tune`` checks each grid value and each combination
(``seqgan_rl.experiment.preflight.preflight_tune``) and one trial's
reservation against the cluster (``check_trial_resources``).

    seqgan-rl tune --generator-checkpoint mle/checkpoint.pt --preset cpu --batches 30 \\
        --grid rollout_beta=0.6,0.8,0.95 --grid num_rollouts=8,16
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from seqgan_rl.config import TrainConfig
from seqgan_rl.config.options import flat_names, parse_option_value
from seqgan_rl.errors import ConfigError
from seqgan_rl.experiment.ray_session import autoscaler_can_add_nodes, cluster_shortfall

logger = logging.getLogger(__name__)

SWEEPABLE = frozenset({name for name, path in flat_names(TrainConfig).items() if path[0] != "mle"} - {
    "discriminator", "num_mc_workers", "mc_worker_num_cpus", "mc_worker_num_gpus", "discriminator_num_cpus",
    "discriminator_num_gpus"})
"""``TrainConfig`` options (flat names) a grid may vary: not the MLE phase's, nor the CNN's sizes, nor the
actors' resources (the trial's reservation comes from the base configuration)."""


def parse_grid(entries: list[str]) -> dict[str, list[Any]]:
    """``["rollout_beta=0.6,0.8", "algo=seqgan,ppo"]`` → typed value lists per ``TrainConfig`` field."""
    grid: dict[str, list[Any]] = {}
    for entry in entries:
        name, _, values = entry.partition("=")
        if name not in SWEEPABLE or not values:
            raise ConfigError(f"--grid {entry!r}: expected FIELD=V1,V2,... with FIELD one of "
                              f"{', '.join(sorted(SWEEPABLE))}")
        try:
            grid[name] = [parse_option_value(TrainConfig, name, value) for value in values.split(",")]
        except ConfigError as error:
            raise ConfigError(f"--grid {entry!r}: {error}") from None
    if not grid:
        raise ConfigError("give at least one --grid FIELD=V1,V2,...")
    return grid


def trial_resources(config: TrainConfig, trial_cpus: float) -> Any:
    """A placement group per trial: its driver, its discriminator actor and its K rollout workers.

    Tune only lets a trial start actors inside the trial's own reservation, so
    every actor ``run_training`` starts needs a bundle here.
    """
    from ray import tune

    def bundle(cpus: float, gpus: float) -> dict[str, float]:
        return {"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}

    resources = config.resources
    bundles = [bundle(trial_cpus, resources.learner_num_gpus),
               bundle(resources.discriminator_num_cpus, resources.discriminator_num_gpus)]
    bundles += [bundle(resources.mc_worker_num_cpus, resources.mc_worker_num_gpus)] * resources.num_mc_workers
    return tune.PlacementGroupFactory(bundles)


def check_trial_resources(config: TrainConfig, trial_cpus: float, *, local: bool,
                          nodes: list[dict[str, float]] | None = None) -> None:
    """Refuse a sweep none of whose trials can ever start: one trial's reservation (``trial_resources``)
    larger than the cluster, or a bundle larger than its largest node. ``nodes``: the resources of each
    node (default: the live nodes of the Ray this process is connected to).

    Tune would keep the trials pending for ever on a local Ray (``local``) or on a cluster whose autoscaler
    cannot add nodes; with one that can, the missing nodes may still come, so it is a warning.
    """
    import ray

    names = ["the trial's driver", "its discriminator actor", *["a rollout worker"] * config.resources.num_mc_workers]
    bundles = trial_resources(config, trial_cpus).bundles
    actors = [(name, {"CPU": bundle.get("CPU", 0.0), "GPU": bundle.get("GPU", 0.0)})
              for name, bundle in zip(names, bundles)]
    if nodes is None:
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    problems = cluster_shortfall(actors, nodes)
    if not problems:
        return
    what = (f"a trial's reservation (its driver, discriminator actor and {config.resources.num_mc_workers} rollout "
            "worker(s))")
    if local or autoscaler_can_add_nodes() is False:
        remedy = "raise --num-cpus" if local else "add nodes"
        raise ConfigError(f"the Ray cluster can never start {what}: {'; '.join(problems)}; lower --num-mc-workers, "
                          f"--mc-worker-num-cpus, --mc-worker-num-gpus or --discriminator-num-gpus, or {remedy}")
    logger.warning("the Ray cluster cannot start %s yet: %s; its trials wait until its autoscaler adds nodes", what,
                   "; ".join(problems))


def tune_seqgan(
    base: TrainConfig,
    grid: dict[str, list[Any]],
    *,
    generator_checkpoint: str | Path,
    storage_path: str | Path,
    name: str = "seqgan-tune",
    oracle_params: str | Path | None = None,
    num_samples: int = 1,
    max_concurrent_trials: int = 1,
    trial_cpus: float = 1.0,
) -> Any:
    """Run the grid (× ``num_samples`` seeds) with ``ray.tune.Tuner``; returns its ``ResultGrid``."""
    from ray import tune

    from seqgan_rl.experiment.run import run_training

    checkpoint = str(Path(generator_checkpoint).resolve())
    oracle = None if oracle_params is None else str(Path(oracle_params).resolve())

    def trial(params: dict[str, Any]) -> None:
        config = base.with_overrides(**params)
        run_dir = Path(tune.get_context().get_trial_dir()) / "run"

        def report(record: dict[str, Any]) -> None:
            if "eval/nll_oracle" in record:
                tune.report({"nll_oracle": record["eval/nll_oracle"], "nll_test": record.get("eval/nll_test"),
                             "batch": record["iteration"]})

        run_training(config, run_dir, generator_checkpoint=checkpoint, oracle_params=oracle, progress=False,
                     on_record=report)

    tuner = tune.Tuner(
        tune.with_resources(trial, trial_resources(base, trial_cpus)),
        param_space={key: tune.grid_search(values) for key, values in grid.items()},
        tune_config=tune.TuneConfig(metric="nll_oracle", mode="min", num_samples=num_samples,
                                    max_concurrent_trials=max_concurrent_trials),
        run_config=tune.RunConfig(name=name, storage_path=str(Path(storage_path).resolve())),
    )
    return tuner.fit()
