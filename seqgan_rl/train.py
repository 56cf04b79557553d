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
    checkpoints/         algorithm checkpoints (RLlib + discriminator + rollout policy),
                         ``latest.json`` names the newest complete one
    generator.pt         the newest generator alone (``seqgan-rl sample``, evaluation)
    curves.png, summary.json
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch
from tqdm import tqdm

from seqgan_rl.checkpoint import GENERATOR_KINDS, load_checkpoint, save_checkpoint
from seqgan_rl.config import TrainConfig
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.fileio import atomic_path
from seqgan_rl.generator import Generator, GeneratorConfig
from seqgan_rl.metrics import MetricsLog, plot_curves
from seqgan_rl.pretrain import evaluate, load_dataset, load_oracle, run_pretraining, write_oracle_dataset

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")


def _connect_ray(address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local Ray. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):
        try:
            ray.init(address=address or None, log_to_driver=False)
        except ConnectionError as error:
            raise ConfigError(f"cannot reach the Ray cluster at {address or os.environ['RAY_ADDRESS']!r}: {error}") \
                from None
        return False
    # address="local": always a new local instance, never a stale cluster another process left behind
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def _generator_from_algorithm(algo: Any, config: GeneratorConfig, device: str) -> Generator:
    """The Learner's current generator as a core ``Generator`` on ``device``."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    state = algo.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID]
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


def _save(algo: Any, run_dir: Path, iteration: int, generator: Generator, records: list[dict[str, Any]],
          state: dict[str, Any], eval_rng: torch.Generator) -> Path:
    """Write checkpoint ``iteration`` completely, then point ``latest.json`` at it, then drop older ones.

    A crash at any moment leaves ``latest.json`` naming a complete checkpoint.
    """
    checkpoints = run_dir / "checkpoints"
    target = checkpoints / f"iteration-{iteration:06d}"
    if target.exists():
        shutil.rmtree(target)
    algo.save_to_path(str(target))
    save_checkpoint(target / "generator.pt", "generator", {
        "generator": generator.state_dict(), "generator_config": generator.config.__dict__, "iteration": iteration})
    torch.save(eval_rng.get_state(), target / "eval_rng.pt")
    _write_json(target / STATE_FILE, {**state, "iteration": iteration, "num_records": len(records)})
    _write_json(checkpoints / LATEST_FILE, {"iteration": iteration, "path": target.name})
    shutil.copyfile(target / "generator.pt", run_dir / "generator.pt.tmp")
    os.replace(run_dir / "generator.pt.tmp", run_dir / "generator.pt")
    for old in checkpoints.glob("iteration-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete algorithm checkpoint of a run (``DataError`` naming what is missing)."""
    pointer = run_dir / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        raise DataError(f"{run_dir}: no checkpoint to resume from ({pointer} is missing)")
    target = run_dir / "checkpoints" / json.loads(pointer.read_text())["path"]
    if not (target / STATE_FILE).is_file():
        raise DataError(f"{target}: checkpoint is incomplete ({STATE_FILE} missing)")
    return target


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
    """
    import ray

    run_dir = Path(run_dir).resolve()  # RLlib checkpoints need absolute paths
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise DataError(f"{run_dir}: not a training run directory ({CONFIG_FILE} missing)")
        saved = json.loads((run_dir / CONFIG_FILE).read_text())
        config = TrainConfig.from_dict(saved["config"])
        if resume_batches is not None:
            config = config.with_overrides(adversarial_batches=resume_batches)
        data_dir, oracle_params = saved["data_dir"], saved["oracle_params"]
        generator_checkpoint = saved["mle_checkpoint"]
    else:
        config.validate()
        if (run_dir / CONFIG_FILE).exists():
            raise ConfigError(f"{run_dir} already holds a run; use --resume to continue it or another --run-dir")
        run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    phase_s: dict[str, float] = {}

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
        _write_json(run_dir / CONFIG_FILE, {"config": config.to_dict(), "data_dir": str(data_dir),
                                            "oracle_params": None if oracle_params is None else str(oracle_params),
                                            "mle_checkpoint": str(generator_checkpoint), "phase_s": phase_s})

    data = load_dataset(config.mle, data_dir, oracle_params)
    data.test = data.test.to(device)
    if data.oracle is not None:
        data.oracle.to(device)
    record = load_checkpoint(generator_checkpoint, GENERATOR_KINDS)
    generator_config = GeneratorConfig(**record["generator_config"])
    if generator_config.vocab_size != data.vocab_size or generator_config.seq_len != data.seq_len:
        raise DataError(f"{generator_checkpoint}: generator vocabulary/length {generator_config.vocab_size}/"
                        f"{generator_config.seq_len} does not match the data's {data.vocab_size}/{data.seq_len}")

    started_ray = _connect_ray(address, num_cpus)
    log = MetricsLog(run_dir)
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tensorboard"))
    eval_rng = torch.Generator(device=device).manual_seed(config.seed)
    try:
        algo_config = build_algorithm_config(
            config, generator_config, str(generator_checkpoint), str(Path(data_dir) / "train.parquet"),
            discriminator_threads=os.cpu_count() if started_ray else None)
        algo = algo_config.build_algo()
        try:
            start_iteration = 0
            if resume:
                checkpoint = latest_checkpoint(run_dir)
                algo.restore_from_path(str(checkpoint))
                state = json.loads((checkpoint / STATE_FILE).read_text())
                start_iteration = int(state["iteration"])
                phase_s = dict(state["phase_s"])
                eval_rng.set_state(torch.load(checkpoint / "eval_rng.pt"))
                log.records = [json.loads(line) for line in log.path.read_text().splitlines()][: state["num_records"]]
                log.path.write_text("".join(json.dumps(r) + "\n" for r in log.records))
                logger.info("resuming %s at adversarial batch %d", run_dir, start_iteration)
            else:
                generator = _generator_from_algorithm(algo, generator_config, device)
                entry = {"iteration": 0, **evaluate(generator, data, config.mle.num_eval_samples, eval_rng)}
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
                    entry.update(evaluate(generator, data, config.mle.num_eval_samples, eval_rng))
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
                    _save(algo, run_dir, iteration, generator, log.records, {"phase_s": phase_s}, eval_rng)
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
        "checkpoint": str(latest_checkpoint(run_dir)), "generator": str(run_dir / "generator.pt"), **phase_s,
    }
    _write_json(run_dir / "summary.json", summary)
    return summary
