"""Pre-flight: every check a run's options and inputs allow, before anything is sampled, trained or written.

``seqgan-rl train`` (so also ``train.py``, its cluster entry point),
``pretrain`` and ``tune`` run these checks first. Without them a bad input
is found where it is first used, and for most inputs that is after the MLE
phase, minutes to hours into a run: the discriminator actor built for a
sequence length its filters do not fit, RLlib seeded with a negative seed,
the algorithm's minibatches split, the actors placed on a Ray without the
GPU they ask for, the summary of a run that had nothing to evaluate on. Each
failure here is one ``ConfigError`` or ``DataError`` naming the option, file
or value (the command line prints it as one line, exit status 2), and nothing
has been written to the run directory, so the corrected command can use it.

``preflight`` (a ``train`` run, fresh or resumed) checks, cheapest first:

1. the options: each one's declared range, finite numbers, seeds
   (``TrainConfig.validate``), ``--num-cpus``, and that the cluster address
   answers;
2. the inputs: the generator checkpoint, the oracle and the data directory
   (every table read and checked), the generator against the data, and a
   held-out split or an oracle to evaluate on;
3. the models: the discriminator's sizes against ``Discriminator``'s own
   parameters and their types, then the discriminator built once on the CPU
   for the data's vocabulary and length (its own checks: filter sizes against
   the sequence length); a fixed reward model probed on real sequences;
4. the algorithm: its RLlib config built and validated as the run will build
   it (``minibatches`` must divide ``episodes_per_batch``, RLlib's own rules);
5. the resources: the run's actors against the Ray it will run on, joined or
   started here (the local Ray's CPUs and GPUs, or a cluster's nodes).

``preflight_pretrain`` runs 1 and 2 for ``pretrain`` and refuses a run
directory that is not empty. ``preflight_tune`` runs 1 to 4 for every value
and every combination of a Tune grid; ``check_trial_resources``
(``seqgan_rl.experiment.tune``) then checks one trial's reservation against
the cluster.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import tempfile
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seqgan_rl.config import LEARNED_REWARD_MODELS, PretrainConfig, TrainConfig
from seqgan_rl.config.options import flat_dict
from seqgan_rl.data.oracle_data import load_dataset, load_oracle
from seqgan_rl.errors import ConfigError, DataError, SeqGANError
from seqgan_rl.experiment.plan import RunPlan
from seqgan_rl.experiment.ray_session import (
    check_cluster_resources,
    check_local_resources,
    check_reachable,
    cluster_address,
    connect_ray,
    local_ray_resources,
)
from seqgan_rl.models.dense_discriminator import DenseDiscriminator
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.runs import read_generator_checkpoint

if TYPE_CHECKING:
    from seqgan_rl.rewards import RewardModelSpec

REWARD_PROBE_ROWS = 4
"""Real sequences a fixed reward model scores once before a run starts (``check_reward_model``)."""


@dataclass
class RunInputs:
    """What the checks know of a run's data, read before any work (nothing trained, nothing written)."""

    vocab_size: int
    seq_len: int
    where: str
    """The data directory, or the oracle the data will be sampled from, as messages name it."""
    probe: np.ndarray
    """``REWARD_PROBE_ROWS`` real sequences, int64 [M, T]: what a fixed reward model is probed with."""
    real_data: str | None
    """``train.parquet`` when the data is on disk; ``None``: oracle samples the run writes later."""
    oracle: Oracle | None
    num_valid: int
    """Held-out sequences for NLL-test."""


# ------------------------------------------------------------------ the entry points


def preflight(plan: RunPlan, address: str | None = None, num_cpus: int | None = None) -> bool:
    """Every check of a ``train`` run (fresh or resumed) before any work; True if it started a local Ray.

    Ray is joined or started last, once everything else passed, and shut down again when the run's actors
    cannot fit it; a started Ray is the caller's to shut down. The oracle of a run without a data directory
    is kept in ``plan.oracle`` (loaded once: the run samples its data from it).
    """
    check_num_cpus(num_cpus)
    plan.config.validate()
    cluster = cluster_address(address)
    if cluster is not None and not _ray_initialized():
        check_reachable(cluster)  # seconds, where ray.init would retry a dead address for many minutes
    checkpoint = None if plan.generator_checkpoint is None else read_generator_checkpoint(plan.generator_checkpoint)[0]
    inputs = read_run_inputs(plan.config.mle, plan.data_dir, plan.oracle_params)
    generator_config = fitting_generator(checkpoint, plan.generator_checkpoint, inputs, plan.config.mle)
    check_evaluable(inputs)
    mle_checkpoint = plan.generator_checkpoint or plan.run_dir / "mle" / "checkpoint.pt"
    real_data = inputs.real_data or str(plan.run_dir / "data" / "train.parquet")
    algo_config = check_run_config(plan.config, inputs, generator_config, str(mle_checkpoint), real_data)
    if plan.data_dir is None and inputs.oracle is not None:
        plan.oracle = (inputs.oracle, inputs.where)
    return check_resources(algo_config, address, num_cpus)


def preflight_pretrain(config: PretrainConfig, run_dir: str | Path, data_dir: str | Path | None,
                       oracle_params: str | Path | None, *, resume: bool = False) -> None:
    """The checks of ``seqgan-rl pretrain``: its options, a new run directory (unless it resumes one: a
    run directory in use would be overwritten), data it can train and evaluate on."""
    config.validate()
    if not resume:
        check_new_run_dir(Path(run_dir))
    check_evaluable(read_run_inputs(config, data_dir, oracle_params))


def preflight_tune(base: TrainConfig, grid: dict[str, list[Any]], generator_checkpoint: str | Path,
                   oracle_params: str | Path | None) -> None:
    """The checks of ``seqgan-rl tune`` before Ray starts: each grid value alone, then every trial's
    options (each combination of the grid) against the shared generator checkpoint and oracle data.

    Without them a value out of range fails every trial it is in, and Tune reports it only when
    ``get_best_result`` finds no trial with a result.
    """
    base.validate()
    for name, values in grid.items():
        for value in values:
            _with_grid(base, {name: value})
    checkpoint = read_generator_checkpoint(generator_checkpoint)[0]
    inputs = read_run_inputs(base.mle, None, oracle_params)
    generator_config = fitting_generator(checkpoint, generator_checkpoint, inputs, base.mle)
    for combination in itertools.product(*([(name, v) for v in values] for name, values in grid.items())):
        params = dict(combination)
        try:
            check_run_config(_with_grid(base, params), inputs, generator_config, str(generator_checkpoint),
                             "oracle-samples/train.parquet")
        except SeqGANError as error:
            raise type(error)(f"--grid {_shown_params(params)}: {error}") from None


# ------------------------------------------------------------------ 1. options


def check_num_cpus(num_cpus: int | None) -> None:
    """``--num-cpus``, the local Ray's CPUs: a count, not a share."""
    if num_cpus is not None and num_cpus <= 0:
        raise ConfigError(f"--num-cpus must be > 0, got {num_cpus}")


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse a run directory that already holds something: a new run would overwrite it or mix with it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir}: a file, not a directory")
    held = sorted(entry.name for entry in run_dir.iterdir()) if run_dir.is_dir() else []
    if held:
        shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
        raise ConfigError(f"--run-dir {run_dir} is not empty (it holds {shown}); a new run needs an empty or new "
                          "directory: give another --run-dir")


def _with_grid(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """``base`` with a grid's values, resolved and validated; an impossible one named as ``--grid`` gave it."""
    try:
        return base.with_overrides(**params).resolved().validate()
    except SeqGANError as error:
        raise type(error)(f"--grid {_shown_params(params)}: {error}") from None


def _shown_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in params.items())


# ------------------------------------------------------------------ 2. inputs


def read_run_inputs(config: PretrainConfig, data_dir: str | Path | None,
                    oracle_params: str | Path | None) -> RunInputs:
    """The run's data as the checks need it: every table of ``data_dir`` read and checked
    (``seqgan_rl.data.oracle_data.load_dataset``), or the oracle it will be sampled from (a few sequences drawn, with
    their own seeded RNG, for the reward model's probe)."""
    if data_dir is None:
        oracle, source = load_oracle(oracle_params)
        rng = torch.Generator(device=oracle.device).manual_seed(config.data_seed)
        probe = oracle.sample(REWARD_PROBE_ROWS, generator=rng).cpu().numpy().astype(np.int64)
        return RunInputs(oracle.vocab_size, oracle.seq_len, source, probe, None, oracle, config.num_valid)
    data = load_dataset(config, data_dir, oracle_params)
    probe = data.train[:REWARD_PROBE_ROWS].numpy().astype(np.int64)
    return RunInputs(data.vocab_size, data.seq_len, str(data_dir), probe, str(Path(data_dir) / "train.parquet"),
                     data.oracle, len(data.valid))


def fitting_generator(checkpoint: GeneratorConfig | None, path: str | Path | None, inputs: RunInputs,
                      mle: PretrainConfig) -> GeneratorConfig:
    """The generator the run will train: the checkpoint's (refused if its vocabulary or length is not the
    data's), else the one the MLE phase will build for the data."""
    if checkpoint is None:
        return GeneratorConfig(vocab_size=inputs.vocab_size, seq_len=inputs.seq_len, emb_dim=mle.emb_dim,
                               hidden_dim=mle.hidden_dim)
    if checkpoint.vocab_size != inputs.vocab_size or checkpoint.seq_len != inputs.seq_len:
        raise DataError(f"{path}: generator vocabulary/length {checkpoint.vocab_size}/{checkpoint.seq_len} does not "
                        f"match the data's {inputs.vocab_size}/{inputs.seq_len}")
    return checkpoint


def check_evaluable(inputs: RunInputs) -> None:
    """Refuse data a run cannot evaluate on: no held-out split (NLL-test) and no oracle (NLL-oracle).

    Such a run trains to its end and then has no evaluation for its summary; ``prepare-data
    --valid-fraction 0`` makes such a corpus.
    """
    if inputs.num_valid == 0 and inputs.oracle is None:
        raise DataError(f"{inputs.where}: no held-out split (valid.parquet missing or empty) and no oracle.npz, so "
                        "neither NLL-test nor NLL-oracle can be computed; prepare the data with --valid-fraction "
                        "above 0 (e.g. 0.1)")


# ------------------------------------------------------------------ 3. models and 4. the algorithm


def check_run_config(config: TrainConfig, inputs: RunInputs, generator_config: GeneratorConfig,
                     mle_checkpoint: str, real_data: str) -> Any:
    """The checks of one run's options against its data: the discriminator, the reward model, the
    algorithm. Returns the run's RLlib ``AlgorithmConfig`` (validated; not built into an algorithm)."""
    check_discriminator(config, inputs)
    check_reward_model(config, inputs)
    if config.discriminator.d_fresh_real and inputs.oracle is None:
        raise ConfigError(f"d_fresh_real draws the d-steps' positives from the oracle, and {inputs.where} has none "
                          "(oracle.npz): it is for synthetic oracle data only")
    if config.discriminator.ratio_start == "oracle":
        check_oracle_start(inputs, generator_config)
    return check_algorithm(config, generator_config, mle_checkpoint, real_data)


def check_oracle_start(inputs: RunInputs, generator_config: GeneratorConfig) -> None:
    """``ratio_start=oracle``: q takes the oracle's weights, so the data must have an oracle of the generator's
    architecture."""
    if inputs.oracle is None:
        raise ConfigError(f"ratio_start=oracle starts q from the oracle, and {inputs.where} has none (oracle.npz): "
                          "it is for synthetic oracle data only")
    sizes = ("vocab_size", "seq_len", "emb_dim", "hidden_dim", "start_token")
    oracle_sizes = [getattr(inputs.oracle.config, name) for name in sizes]
    generator_sizes = [getattr(generator_config, name) for name in sizes]
    if oracle_sizes != generator_sizes:
        raise ConfigError(f"ratio_start=oracle: q has the generator's {'/'.join(sizes)} {generator_sizes}, the "
                          f"oracle of {inputs.where} has {oracle_sizes}")


def discriminator_sizes(model: type = Discriminator) -> dict[str, Any]:
    """The sizes ``--discriminator`` (the CNN, ``Discriminator``) or ``--dense-discriminator``
    (``DenseDiscriminator``) may give: the model's parameters (all but the data's ``vocab_size`` and
    ``seq_len``) and their annotated types."""
    hints = typing.get_type_hints(model.__init__)
    names = [name for name in inspect.signature(model.__init__).parameters
             if name not in ("self", "vocab_size", "seq_len")]
    return {name: hints[name] for name in names}


def _not_of_type(value: Any, kind: Any) -> str | None:
    """What ``value`` should be for a parameter annotated ``kind``, or None if it is that."""
    def is_int(item: Any) -> bool:
        return isinstance(item, int) and not isinstance(item, bool)

    if typing.get_origin(kind) is Sequence:
        ok = isinstance(value, (list, tuple)) and all(is_int(item) for item in value)
        return None if ok else "a list of integers"
    if kind is bool:
        return None if isinstance(value, bool) else "true or false"
    if kind is int:
        return None if is_int(value) else "an integer"
    if kind is float:
        ok = (is_int(value) or isinstance(value, float)) and math.isfinite(value)
        return None if ok else "a finite number"
    return None


def check_discriminator(config: TrainConfig, inputs: RunInputs) -> None:
    """``discriminator`` (``--discriminator`` JSON, the CNN's) and ``dense_discriminator`` against their
    models' real parameters and types, then the run's discriminator built on the CPU for the data's
    vocabulary and length, so its own checks (filter sizes vs the sequence length, counts, dropout) run
    now, not in its Ray actor."""
    for option, model, reward_model, default in (
            ("discriminator", Discriminator, "discriminator", "the paper's"),
            ("dense_discriminator", DenseDiscriminator, "dense", "the defaults")):
        sizes = dict(flat_dict(config)[option])
        shown = json.dumps(sizes) if sizes else f"{{}} ({default})"
        known = discriminator_sizes(model)
        unknown = sorted(set(sizes) - set(known))
        if unknown:
            raise ConfigError(f"{option} {shown}: unknown size(s) {', '.join(map(repr, unknown))}; the "
                              f"{model.__name__} takes {', '.join(known)}")
        for name, value in sizes.items():
            expected = _not_of_type(value, known[name])
            if expected is not None:
                raise ConfigError(f"{option} {shown}: {name} must be {expected}, got {json.dumps(value)}")
        if config.reward.reward_model != reward_model:
            continue
        try:
            with torch.random.fork_rng(devices=[]):  # its initialisation draws nothing from the run's RNGs
                model(inputs.vocab_size, inputs.seq_len, **sizes)
        except ConfigError as error:
            raise ConfigError(f"{option} {shown} does not fit the data ({inputs.where}: vocabulary "
                              f"{inputs.vocab_size}, sequence length {inputs.seq_len}): {error}; give "
                              f"--{option.replace('_', '-')} sizes that do"
                              f"{f' (filter_sizes of at most {inputs.seq_len})' if model is Discriminator else ''}"
                              ) from None


def check_reward_model(config: TrainConfig, inputs: RunInputs) -> None:
    """A fixed reward model (``reward_model`` other than the discriminator) built and run on a few real sequences
    (``seqgan_rl.rewards.probe_reward_model``): an import error, a scorer that raises, a wrong shape or NaN
    is one error now, not an env's traceback after the MLE phase.

    Oracle data is not written yet: the probe then reads a temporary copy of the probe's sequences (and
    the oracle) laid out as the run's data directory will be.
    """
    if config.reward.reward_model in LEARNED_REWARD_MODELS:
        return
    from seqgan_rl.data.tables import write_token_table
    from seqgan_rl.rewards import RewardModelSpec

    if inputs.real_data is not None:
        probe(RewardModelSpec.of_run(config, inputs.real_data, inputs.vocab_size, inputs.seq_len), inputs)
        return
    with tempfile.TemporaryDirectory(prefix="seqgan-rl-probe-") as tmp:
        write_token_table(Path(tmp) / "train.parquet", inputs.probe, inputs.vocab_size)
        if inputs.oracle is not None:
            inputs.oracle.save_npz(Path(tmp) / "oracle.npz")
        probe(RewardModelSpec.of_run(config, str(Path(tmp) / "train.parquet"), inputs.vocab_size, inputs.seq_len),
              inputs)


def probe(spec: RewardModelSpec, inputs: RunInputs) -> None:
    """Score the probe's sequences with the reward model; for ``ideal``, also build it: the oracle must be
    beside the data and fit it (a text corpus has none)."""
    from seqgan_rl.rewards import IDEAL, probe_reward_model

    probe_reward_model(spec, inputs.probe)
    if spec.name == IDEAL:
        spec.ideal_discriminator(GeneratorConfig(vocab_size=inputs.vocab_size, seq_len=inputs.seq_len))


def check_algorithm(config: TrainConfig, generator_config: GeneratorConfig, mle_checkpoint: str,
                    real_data: str) -> Any:
    """The run's RLlib config, built as ``run_training`` builds it and validated by RLlib (nothing started):
    ``minibatches`` dividing ``episodes_per_batch`` and RLlib's own rules for the algorithm."""
    from seqgan_rl.rllib.build import build_algorithm_config

    algo_config = build_algorithm_config(config, generator_config, mle_checkpoint, real_data,
                                         discriminator_threads=None)
    try:
        algo_config.validate()
    except SeqGANError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        detail = next(iter(str(error).strip().splitlines()), type(error).__name__)
        raise ConfigError(f"algo={config.algorithm.algo}: RLlib refuses the run's settings: {detail}") from None
    return algo_config


# ------------------------------------------------------------------ 5. resources


def _ray_initialized() -> bool:
    import ray

    return ray.is_initialized()


def check_resources(algo_config: Any, address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster (or start the local Ray) the run will use and refuse actors it can never hold
    (``check_local_resources``, ``check_cluster_resources``); True if a local Ray was started here.

    Before the MLE phase: a local Ray never gains the GPU or CPUs an actor asks for (``--preset paper``'s
    half GPU on a CPU-only host), and finding that after hours of MLE loses them.
    """
    import ray

    if cluster_address(address) is None and not ray.is_initialized():
        predicted = local_ray_resources(num_cpus)
        if predicted is not None:
            check_local_resources(algo_config, predicted)  # before a Ray is started for nothing
    started = connect_ray(address, num_cpus)
    try:
        if started:
            check_local_resources(algo_config)
        else:
            check_cluster_resources(algo_config)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return started
