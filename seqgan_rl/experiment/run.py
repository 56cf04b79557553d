"""A training run: every phase of the SeqGAN experiment in one run directory, resumable at any point.

What ``seqgan-rl train`` (``seqgan_rl.commands.train``: its flags) and the
cluster entry ``train.py`` run, and ``seqgan_rl.experiment.tune``'s trials.

``run_training`` reads as its phases: resolve the run (fresh or resumed),
the MLE phase (``seqgan_rl.mle``; skipped with a generator checkpoint),
discriminator pretraining and the adversarial loop (both inside the RLlib
algorithm on Ray: a local Ray is started unless an address is given or
``RAY_ADDRESS`` is set), and the summary.

Run directory layout::

    config.json          the TrainConfig (``--resume`` reuses it)
    data/                oracle samples as Parquet (+ oracle.npz) when no --data is given
    mle/                 the MLE phase: metrics.jsonl, samples.txt, tensorboard/, curves.png, checkpoint.pt
    metrics.jsonl        one record per adversarial batch (eval/, train/, time/ keys)
    samples.txt          a few decoded samples of the generator per evaluation (``seqgan_rl.evaluation.sample_log``)
    tensorboard/         the same records as TensorBoard scalars; samples/: the samples as TensorBoard text
    checkpoints/         the newest ``keep_checkpoints`` algorithm checkpoints
                         (``seqgan_rl.experiment.run_checkpoints``); ``latest.json`` names the newest
    generator.pt         the newest generator alone (``seqgan-rl sample``, evaluation)
    curves.png, summary.json
    .lock                held by the process that writes the run (``seqgan_rl.storage.files.run_dir_lock``)

Paths in ``config.json`` are relative when they lie inside the run directory,
so a moved or copied run resumes. The directory can always be resumed: a run
killed during MLE continues from its latest MLE evaluation (``mle/progress.pt``),
one killed after MLE but before its first checkpoint starts the adversarial
phase from the finished MLE generator, and a later one from its newest sound
checkpoint.

Exact resume: a run stopped after k batches and resumed to 2k gives the same
generator, bit for bit on CPU, as a run of 2k batches. Everything random is
either saved in the checkpoint (RLlib's state, the discriminator actor's and
the Monte Carlo pool's RNGs, and the driver's global RNGs, from which the
local EnvRunner samples) or drawn from a seed that depends only on (seed,
batch) (the evaluation samples, and the samples shown in samples.txt), and
evaluating or checkpointing draws nothing from the global RNGs.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seqgan_rl.config import (
    DENSE_REWARD_MODELS,
    FAST_MIN_FEATURES,
    LEARNED_REWARD_MODELS,
    PRECISION_PARTS,
    TrainConfig,
    discriminator_features,
)
from seqgan_rl.config.options import flat_dict
from seqgan_rl.data.oracle_data import Dataset, load_dataset, load_oracle, write_oracle_dataset
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.information import discriminator_information
from seqgan_rl.evaluation.metrics_log import MetricsLog, plot_curves, restart_logs
from seqgan_rl.evaluation.nll import nll_metrics
from seqgan_rl.evaluation.sample_log import SampleLog
from seqgan_rl.experiment.plan import RunPlan
from seqgan_rl.experiment.preflight import preflight
from seqgan_rl.experiment.ray_session import check_cluster_resources, check_local_resources
from seqgan_rl.experiment.run_checkpoints import (
    checkpoint_dirs,
    kept_records,
    latest_checkpoint,
    read_json,
    restore_run_checkpoint,
    save_run_checkpoint,
)
from seqgan_rl.mle import CONFIG_FILE, MLE_CHECKPOINT_FILE, run_pretraining
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.precision import hardware_summary
from seqgan_rl.runs import read_generator_checkpoint
from seqgan_rl.storage.checkpoint import MANIFEST_FILE
from seqgan_rl.storage.files import resolved_path, run_dir_lock, stored_path, write_json

logger = logging.getLogger(__name__)

INFO_STREAM = 3
"""Third entry of the information measure's sample seed ``SeedSequence([seed, iteration, 3])``."""

RESULT_METRICS: dict[str, tuple[str, ...]] = {
    "train/mean_q": ("learners", "mean_q"),
    "train/q_spread": ("learners", "q_spread"),
    "train/policy_loss": ("learners", "default_policy", "policy_loss"),
    "train/sampled_token_nll": ("learners", "default_policy", "sampled_token_nll"),
    "train/grad_norm": ("learners", "default_policy", "gradients_default_optimizer_global_norm"),
    "train/d_fake_mean": ("env_runners", "episode_return_mean"),
    "train/d_loss": ("discriminator", "loss"),
    "train/d_accuracy": ("discriminator", "accuracy"),
    "train/kl_to_mle": ("learners", "kl_to_mle"),
    "train/kl_coef": ("learners", "kl_coef"),
    "train/value_warmup_explained_var_first": ("value_warmup", "explained_var_first"),
    "train/value_warmup_explained_var_last": ("value_warmup", "explained_var_last"),
    "train/mc_worker_nodes": ("learners", "mc_worker_nodes"),
    "train/mc_worker_restarts": ("learners", "mc_worker_restarts"),
    "train/discriminator_restarts": ("discriminator", "restarts"),
    "time/sample_s": ("timers", "env_runner_sampling_timer"),
    "time/learner_s": ("timers", "learner_update_timer"),
    "time/monte_carlo_q_s": ("learners", "monte_carlo_q_s"),
    "time/d_steps_s": ("timers", "discriminator_steps"),
    "time/d_step_sample_s": ("discriminator", "sample_s"),
    "time/d_step_train_s": ("discriminator", "train_s"),
}
"""metrics.jsonl name → where ``Algorithm.train()``'s result holds it (the declarative table of what is logged)."""


class RunLog:
    """Every metrics record of a run to metrics.jsonl, TensorBoard and an optional callback; the
    generator's samples at each evaluation to samples.txt and TensorBoard text (``samples``).

    Opened on the logs as ``restart_logs`` left them: those of the checkpoint the run continues from.
    """

    def __init__(self, run_dir: Path, on_record: Callable[[dict[str, Any]], None] | None, samples: SampleLog) -> None:
        self.metrics = MetricsLog(run_dir, step_key="iteration", samples=samples)
        self.samples = samples
        self.on_record = on_record

    def log(self, entry: dict[str, Any], *, notify: bool = True) -> None:
        """Write ``entry``; ``notify=False`` keeps it from the callback (record 0, the MLE starting point)."""
        self.metrics.log(entry)
        if notify and self.on_record is not None:
            self.on_record(entry)

    def close(self) -> None:
        self.metrics.close()


def run_training(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    oracle_params: str | Path | None = None,
    generator_checkpoint: str | Path | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    device: str = "cpu",
    resume: bool = False,
    resume_batches: int | None = None,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) SeqGAN training into ``run_dir``; returns a summary.

    ``on_record`` receives every metrics record as it is logged (``seqgan_rl.experiment.tune``
    reports them to Ray Tune).

    ``config`` is ignored on resume: the run's own ``config.json`` is used, so
    a resumed run is the run that was started; only its number of adversarial
    batches may be raised (``resume_batches``) to train further.

    Every input is checked before any work (``seqgan_rl.experiment.preflight``:
    the options, the data against the models, the reward model, the
    algorithm's rules and the actors against the Ray the run joins or starts
    here), and nothing is written to ``run_dir`` until they all pass. Then
    ``config.json`` is written first, and from there on the directory is one
    ``--resume`` continues, whenever the run stops (module docstring). The run
    directory is locked while the run writes it (a second process is refused).
    """
    import ray

    run_dir = Path(run_dir).resolve()
    if resume:
        plan = resolve_resumed_run(run_dir, resume_batches)
    else:
        plan = resolve_fresh_run(config, run_dir, data_dir, oracle_params, generator_checkpoint)
    with ExitStack() as held:
        if resume:  # before any work: a second process on the run is refused at once
            held.enter_context(run_dir_lock(run_dir))
        started_ray = preflight(plan, address, num_cpus)
        try:
            if not resume:
                held.enter_context(run_dir_lock(run_dir))
                check_no_run(run_dir)  # still none: another process may have started one since
            logger.info("precision: %s", precision_report(plan.config))
            torch.manual_seed(plan.config.seed)
            if not resume:
                write_oracle_data(plan)
                write_run_config(plan)
            if plan.checkpoint is None:
                run_mle_phase(plan, device, progress)
            data, generator_config = load_run_data(plan, device)
            train_on_ray(plan, data, generator_config, started_ray, on_record, device, progress)
        finally:
            if started_ray:
                ray.shutdown()
        return write_summary(plan, data, plan.records)


def train_on_ray(plan: RunPlan, data: Dataset, generator_config: GeneratorConfig, started_ray: bool,
                 on_record: Callable[[dict[str, Any]], None] | None, device: str, progress: bool) -> None:
    """Discriminator pretraining (or the checkpoint's state) and the adversarial batches; ``plan.records``
    ends as every metrics record of the run."""
    restart_logs(plan.run_dir, plan.records, plan.iteration if plan.checkpoint is not None else -1)
    samples = SampleLog.for_run(plan.run_dir, "adversarial", "iteration", plan.run_dir / "generator.pt",
                                generator_config.vocab_size, plan.config.seed)
    log = RunLog(plan.run_dir, on_record, samples)
    try:
        algo = build_algorithm(plan, generator_config, started_ray)
        try:
            if plan.checkpoint is not None:
                resume_algorithm(algo, plan)
            else:
                pretrain_discriminator_phase(algo, plan, data, generator_config, log, device, progress)
            adversarial_phase(algo, plan, data, generator_config, log, device, progress)
        finally:
            algo.stop()
    finally:
        log.close()
        plan.records = log.metrics.records


# ------------------------------------------------------------------ resolve the run


def starting_options(config: TrainConfig) -> TrainConfig:
    """The options a run starts with: the per-algorithm defaults and the precision's parts filled in
    (``TrainConfig.resolved``, here and nowhere downstream), and validated."""
    return config.resolved().validate()


def resolve_fresh_run(config: TrainConfig, run_dir: Path, data_dir: str | Path | None,
                      oracle_params: str | Path | None, generator_checkpoint: str | Path | None) -> RunPlan:
    """A new run into ``run_dir`` (refused if it already holds one)."""
    config = starting_options(config)
    check_no_run(run_dir)
    return RunPlan(config, run_dir, data_dir, oracle_params, generator_checkpoint)


def holds_run(run_dir: str | Path) -> bool:
    """Whether a run was started in ``run_dir`` (``config.json`` is its first file)."""
    return (Path(run_dir) / CONFIG_FILE).is_file()


def check_same_options(run_dir: str | Path, config: TrainConfig) -> None:
    """Refuse to continue the run in ``run_dir`` as ``config`` if it was started with other options (its
    number of adversarial batches aside, which a continued run may raise): ``--resume-existing``.

    Raises:
        ConfigError: naming each option that differs, with both values.
    """
    path = Path(run_dir) / CONFIG_FILE
    try:
        saved = TrainConfig.from_dict(read_json(path, "run configuration")["config"])
    except (KeyError, TypeError, ConfigError) as error:
        raise DataError(f"{path}: not a run configuration this seqgan-rl can resume ({error})") from None
    given = flat_dict(starting_options(config))
    started = flat_dict(saved.with_overrides(adversarial_batches=config.schedule.adversarial_batches))
    differ = [f"{name}: {started[name]!r} there, {given[name]!r} given" for name in given
              if given[name] != started[name]]
    if differ:
        raise ConfigError(f"--resume-existing: {run_dir} holds a run started with other options ({'; '.join(differ)}); "
                          "give the options it was started with, or another --run-dir")


def check_no_run(run_dir: Path) -> None:
    """Refuse to start a run where one was started (``config.json`` is its first file)."""
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a run; use --resume to continue it or another --run-dir")


def resolve_resumed_run(run_dir: Path, resume_batches: int | None) -> RunPlan:
    """The run in ``run_dir`` with its own configuration and data, from where it stopped: its newest sound
    checkpoint, or (none written yet) the MLE phase, resumed or finished."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise DataError(f"{run_dir}: not a training run directory ({CONFIG_FILE} missing)")
    saved = read_json(run_dir / CONFIG_FILE, "run configuration")
    try:
        config = TrainConfig.from_dict(saved["config"])
        plan = RunPlan(config, run_dir, resolved_path(saved["data_dir"], run_dir),
                       resolved_path(saved["oracle_params"], run_dir), resolved_path(saved["mle_checkpoint"], run_dir))
    except (KeyError, TypeError, ConfigError) as error:
        raise DataError(f"{run_dir / CONFIG_FILE}: not a run configuration this seqgan-rl can resume "
                        f"({type(error).__name__}: {error})") from None
    if plan.generator_checkpoint is None and (run_dir / "mle" / MLE_CHECKPOINT_FILE).is_file():
        plan.generator_checkpoint = run_dir / "mle" / MLE_CHECKPOINT_FILE  # the MLE phase is done
    if any((path / MANIFEST_FILE).is_file() for path in checkpoint_dirs(run_dir)):
        plan.checkpoint, state = latest_checkpoint(run_dir)
        plan.iteration = int(state["iteration"])
        plan.phase_s = dict(state["phase_s"])
        plan.records = kept_records(run_dir / "metrics.jsonl", int(state["num_records"]), plan.iteration)
    if resume_batches is not None:
        plan.config = plan.config.with_overrides(adversarial_batches=resume_batches)
    if plan.config.schedule.adversarial_batches < plan.iteration:
        raise ConfigError(f"{run_dir}: --batches {plan.config.schedule.adversarial_batches} is fewer than the "
                          f"{plan.iteration} adversarial batches the run has already done")
    return plan


# ------------------------------------------------------------------ MLE phase and data


def write_oracle_data(plan: RunPlan) -> None:
    """A fresh run without a data directory: the synthetic oracle's samples become its Parquet data."""
    config = plan.config
    if plan.data_dir is None:
        oracle, source = plan.oracle or load_oracle(plan.oracle_params)
        write_oracle_dataset(plan.run_dir / "data", oracle, source, config.mle.num_train, config.mle.num_valid,
                             config.mle.data_seed)
        plan.data_dir, plan.oracle_params = plan.run_dir / "data", None


def run_mle_phase(plan: RunPlan, device: str, progress: bool) -> None:
    """The run's MLE generator (unless a generator checkpoint is given): trained, resumed from the MLE
    phase's latest evaluation, or (done before the run stopped) read back."""
    if plan.generator_checkpoint is None or Path(plan.generator_checkpoint).parent == plan.run_dir / "mle":
        mle = run_pretraining(plan.config.mle, plan.run_dir / "mle", data_dir=plan.data_dir,
                              oracle_params=plan.oracle_params, device=device, progress=progress, resume=True)
        plan.phase_s["mle_s"] = mle["wall_s"]
        plan.generator_checkpoint = mle["checkpoint"]


def load_run_data(plan: RunPlan, device: str) -> tuple[Dataset, GeneratorConfig]:
    """The run's data on ``device`` and its generator's sizes (refused if they do not fit each other)."""
    data = load_dataset(plan.config.mle, plan.data_dir, plan.oracle_params)
    data.valid = data.valid.to(device)
    if data.oracle is not None:
        data.oracle.to(device)
    generator_config, _ = read_generator_checkpoint(plan.generator_checkpoint)
    if generator_config.vocab_size != data.vocab_size or generator_config.seq_len != data.seq_len:
        raise DataError(f"{plan.generator_checkpoint}: generator vocabulary/length {generator_config.vocab_size}/"
                        f"{generator_config.seq_len} does not match the data's {data.vocab_size}/{data.seq_len}")
    return data, generator_config


def write_run_config(plan: RunPlan) -> None:
    """``config.json``: the configuration and the inputs, paths inside the run relative (``stored_path``);
    ``mle_checkpoint`` is the given generator checkpoint, ``null`` when the run trains its own in ``mle/``."""
    write_json(plan.run_dir / CONFIG_FILE, {
        "config": plan.config.to_dict(), "data_dir": stored_path(plan.data_dir, plan.run_dir),
        "oracle_params": stored_path(plan.oracle_params, plan.run_dir),
        "mle_checkpoint": stored_path(plan.generator_checkpoint, plan.run_dir)})


# ------------------------------------------------------------------ the algorithm on Ray


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. under ``taskset``; all of them elsewhere).

    A run on a Ray it started itself gives the discriminator actor this many torch threads (the driver waits
    during the d-steps). Two runs pinned to one core each then run one thread each; with the machine's count,
    each would run one thread per core and the two would fight over every core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_algorithm(plan: RunPlan, generator_config: GeneratorConfig, started_ray: bool) -> Any:
    """The run's RLlib algorithm (``seqgan_rl.rllib.build``), refused up front if the Ray it runs on (a local
    one, or a joined cluster without an autoscaler) can never hold its actors."""
    from seqgan_rl.rllib.build import build_algorithm_config

    algo_config = build_algorithm_config(
        plan.config, generator_config, str(plan.generator_checkpoint), str(Path(plan.data_dir) / "train.parquet"),
        discriminator_threads=usable_cpus() if started_ray else None)
    if started_ray:
        check_local_resources(algo_config)
    else:
        check_cluster_resources(algo_config)
    return algo_config.build_algo()


def resume_algorithm(algo: Any, plan: RunPlan) -> None:
    """Put the algorithm and the driver's RNGs back where the checkpoint left them (the logs were cut back
    to it by ``restart_logs``)."""
    restore_run_checkpoint(algo, plan.checkpoint)
    logger.info("resuming %s at adversarial batch %d", plan.run_dir, plan.iteration)


def generator_from_algorithm(algo: Any, config: GeneratorConfig, device: str) -> Generator:
    """The Learner's current generator as a core ``Generator`` on ``device``.

    Draws nothing from the global RNGs (the layers' default initialisation
    would): the local EnvRunner samples from them, so an evaluation or a
    checkpoint must not change what the next batch samples.
    """
    with torch.random.fork_rng(devices=[]):
        generator = Generator(config, init_std=None)
    generator.load_state_dict({name: torch.as_tensor(value) for name, value in algo.generator_weights().items()})
    return generator.to(device).eval()


def evaluation(algo: Any, plan: RunPlan, data: Dataset, generator_config: GeneratorConfig, iteration: int,
               device: str, samples: SampleLog) -> dict[str, float]:
    """NLL-oracle / NLL-test of the current generator, on samples drawn from a seed of (seed, iteration) alone;
    its text shown in ``samples`` (drawn from a seed of their own, ``seqgan_rl.evaluation.sample_log``).

    So an evaluation gives the same numbers whichever evaluations came before
    it: a run stopped at a batch that is not a multiple of ``eval_every``
    evaluates there once more, and its resumed continuation must still match
    the run that never stopped.
    """
    seed = int(np.random.SeedSequence([plan.config.seed, iteration]).generate_state(1)[0])
    rng = torch.Generator(device=device).manual_seed(seed)
    generator = generator_from_algorithm(algo, generator_config, device)
    metrics = nll_metrics(generator, data, plan.config.mle.num_eval_samples, rng)
    samples.write(generator, iteration)
    return metrics


def information(algo: Any, plan: RunPlan, data: Dataset, generator_config: GeneratorConfig, iteration: int,
                device: str) -> dict[str, float]:
    """The reward model's information measure (``seqgan_rl.evaluation.information.discriminator_information``)
    on the first ``info_samples`` held-out real sequences and as many fresh samples of the current generator (a seed of
    (seed, iteration, ``INFO_STREAM``) alone: the same whichever evaluations came before); ``{}`` when off or
    without held-out data."""
    count = min(plan.config.schedule.info_samples, len(data.valid))
    if count == 0:
        return {}
    seed = int(np.random.SeedSequence([plan.config.seed, iteration, INFO_STREAM]).generate_state(1)[0])
    generator = generator_from_algorithm(algo, generator_config, device)
    with torch.no_grad():
        fake = generator.sample(count, generator=torch.Generator(device=device).manual_seed(seed))  # (n, T)
        tokens = torch.cat([data.valid[:count].to(fake.device), fake])  # (2n, T)
        log_ratio = None
        if data.oracle is not None:
            log_ratio = (data.oracle.log_prob(tokens).sum(1) - generator.log_prob(tokens).sum(1)).cpu().numpy()
    is_real = np.arange(2 * count) < count
    logits = algo.reward_logits(tokens.cpu().numpy().astype(np.int64))
    return discriminator_information(logits, is_real, log_ratio)


def pretrain_discriminator_phase(algo: Any, plan: RunPlan, data: Dataset, generator_config: GeneratorConfig,
                                 log: RunLog, device: str, progress: bool) -> None:
    """Record 0: the MLE generator's evaluation and the discriminator pretrained against it."""
    entry: dict[str, Any] = {"iteration": 0, **evaluation(algo, plan, data, generator_config, 0, device, log.samples)}
    learned = plan.config.reward.reward_model in LEARNED_REWARD_MODELS
    rounds = plan.config.discriminator.d_pretrain_rounds if learned else 0
    bar = tqdm(total=rounds, desc="D pretrain", unit="d-step", disable=not progress or not rounds)
    started = time.perf_counter()
    stats = algo.pretrain_discriminator(
        progress=lambda step, s: (bar.update(1), bar.set_postfix(acc=round(s["accuracy"], 3))))
    bar.close()
    plan.phase_s["d_pretrain_s"] = time.perf_counter() - started
    if stats:
        entry.update({"train/d_accuracy": stats[-1]["accuracy"], "train/d_loss": stats[-1]["loss"],
                      "time/d_round_s": plan.phase_s["d_pretrain_s"] / len(stats)})
    entry.update(information(algo, plan, data, generator_config, 0, device))
    log.log(entry, notify=False)


def adversarial_phase(algo: Any, plan: RunPlan, data: Dataset, generator_config: GeneratorConfig, log: RunLog,
                      device: str, progress: bool) -> None:
    """The adversarial batches from where the run stands to ``adversarial_batches``, evaluated and
    checkpointed on their schedules (and after the last)."""
    config = plan.config
    before = plan.phase_s.get("adversarial_s", 0.0)
    started = time.perf_counter()
    bar = tqdm(range(plan.iteration + 1, config.schedule.adversarial_batches + 1), desc="SeqGAN", unit="batch",
               disable=not progress, initial=plan.iteration, total=config.schedule.adversarial_batches)
    for iteration in bar:
        iteration_start = time.perf_counter()
        result = algo.train()
        entry = {"iteration": iteration, **flatten_result(result),
                 "time/iteration_s": time.perf_counter() - iteration_start}
        last = iteration == config.schedule.adversarial_batches
        if iteration % config.schedule.eval_every == 0 or last:
            eval_start = time.perf_counter()
            entry.update(evaluation(algo, plan, data, generator_config, iteration, device, log.samples))
            entry.update(information(algo, plan, data, generator_config, iteration, device))
            entry["time/eval_s"] = time.perf_counter() - eval_start
            bar.set_postfix({k.split("/")[1]: round(v, 3) for k, v in entry.items() if k.startswith("eval/")})
        log.log(entry)
        if iteration % config.schedule.checkpoint_every == 0 or last:
            plan.phase_s["adversarial_s"] = before + time.perf_counter() - started
            plan.checkpoint = save_run_checkpoint(algo, plan.run_dir, iteration,
                                                  generator_from_algorithm(algo, generator_config, "cpu"),
                                                  len(log.metrics.records), plan.phase_s,
                                                  config.schedule.keep_checkpoints)
    plan.phase_s["adversarial_s"] = before + time.perf_counter() - started


def flatten_result(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of one ``Algorithm.train()`` result that go to metrics.jsonl (``RESULT_METRICS``)."""
    picked: dict[str, float] = {}
    for name, path in RESULT_METRICS.items():
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and value == value:
            picked[name] = float(value)
    timers = result.get("timers", {})
    picked["time/sync_s"] = float((timers.get("synch_weights") or 0.0) + (timers.get("rollout_policy_sync") or 0.0))
    return picked


# ------------------------------------------------------------------ summary


def precision_report(config: TrainConfig) -> dict[str, Any]:
    """The run's ``--precision``, what it asked of each part, and what this host offers them (each actor
    still falls back on its own device: a warning in the logs says so)."""
    report = {"mode": config.precision, "d_precision": config.discriminator.d_precision,
              "score_precision": config.rollouts.score_precision, "hardware": hardware_summary()}
    if config.precision == "fast" and config.reward.reward_model in DENSE_REWARD_MODELS:
        report["note"] = (f"the {config.reward.reward_model} discriminator's LSTM has no reduced-precision path: its "
                          "parts stay fp32")
    elif config.precision == "fast" and config.precision_parts() == PRECISION_PARTS["exact"]:
        report["note"] = (f"the discriminator has {discriminator_features(config.discriminator.cnn_sizes)} features, "
                          f"fewer than {FAST_MIN_FEATURES}: its parts stay fp32, which is faster there")
    return report


def write_summary(plan: RunPlan, data: Dataset, records: list[dict[str, Any]]) -> dict[str, Any]:
    """``curves.png`` and ``summary.json``: NLL-oracle / NLL-test at the start and end, the phases' seconds."""
    run_dir = plan.run_dir
    plot_curves(records, run_dir / "curves.png", x_key="iteration")
    evaluated = [r for r in records if "eval/nll_oracle" in r or "eval/nll_test" in r]
    start, final = evaluated[0], evaluated[-1]
    summary = {
        "run_dir": str(run_dir), "data": data.description,
        "adversarial_batches": plan.config.schedule.adversarial_batches,
        "nll_oracle_mle": start.get("eval/nll_oracle"), "nll_oracle_final": final.get("eval/nll_oracle"),
        "nll_test_mle": start.get("eval/nll_test"), "nll_test_final": final.get("eval/nll_test"),
        "checkpoint": str(plan.checkpoint), "generator": str(run_dir / "generator.pt"), **plan.phase_s,
        "precision": precision_report(plan.config),
    }
    write_json(run_dir / "summary.json", summary)
    return summary
