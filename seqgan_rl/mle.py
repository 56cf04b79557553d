"""MLE pretraining of the generator (the paper's first phase, and its MLE baseline).

``pretrain_mle`` is the training loop; ``run_pretraining`` ties it to a run
directory (data from ``seqgan_rl.data.oracle_data.load_dataset``, metrics, plot,
checkpoint) and is what ``seqgan-rl pretrain`` calls.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seqgan_rl.config import PretrainConfig
from seqgan_rl.data.oracle_data import Dataset, load_dataset
from seqgan_rl.data.tables import iterate_minibatches
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.metrics_log import (
    METRICS_FILE,
    MetricsLog,
    parse_records,
    plot_curves,
    read_records,
    restart_logs,
)
from seqgan_rl.evaluation.nll import nll_metrics
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.checkpoint import load_checkpoint, save_checkpoint
from seqgan_rl.storage.files import resolved_path, run_dir_lock, stored_path, write_json

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
"""A run directory's configuration and inputs (``pretrain``'s and ``train``'s), read back by ``seqgan_rl.runs``."""


def make_generator_optimizer(generator: Generator, lr: float) -> torch.optim.Adam:
    """Adam for MLE; the fused kernel (CPU and CUDA) updates each parameter and its moments in one pass
    instead of a loop of element-wise ops, most of it over the [V, H] embedding and projection."""
    return torch.optim.Adam(generator.parameters(), lr=lr, fused=generator.device.type in ("cpu", "cuda"))


SCHEDULED_SAMPLING_STREAM = 2
"""Spawn key of scheduled sampling's RNG seed: ``SeedSequence(seed, spawn_key=(2,))``."""


def sampling_probability(config: PretrainConfig, epoch: int) -> float:
    """The probability p_e that an MLE input of epoch ``epoch`` (1..E) is the model's own sample.

    Bengio et al. (2015) decay ε_e, the probability of feeding the real token (p_e = 1 − ε_e); each
    schedule here is parameterised so that p_E = ``ss_final`` in the last epoch E:

    * ``none``: p_e = 0 (teacher forcing);
    * ``linear``: p_e = ss_final · e / E;
    * ``exponential``: ε_e = k^e with k = (1 − ss_final)^(1/E);
    * ``inverse_sigmoid``: ε_e = k / (k + exp(e / k)), k ≥ 1 solved for ε_E = 1 − ss_final (an S-curve:
      p stays near 1/(k + 1) early, then rises).
    """
    schedule, final, epochs = config.scheduled_sampling, config.ss_final, config.epochs
    if schedule == "none" or final == 0.0:
        return 0.0
    if schedule == "linear":
        return final * epoch / epochs
    if schedule == "exponential":
        return 1.0 - (1.0 - final) ** (epoch / epochs)
    return 1.0 - _inverse_sigmoid(_inverse_sigmoid_k(epochs, 1.0 - final), epoch)


def _inverse_sigmoid(k: float, epoch: int) -> float:
    return k / (k + math.exp(min(epoch / k, 700.0)))


def _inverse_sigmoid_k(epochs: int, last: float) -> float:
    """The k ≥ 1 with k / (k + exp(epochs / k)) = ``last`` (the expression grows with k), by bisection."""
    low, high = 1.0, 1.0
    while _inverse_sigmoid(high, epochs) < last and high < 1e12:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if _inverse_sigmoid(middle, epochs) < last else (low, middle)
    return high


@dataclass
class MLEProgress:
    """Everything the MLE epochs after ``epoch`` depend on besides the model and its optimiser.

    ``pretrain_mle`` draws from exactly these three RNGs (the minibatch order,
    the evaluation samples, scheduled sampling's coins), so a run continued
    from an ``MLEProgress`` taken after an evaluation trains and evaluates
    exactly as the run that never stopped. ``elapsed_s`` is the training time
    before ``epoch`` (the records' ``time/elapsed_s`` go on from it).
    """

    epoch: int
    batch_rng: np.random.Generator
    eval_rng: torch.Generator
    ss_rng: torch.Generator
    elapsed_s: float = 0.0

    @classmethod
    def start(cls, config: PretrainConfig, device: torch.device) -> MLEProgress:
        """Before the first epoch: the RNGs seeded from ``config.seed``."""
        ss_seed = int(np.random.SeedSequence(config.seed, spawn_key=(SCHEDULED_SAMPLING_STREAM,)).generate_state(1)[0])
        return cls(0, np.random.default_rng(config.seed), torch.Generator(device=device).manual_seed(config.seed),
                   torch.Generator(device=device).manual_seed(ss_seed))

    def state_dict(self) -> dict[str, Any]:
        """Plain data and tensors only (a weights-only checkpoint holds it)."""
        return {"epoch": self.epoch, "batch_rng": self.batch_rng.bit_generator.state,
                "eval_rng": self.eval_rng.get_state(), "ss_rng": self.ss_rng.get_state(), "elapsed_s": self.elapsed_s}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], config: PretrainConfig, device: torch.device) -> MLEProgress:
        """Inverse of ``state_dict``, the RNGs on ``device``."""
        progress = cls.start(config, device)
        progress.batch_rng.bit_generator.state = state["batch_rng"]
        progress.eval_rng.set_state(state["eval_rng"])
        progress.ss_rng.set_state(state["ss_rng"])
        progress.epoch, progress.elapsed_s = int(state["epoch"]), float(state["elapsed_s"])
        return progress


def pretrain_mle(
    generator: Generator,
    data: Dataset,
    config: PretrainConfig,
    *,
    log: MetricsLog | None = None,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    start: MLEProgress | None = None,
    on_evaluation: Callable[[MLEProgress], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``generator`` by maximum likelihood on ``data.train``.

    Adam (``config.lr``), minibatches of ``config.batch_size`` reshuffled every
    epoch, gradient-norm clipping at ``config.grad_clip``; evaluation before
    training, every ``config.eval_every`` epochs and after the last one.
    ``start`` continues a run after its epoch (``generator`` and ``optimizer``
    as they were then; ``log`` holding its records); ``on_evaluation``
    receives the progress after each evaluation (``run_pretraining``
    checkpoints it there).

    Returns:
        One record per evaluation (those of ``log`` before ``start`` first):
        ``epoch``, ``train/nll`` (mean loss of the epoch), ``eval/nll_oracle``,
        ``eval/nll_test``, ``time/epoch_s`` (mean training time of the epochs
        since the previous evaluation), ``time/eval_s``, ``time/elapsed_s``.
    """
    config.validate()
    optimizer = optimizer or make_generator_optimizer(generator, config.lr)
    state = start or MLEProgress.start(config, generator.device)
    train = data.train.numpy() if data.train.device.type == "cpu" else data.train.cpu().numpy()
    records: list[dict[str, Any]] = list(log.records) if log is not None and start is not None else []
    started = time.perf_counter() - state.elapsed_s

    def record(epoch: int, extra: dict[str, float]) -> None:
        records.append(evaluate_epoch(generator, data, config, state, epoch, extra, log, started))
        if on_evaluation is not None:
            on_evaluation(state)

    if start is None:
        record(0, {})
    train_s, epochs_timed = 0.0, 0  # since the previous evaluation
    bar = tqdm(range(state.epoch + 1, config.epochs + 1), desc="MLE", unit="epoch", disable=not progress,
               initial=state.epoch, total=config.epochs)
    for epoch in bar:
        sample_probability = sampling_probability(config, epoch)
        epoch_start = time.perf_counter()
        train_nll = train_epoch(generator, optimizer, train, config, state, sample_probability)
        train_s += time.perf_counter() - epoch_start
        epochs_timed += 1
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            extra = {"train/nll": train_nll, "time/epoch_s": train_s / epochs_timed}
            if config.scheduled_sampling != "none":
                extra["train/ss_probability"] = sample_probability
            record(epoch, extra)
            train_s, epochs_timed = 0.0, 0
            bar.set_postfix({k.split("/")[1]: round(v, 3) for k, v in records[-1].items() if k.startswith("eval/")})
    return records


def train_epoch(generator: Generator, optimizer: torch.optim.Optimizer, train: np.ndarray, config: PretrainConfig,
                state: MLEProgress, sample_probability: float) -> float:
    """One MLE pass over the training sequences [N, T] in ``state.batch_rng``'s shuffled minibatches (clipped Adam
    steps); returns the epoch's mean loss per token, weighted by minibatch size."""
    generator.train()
    total, count = 0.0, 0
    for batch in iterate_minibatches(train, config.batch_size, shuffle=True, rng=state.batch_rng):
        tokens = torch.from_numpy(batch).to(generator.device)
        loss = generator.scheduled_sampling_loss(tokens, sample_probability, generator=state.ss_rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), config.grad_clip)
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / count


def evaluate_epoch(generator: Generator, data: Dataset, config: PretrainConfig, state: MLEProgress, epoch: int,
                   extra: dict[str, float], log: MetricsLog | None, started: float) -> dict[str, Any]:
    """The record of the evaluation after ``epoch``: ``extra`` and the NLL metrics, logged with the samples
    when there is a ``log``; ``state`` then stands at that epoch (``started``: the run's perf_counter origin)."""
    eval_start = time.perf_counter()
    metrics = nll_metrics(generator, data, config.num_eval_samples, state.eval_rng)
    entry = {"epoch": epoch, **extra, **metrics, "time/eval_s": time.perf_counter() - eval_start,
             "time/elapsed_s": time.perf_counter() - started}
    if log is not None:
        log.log(entry)
        if log.samples is not None:
            log.samples.write(generator, epoch)
    state.epoch, state.elapsed_s = epoch, time.perf_counter() - started
    return entry


MLE_CHECKPOINT_FILE = "checkpoint.pt"
"""The finished MLE generator of a pretrain run (what ``train`` starts its adversarial phase from)."""
PROGRESS_FILE = "progress.pt"
"""An unfinished pretrain run's state after its latest evaluation (kind ``PROGRESS_KIND``)."""
PROGRESS_KIND = "mle-progress"


def run_pretraining(
    config: PretrainConfig,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    oracle_params: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Pretrain a generator end to end into ``run_dir``; with ``resume``, continue the run it holds.

    Writes ``config.json`` (the configuration and where the data came from, so
    that ``sample``, ``evaluate`` and ``--resume`` find the vocabulary,
    held-out split and oracle of the run), ``metrics.jsonl`` and the same
    records in ``tensorboard/``, ``samples.txt`` (the generator's text at each
    evaluation, also TensorBoard text; ``seqgan_rl.evaluation.sample_log``),
    ``progress.pt`` after every evaluation (model, optimiser, ``MLEProgress``:
    a killed run resumes from its latest evaluation exactly, bit for bit on
    CPU), then ``curves.png`` and ``checkpoint.pt`` (model, optimiser, config,
    epoch, data description, seconds) at the end; returns a summary. A resumed
    run whose ``checkpoint.pt`` exists is done: its summary is returned.
    The run directory is locked while it is written (``run_dir_lock``).
    """
    config.validate()
    run_dir = Path(run_dir)
    torch.manual_seed(config.seed)  # before the oracle is built: its layers' construction draws from it
    data = load_dataset(config, data_dir, oracle_params)  # bad data is refused before run_dir is written
    with run_dir_lock(run_dir):
        if not (run_dir / MLE_CHECKPOINT_FILE).is_file():
            train_mle_phase(config, run_dir, data, data_dir, oracle_params, device, progress, resume)
        final = load_checkpoint(run_dir / MLE_CHECKPOINT_FILE, "mle")
    last = read_records(run_dir / METRICS_FILE)[-1]
    return {"run_dir": str(run_dir), "checkpoint": str(run_dir / MLE_CHECKPOINT_FILE), "data": data.description,
            "epochs": config.epochs, "nll_oracle": last.get("eval/nll_oracle"), "nll_test": last.get("eval/nll_test"),
            "wall_s": final.get("wall_s")}


def train_mle_phase(config: PretrainConfig, run_dir: Path, data: Dataset, data_dir: str | Path | None,
                    oracle_params: str | Path | None, device: str, progress: bool, resume: bool) -> None:
    """The epochs of a pretrain run, from its ``progress.pt`` when resuming one, to its ``checkpoint.pt``."""
    from seqgan_rl.evaluation.sample_log import SampleLog

    if not (run_dir / CONFIG_FILE).is_file():
        write_json(run_dir / CONFIG_FILE, {"config": config.to_dict(), "data_dir": stored_path(data_dir, run_dir),
                                           "oracle_params": stored_path(oracle_params, run_dir)})
    generator_config = GeneratorConfig(
        vocab_size=data.vocab_size, seq_len=data.seq_len, emb_dim=config.emb_dim, hidden_dim=config.hidden_dim
    )
    generator = Generator(generator_config).to(device)
    data.train, data.valid = data.train.to(device), data.valid.to(device)
    if data.oracle is not None:
        data.oracle.to(device)
    optimizer = make_generator_optimizer(generator, config.lr)
    start = None
    if resume and (run_dir / PROGRESS_FILE).is_file():
        saved = load_checkpoint(run_dir / PROGRESS_FILE, PROGRESS_KIND)
        generator.load_state_dict(saved["generator"])
        optimizer.load_state_dict(saved["optimizer"])
        start = MLEProgress.from_state_dict(saved["progress"], config, generator.device)
        restart_logs(run_dir, kept_epochs(run_dir / METRICS_FILE, start.epoch), start.epoch)
        logger.info("resuming the MLE phase of %s after epoch %d", run_dir, start.epoch)
    else:
        restart_logs(run_dir, [], -1)  # what a start killed before its first evaluation left

    def save_progress(state: MLEProgress) -> None:
        save_checkpoint(run_dir / PROGRESS_FILE, PROGRESS_KIND, {
            "generator": generator.state_dict(), "optimizer": optimizer.state_dict(),
            "progress": state.state_dict()})

    samples = SampleLog.for_run(run_dir, "mle", "epoch", run_dir / MLE_CHECKPOINT_FILE, data.vocab_size, config.seed)
    log = MetricsLog(run_dir, step_key="epoch", samples=samples)
    try:
        records = pretrain_mle(generator, data, config, log=log, progress=progress, optimizer=optimizer,
                               start=start, on_evaluation=save_progress)
    finally:
        log.close()
    plot_curves(records, run_dir / "curves.png")
    save_checkpoint(run_dir / MLE_CHECKPOINT_FILE, "mle", {
        "generator": generator.state_dict(), "generator_config": generator_config.__dict__,
        "optimizer": optimizer.state_dict(), "config": config.to_dict(), "epoch": config.epochs,
        "data": data.description, "wall_s": records[-1]["time/elapsed_s"]})
    (run_dir / PROGRESS_FILE).unlink(missing_ok=True)


def kept_epochs(path: Path, epoch: int) -> list[dict[str, Any]]:
    """The records of an MLE ``metrics.jsonl`` up to ``epoch``: records of later epochs, and a last line a
    crash cut short, are dropped (the resumed run logs those epochs again)."""
    lines = path.read_text().splitlines() if path.is_file() else []
    try:
        records = parse_records(path, lines)
    except DataError:
        records = parse_records(path, lines[:-1])  # still refused if the bad line is not the last
    return [record for record in records if record["epoch"] <= epoch]


def read_pretrain_run(run_dir: str | Path) -> tuple[PretrainConfig, Path | None, Path | None]:
    """The configuration, data directory and oracle file of the pretrain run in ``run_dir`` (``--resume``).

    Raises:
        DataError: naming the directory or its ``config.json``: not a pretrain run, or not one this
            seqgan-rl can read.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"{run_dir}: not a pretrain run directory ({CONFIG_FILE} missing)")
    try:
        record = json.loads(path.read_text())
        config = PretrainConfig.from_dict(record["config"])
        return (config, resolved_path(record["data_dir"], run_dir), resolved_path(record["oracle_params"], run_dir))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ConfigError) as error:
        raise DataError(f"{path}: not a pretrain run configuration this seqgan-rl can resume "
                        f"({type(error).__name__}: {error})") from None
