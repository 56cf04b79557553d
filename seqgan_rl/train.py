"""``seqgan-rl train``: the whole SeqGAN experiment in one run directory, resumable.

Phases: (1) MLE pretraining of the generator (``seqgan_rl.pretrain``; skipped
with a generator checkpoint), (2) discriminator pretraining and (3) the
adversarial batches, both inside the RLlib ``SeqGAN`` algorithm on Ray (a local
Ray is started unless an address is given or ``RAY_ADDRESS`` is set).

Run directory layout::

    config.json          the TrainConfig (``--resume`` reuses it)
    data/                oracle samples as Parquet (+ oracle.npz) when no --data is given
    mle/                 the MLE phase: metrics.jsonl, curves.png, checkpoint.pt
    metrics.jsonl        one record per adversarial batch (eval/, train/, time/ keys)
    tensorboard/         the same records as TensorBoard scalars
    checkpoints/         algorithm checkpoints (RLlib + discriminator + rollout policy + the
                         driver's RNGs), each sealed by a manifest (``seqgan_rl.checkpoint``);
                         ``latest.json``, written after the manifest, names the newest one
    generator.pt         the newest generator alone (``seqgan-rl sample``, evaluation)
    curves.png, summary.json

Exact resume: a run stopped after k batches and resumed to 2k gives the same
generator, bit for bit on CPU, as a run of 2k batches. Everything random is
either saved in the checkpoint (RLlib's state, the discriminator actor's and
the Monte Carlo pool's RNGs, and here the driver's global RNGs, from which the
local EnvRunner samples) or drawn from a seed that depends only on (seed,
batch) (the evaluation samples), and evaluating or checkpointing draws nothing
from the global RNGs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import socket
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seqgan_rl.checkpoint import (
    GENERATOR_KINDS,
    load_checkpoint,
    open_checkpoint_dir,
    save_checkpoint,
    seal_checkpoint_dir,
)
from seqgan_rl.config import TrainConfig
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.fileio import atomic_path, write_json
from seqgan_rl.generator import Generator, GeneratorConfig
from seqgan_rl.metrics import MetricsLog, plot_curves
from seqgan_rl.pretrain import evaluate, load_dataset, load_oracle, run_pretraining, write_oracle_dataset

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LATEST_FILE = "latest.json"
RNG_FILE = "rng.pt"
RUN_CHECKPOINT_KIND = "run"
"""Kind of a sealed algorithm checkpoint directory (``seqgan_rl.checkpoint.seal_checkpoint_dir``)."""
CONNECT_TIMEOUT_S = 10.0
"""How long the cluster address may take to accept a TCP connection before ``train`` gives up."""


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object the run wrote (``DataError`` naming the file if it is not one)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a readable {what} ({error})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: not a readable {what} (a JSON {type(record).__name__}, expected an object)")
    return record


def check_reachable(address: str) -> None:
    """Fail in seconds on a cluster address that nothing answers at.

    ``ray.init(address=...)`` retries a dead address for many minutes (Ray
    2.60: 20 attempts of ~40 s each), logging warnings but raising nothing, so
    a typo in ``--address`` would look like a hang. A plain TCP connection to
    the GCS port (or the Ray Client port of a ``ray://`` address) says at once
    whether anything listens there. ``auto`` (the cluster this machine last
    started) is left to Ray.
    """
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {reason} (is `ray start --head` running "
                          "there, and the port open?)") from None


def _cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``, else ``None`` (a local Ray, also for "local")."""
    cluster = address or os.environ.get("RAY_ADDRESS")
    return None if cluster in (None, "", "local") else cluster


def _connect_ray(address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    cluster = _cluster_address(address)
    if cluster is not None:
        check_reachable(cluster)  # again: the MLE phase before this may have taken hours
        try:
            ray.init(address=cluster, log_to_driver=False)
        except (ConnectionError, RuntimeError) as error:  # RuntimeError: "Failed to connect to GCS"
            first_line = next(iter(str(error).strip().splitlines()), type(error).__name__)
            raise ConfigError(f"cannot join the Ray cluster at {cluster!r}: {first_line}") from None
        return False
    # address="local": always a new local instance, never a stale cluster another process left behind
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def _check_local_resources(algo_config: Any) -> None:
    """Refuse a run whose actors cannot all start on the local Ray we started.

    Ray waits forever for resources a cluster lacks (an autoscaler may add
    them); on a local Ray nothing will, so an actor asking for more CPUs or
    GPUs than it has would hang the run without a word. Counted: the
    discriminator actor and the K Monte Carlo rollout workers (the EnvRunner
    and the Learner run in this process), a lower bound of what is needed.
    """
    import ray

    from seqgan_rl.rllib.adversarial import seqgan_settings

    settings = seqgan_settings(algo_config)
    adversarial, monte_carlo = settings.adversarial, settings.monte_carlo
    workers = 0 if settings.reward == "terminal" else monte_carlo.num_workers
    need = {"CPU": adversarial.num_cpus + workers * monte_carlo.worker_num_cpus,
            "GPU": adversarial.num_gpus + workers * monte_carlo.worker_num_gpus}
    have = ray.cluster_resources()
    short = [f"{amount:g} {name}s (it has {have.get(name, 0.0):g})" for name, amount in need.items()
             if amount > have.get(name, 0.0)]
    if short:
        raise ConfigError(
            f"the local Ray cannot start this run's actors (the discriminator and {workers} rollout worker(s)): "
            f"they need {' and '.join(short)}; lower --num-mc-workers, --mc-worker-num-cpus, --mc-worker-num-gpus "
            "or --discriminator-num-gpus, or raise --num-cpus")


def _generator_from_algorithm(algo: Any, config: GeneratorConfig, device: str) -> Generator:
    """The Learner's current generator as a core ``Generator`` on ``device``.

    Draws nothing from the global RNGs (the layers' default initialisation
    would): the local EnvRunner samples from them, so an evaluation or a
    checkpoint must not change what the next batch samples.
    """
    from ray.rllib.core import DEFAULT_MODULE_ID

    state = algo.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID]
    with torch.random.fork_rng(devices=[]):
        generator = Generator(config, init_std=None)
    generator.load_state_dict({k.removeprefix("generator."): torch.as_tensor(v) for k, v in state.items()
                               if k.startswith("generator.")})
    return generator.to(device).eval()


def _flatten_result(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of one ``SeqGAN.train()`` result that go to metrics.jsonl, with stable names."""
    learners = result.get("learners", {})
    module = learners.get("default_policy", {})
    timers = result.get("timers", {})
    runners = result.get("env_runners", {})
    disc = result.get("discriminator", {})
    picked = {
        "train/mean_q": learners.get("mean_q"),
        "train/policy_loss": module.get("policy_loss"),
        "train/sampled_token_nll": module.get("sampled_token_nll"),
        "train/grad_norm": module.get("gradients_default_optimizer_global_norm"),
        "train/d_fake_mean": runners.get("episode_return_mean"),
        "train/d_loss": disc.get("loss"),
        "train/d_accuracy": disc.get("accuracy"),
        "time/sample_s": timers.get("env_runner_sampling_timer"),
        "time/learner_s": timers.get("learner_update_timer"),
        "time/monte_carlo_q_s": learners.get("monte_carlo_q_s"),
        "train/mc_worker_nodes": learners.get("mc_worker_nodes"),
        "time/sync_s": (timers.get("synch_weights") or 0.0) + (timers.get("rollout_policy_sync") or 0.0),
        "time/d_steps_s": timers.get("discriminator_steps"),
        "time/d_step_sample_s": disc.get("sample_s"),
        "time/d_step_train_s": disc.get("train_s"),
    }
    return {k: float(v) for k, v in picked.items() if isinstance(v, (int, float)) and v == v}


def build_algorithm_config(config: TrainConfig, generator_config: GeneratorConfig, mle_checkpoint: str,
                           real_data: str, *, discriminator_threads: int | None) -> Any:
    """The RLlib config of a run (one place, so a resumed run builds the same algorithm).

    ``config.algo == "seqgan"``: ``SeqGANConfig``. Otherwise the RLlib algorithm
    (``ppo``, ``appo``, ``impala``) with the same SeqGAN pieces (``with_seqgan``),
    the same learning rate and gradient clip, and the same budget: one gradient
    step per iteration on ``episodes_per_batch`` whole sequences.
    """
    from dataclasses import replace

    from seqgan_rl.rllib.algorithm import SeqGANConfig
    from seqgan_rl.rllib.algorithms import build_config, with_seqgan

    seqgan = (
        SeqGANConfig()
        .generator(generator_config, checkpoint=mle_checkpoint)
        .training(
            real_data=real_data, lr=config.adversarial_lr, episodes_per_batch=config.episodes_per_batch,
            g_steps=config.g_steps, d_steps=config.d_steps, d_epochs=config.d_epochs,
            d_num_negatives=config.d_num_negatives, d_pretrain_rounds=config.d_pretrain_rounds, d_lr=config.d_lr,
            d_precision=config.d_precision,
            discriminator=dict(config.discriminator), num_rollouts=config.num_rollouts,
            rollout_beta=config.rollout_beta, num_mc_workers=config.num_mc_workers,
            mc_worker_num_cpus=config.mc_worker_num_cpus, mc_worker_num_gpus=config.mc_worker_num_gpus,
            score_precision=config.score_precision, discriminator_num_gpus=config.discriminator_num_gpus,
            discriminator_num_threads=discriminator_threads,
        )
        .env_runners(num_envs_per_env_runner=config.episodes_per_batch)
        .debugging(seed=config.seed)
    )
    if config.algo == "seqgan":
        return seqgan
    batch_steps = config.episodes_per_batch * generator_config.seq_len
    other = build_config(config.algo, lr=config.adversarial_lr, grad_clip=config.grad_clip, grad_clip_by="global_norm",
                         train_batch_size_per_learner=batch_steps, gamma=1.0, **ALGO_TRAINING[config.algo](batch_steps))
    other.env_runners(num_env_runners=0, num_envs_per_env_runner=config.episodes_per_batch,
                      rollout_fragment_length=generator_config.seq_len)
    other.debugging(seed=config.seed)
    settings = replace(seqgan.seqgan_settings(), reward=config.reward)
    return with_seqgan(other, settings, generator_config, mle_checkpoint)


ALGO_TRAINING: dict[str, Any] = {
    "ppo": lambda steps: {"minibatch_size": steps, "num_epochs": 1, "lambda_": 0.95, "entropy_coeff": 0.0},
    "appo": lambda steps: {"minibatch_size": steps, "num_epochs": 1, "entropy_coeff": 0.0},
    "impala": lambda steps: {"minibatch_size": steps, "entropy_coeff": 0.0},
}
"""Per-algorithm options giving one gradient step per iteration on the whole batch, no entropy bonus
(SeqGAN has none), undiscounted returns (a sequence's reward is its whole)."""


def _eval_rng(seed: int, iteration: int, device: str) -> torch.Generator:
    """The RNG of the evaluation samples at adversarial batch ``iteration`` (0: before the first).

    A function of (seed, iteration) alone, so an evaluation gives the same
    numbers whichever evaluations came before it: a run stopped at a batch
    that is not a multiple of ``eval_every`` evaluates there once more, and its
    resumed continuation must still match the run that never stopped.
    """
    return torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence([seed, iteration]).generate_state(1)[0]))


def _process_rng_state() -> dict[str, Any]:
    """This (the driver) process's global RNGs: torch's, NumPy's and Python's.

    Every config ``build_algorithm_config`` makes has ``num_env_runners=0``:
    the EnvRunner that samples the generator's sequences and the Learner run
    in this process and draw from these RNGs (RLlib seeds exactly these three),
    but RLlib's checkpoints do not hold them. Without them a resumed run
    samples other sequences than the run that never stopped.
    """
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}}


def _set_process_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``_process_rng_state``."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))


def _save(algo: Any, run_dir: Path, iteration: int, generator: Generator, num_records: int,
          phase_s: dict[str, float]) -> Path:
    """Write checkpoint ``iteration`` completely, seal it, then point ``latest.json`` at it, then drop older ones.

    ``latest.json`` is the commit: it is replaced (atomically) only after the
    checkpoint's manifest, which is written after every other file. A crash at
    any moment leaves ``latest.json`` naming a complete, sealed checkpoint (the
    previous one until the new one is sealed); a half-written directory is
    never named and is removed by the next save.
    """
    checkpoints = run_dir / "checkpoints"
    target = checkpoints / f"iteration-{iteration:06d}"
    if target.exists():  # a partial write by an earlier attempt that crashed
        shutil.rmtree(target)
    algo.save_to_path(str(target))
    save_checkpoint(target / "generator.pt", "generator", {
        "generator": generator.state_dict(), "generator_config": generator.config.__dict__, "iteration": iteration})
    save_checkpoint(target / RNG_FILE, "rng", _process_rng_state())
    seal_checkpoint_dir(target, RUN_CHECKPOINT_KIND,
                        {"iteration": iteration, "num_records": num_records, "phase_s": phase_s})
    write_json(checkpoints / LATEST_FILE, {"iteration": iteration, "path": target.name})
    with atomic_path(run_dir / "generator.pt") as tmp:
        shutil.copyfile(target / "generator.pt", tmp)
    for old in checkpoints.glob("iteration-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest complete algorithm checkpoint of a run and its manifest (iteration, num_records, phase_s).

    Raises:
        DataError: naming what is wrong: no checkpoint yet, an unreadable
            ``latest.json``, or a checkpoint that is incomplete, of another
            version or whose files differ from its manifest (truncated, changed).
    """
    pointer = run_dir / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        raise DataError(f"{run_dir}: no checkpoint to resume from ({pointer} is missing)")
    name = _read_json(pointer, "checkpoint pointer").get("path")
    if not isinstance(name, str) or not name.startswith("iteration-"):
        raise DataError(f"{pointer}: names no checkpoint directory (path {name!r})")
    target = run_dir / "checkpoints" / name
    return target, open_checkpoint_dir(target, RUN_CHECKPOINT_KIND)


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

    ``on_record`` receives every metrics record as it is logged (``seqgan_rl.tune``
    reports them to Ray Tune).

    ``config`` is ignored on resume: the run's own ``config.json`` is used, so
    a resumed run is the run that was started; only its number of adversarial
    batches may be raised (``resume_batches``) to train further.

    Every input is checked before any work (a missing generator checkpoint,
    an unreachable cluster, a run directory without a complete checkpoint),
    and ``config.json`` is written only once the data and the generator are
    known to fit, so a failed start never leaves a run that ``--resume`` would
    take up.
    """
    import ray

    run_dir = Path(run_dir).resolve()  # RLlib checkpoints need absolute paths
    checkpoint: Path | None = None
    phase_s: dict[str, float] = {}
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise DataError(f"{run_dir}: not a training run directory ({CONFIG_FILE} missing)")
        saved = _read_json(run_dir / CONFIG_FILE, "run configuration")
        try:
            config = TrainConfig.from_dict(saved["config"])
            data_dir, oracle_params = saved["data_dir"], saved["oracle_params"]
            generator_checkpoint = saved["mle_checkpoint"]
        except (KeyError, TypeError) as error:
            raise DataError(f"{run_dir / CONFIG_FILE}: not a run configuration this seqgan-rl can resume "
                            f"({type(error).__name__}: {error})") from None
        checkpoint, state = latest_checkpoint(run_dir)
        kept_records = _kept_records(MetricsLog(run_dir).path, int(state["num_records"]), int(state["iteration"]))
        if resume_batches is not None:
            config = config.with_overrides(adversarial_batches=resume_batches)
        if config.adversarial_batches < state["iteration"]:
            raise ConfigError(f"{run_dir}: --batches {config.adversarial_batches} is fewer than the "
                              f"{state['iteration']} adversarial batches the run has already done")
    else:
        config.validate()
        if (run_dir / CONFIG_FILE).exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume to continue it or another --run-dir")
    if num_cpus is not None and num_cpus <= 0:
        raise ConfigError(f"--num-cpus must be > 0, got {num_cpus}")
    generator_record = None if generator_checkpoint is None else load_checkpoint(generator_checkpoint,
                                                                                 GENERATOR_KINDS)
    cluster = _cluster_address(address)
    if cluster is not None and not ray.is_initialized():
        check_reachable(cluster)  # now, not after an MLE phase of hours
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)

    if not resume:
        if data_dir is None:  # the synthetic oracle: its samples become this run's Parquet data
            oracle, source = load_oracle(oracle_params)
            write_oracle_dataset(run_dir / "data", oracle, source, config.mle.num_train, config.mle.num_test,
                                 config.mle.data_seed)
            data_dir, oracle_params = run_dir / "data", None
        if generator_checkpoint is None:
            started = time.perf_counter()
            mle = run_pretraining(config.mle, run_dir / "mle", data_dir=data_dir, oracle_params=oracle_params,
                                  device=device, progress=progress)
            phase_s["mle_s"] = time.perf_counter() - started
            generator_checkpoint = mle["checkpoint"]
            generator_record = load_checkpoint(generator_checkpoint, GENERATOR_KINDS)

    data = load_dataset(config.mle, data_dir, oracle_params)
    data.test = data.test.to(device)
    if data.oracle is not None:
        data.oracle.to(device)
    generator_config = GeneratorConfig(**generator_record["generator_config"])
    if generator_config.vocab_size != data.vocab_size or generator_config.seq_len != data.seq_len:
        raise DataError(f"{generator_checkpoint}: generator vocabulary/length {generator_config.vocab_size}/"
                        f"{generator_config.seq_len} does not match the data's {data.vocab_size}/{data.seq_len}")
    if not resume:
        # absolute paths: --resume, sample and evaluate may run from another directory
        write_json(run_dir / CONFIG_FILE, {
            "config": config.to_dict(), "data_dir": str(Path(data_dir).resolve()),
            "oracle_params": None if oracle_params is None else str(Path(oracle_params).resolve()),
            "mle_checkpoint": str(Path(generator_checkpoint).resolve()), "phase_s": phase_s})

    started_ray = _connect_ray(address, num_cpus)
    log = MetricsLog(run_dir)
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    try:
        algo_config = build_algorithm_config(
            config, generator_config, str(generator_checkpoint), str(Path(data_dir) / "train.parquet"),
            discriminator_threads=os.cpu_count() if started_ray else None)
        if started_ray:
            _check_local_resources(algo_config)
        algo = algo_config.build_algo()
        try:
            start_iteration = 0
            if checkpoint is not None:
                algo.restore_from_path(str(checkpoint))
                _set_process_rng_state(load_checkpoint(checkpoint / RNG_FILE, "rng"))
                start_iteration = int(state["iteration"])
                phase_s = dict(state["phase_s"])
                log.records = kept_records
                with atomic_path(log.path) as tmp:
                    tmp.write_text("".join(json.dumps(r) + "\n" for r in log.records))
                logger.info("resuming %s at adversarial batch %d", run_dir, start_iteration)
            else:
                generator = _generator_from_algorithm(algo, generator_config, device)
                entry = {"iteration": 0, **evaluate(generator, data, config.mle.num_eval_samples,
                                                    _eval_rng(config.seed, 0, device))}
                d_bar = tqdm(total=config.d_pretrain_rounds, desc="D pretrain", unit="d-step", disable=not progress)
                started = time.perf_counter()
                stats = algo.pretrain_discriminator(
                    progress=lambda step, s: (d_bar.update(1), d_bar.set_postfix(acc=round(s["accuracy"], 3))))
                d_bar.close()
                phase_s["d_pretrain_s"] = time.perf_counter() - started
                if stats:
                    entry.update({"train/d_accuracy": stats[-1]["accuracy"], "train/d_loss": stats[-1]["loss"],
                                  "time/d_round_s": phase_s["d_pretrain_s"] / len(stats)})
                log.log(entry)
                for key, value in entry.items():
                    if key != "iteration":
                        writer.add_scalar(key, value, 0)

            adversarial_before = phase_s.get("adversarial_s", 0.0)
            started = time.perf_counter()
            bar = tqdm(range(start_iteration + 1, config.adversarial_batches + 1), desc="SeqGAN", unit="batch",
                       disable=not progress, initial=start_iteration, total=config.adversarial_batches)
            for iteration in bar:
                iteration_start = time.perf_counter()
                result = algo.train()
                entry = {"iteration": iteration, **_flatten_result(result),
                         "time/iteration_s": time.perf_counter() - iteration_start}
                last = iteration == config.adversarial_batches
                if iteration % config.eval_every == 0 or last:
                    eval_start = time.perf_counter()
                    generator = _generator_from_algorithm(algo, generator_config, device)
                    entry.update(evaluate(generator, data, config.mle.num_eval_samples,
                                          _eval_rng(config.seed, iteration, device)))
                    entry["time/eval_s"] = time.perf_counter() - eval_start
                    bar.set_postfix({k.split("/")[1]: round(v, 3) for k, v in entry.items() if k.startswith("eval/")})
                log.log(entry)
                if on_record is not None:
                    on_record(entry)
                for key, value in entry.items():
                    if key != "iteration":
                        writer.add_scalar(key, value, iteration)
                writer.flush()
                if iteration % config.checkpoint_every == 0 or last:
                    generator = _generator_from_algorithm(algo, generator_config, "cpu")
                    phase_s["adversarial_s"] = adversarial_before + time.perf_counter() - started
                    checkpoint = _save(algo, run_dir, iteration, generator, len(log.records), phase_s)
            phase_s["adversarial_s"] = adversarial_before + time.perf_counter() - started
        finally:
            algo.stop()
    finally:
        writer.close()
        if started_ray:
            ray.shutdown()

    records = log.records
    plot_curves(records, run_dir / "curves.png", x_key="iteration")
    evaluated = [r for r in records if "eval/nll_oracle" in r or "eval/nll_test" in r]
    start, final = evaluated[0], evaluated[-1]
    summary = {
        "run_dir": str(run_dir), "data": data.description, "adversarial_batches": config.adversarial_batches,
        "nll_oracle_mle": start.get("eval/nll_oracle"), "nll_oracle_final": final.get("eval/nll_oracle"),
        "nll_test_mle": start.get("eval/nll_test"), "nll_test_final": final.get("eval/nll_test"),
        "checkpoint": str(checkpoint), "generator": str(run_dir / "generator.pt"), **phase_s,
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def _kept_records(path: Path, num_records: int, iteration: int) -> list[dict[str, Any]]:
    """The first ``num_records`` metrics records of ``path``: those the checkpoint at ``iteration`` follows.

    Later lines (batches after the checkpoint, a line cut short by a crash) are
    dropped: the resumed run logs those batches again.
    """
    lines = path.read_text().splitlines()[:num_records] if path.is_file() else []
    if len(lines) < num_records:
        raise DataError(f"{path}: {len(lines)} records, but the checkpoint at adversarial batch {iteration} was "
                        f"written after {num_records}")
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return records
