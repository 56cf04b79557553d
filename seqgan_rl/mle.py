"""MLE pretraining of the generator (the paper's first phase, and its MLE baseline).

``pretrain_mle`` is the training loop; ``run_pretraining`` ties it to a run
directory (data from ``seqgan_rl.data.oracle_data.load_dataset``, metrics, plot,
checkpoint) and is what ``seqgan-rl pretrain`` calls.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seqgan_rl.config import PretrainConfig
from seqgan_rl.data.oracle_data import Dataset, load_dataset
from seqgan_rl.data.tables import iterate_minibatches
from seqgan_rl.evaluation.metrics_log import MetricsLog, plot_curves
from seqgan_rl.evaluation.nll import nll_metrics
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.checkpoint import save_checkpoint
from seqgan_rl.storage.files import write_json

logger = logging.getLogger(__name__)


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


def pretrain_mle(
    generator: Generator,
    data: Dataset,
    config: PretrainConfig,
    *,
    log: MetricsLog | None = None,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[dict[str, Any]]:
    """Train ``generator`` by maximum likelihood on ``data.train``.

    Adam (``config.lr``), minibatches of ``config.batch_size`` reshuffled every
    epoch, gradient-norm clipping at ``config.grad_clip``; evaluation before
    training, every ``config.eval_every`` epochs and after the last one.

    Returns:
        One record per evaluation: ``epoch``, ``train/nll`` (mean loss of the
        epoch), ``eval/nll_oracle``, ``eval/nll_test``, ``time/epoch_s`` (mean
        training time of the epochs since the previous evaluation),
        ``time/eval_s``, ``time/elapsed_s``.
    """
    config.validate()
    device = generator.device
    optimizer = optimizer or make_generator_optimizer(generator, config.lr)
    batch_rng = np.random.default_rng(config.seed)
    eval_rng = torch.Generator(device=device).manual_seed(config.seed)
    # scheduled sampling's coins and draws: a stream of their own (teacher forcing draws nothing from it)
    ss_rng = torch.Generator(device=device).manual_seed(
        int(np.random.SeedSequence(config.seed, spawn_key=(SCHEDULED_SAMPLING_STREAM,)).generate_state(1)[0]))
    train = data.train.numpy() if data.train.device.type == "cpu" else data.train.cpu().numpy()
    records: list[dict[str, Any]] = []
    started = time.perf_counter()

    def record(epoch: int, extra: dict[str, float]) -> None:
        eval_start = time.perf_counter()
        metrics = nll_metrics(generator, data, config.num_eval_samples, eval_rng)
        entry = {"epoch": epoch, **extra, **metrics, "time/eval_s": time.perf_counter() - eval_start,
                 "time/elapsed_s": time.perf_counter() - started}
        records.append(entry)
        if log is not None:
            log.log(entry)
            if log.samples is not None:
                log.samples.write(generator, epoch)

    record(0, {})
    train_s, epochs_timed = 0.0, 0  # since the previous evaluation
    bar = tqdm(range(1, config.epochs + 1), desc="MLE", unit="epoch", disable=not progress)
    for epoch in bar:
        generator.train()
        sample_probability = sampling_probability(config, epoch)
        epoch_start = time.perf_counter()
        total, count = 0.0, 0
        for batch in iterate_minibatches(train, config.batch_size, shuffle=True, rng=batch_rng):
            tokens = torch.from_numpy(batch).to(device)
            loss = generator.scheduled_sampling_loss(tokens, sample_probability, generator=ss_rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), config.grad_clip)
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        train_s += time.perf_counter() - epoch_start
        epochs_timed += 1
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            extra = {"train/nll": total / count, "time/epoch_s": train_s / epochs_timed}
            if config.scheduled_sampling != "none":
                extra["train/ss_probability"] = sample_probability
            record(epoch, extra)
            train_s, epochs_timed = 0.0, 0
            shown = {k.split("/")[1]: round(v, 3) for k, v in records[-1].items() if k.startswith("eval/")}
            bar.set_postfix(shown)
    return records


def run_pretraining(
    config: PretrainConfig,
    run_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    oracle_params: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain a generator end to end into ``run_dir``.

    Writes ``config.json`` (the configuration and where the data came from, so
    that ``sample`` and ``evaluate`` find the vocabulary, held-out split and
    oracle of the run), ``metrics.jsonl`` and the same records in ``tensorboard/``,
    ``samples.txt`` (the generator's text at each evaluation, also TensorBoard
    text; ``seqgan_rl.evaluation.sample_log``), ``curves.png`` and ``checkpoint.pt`` (model,
    optimiser, config, epoch, data description) and returns a summary.
    """
    from seqgan_rl.evaluation.sample_log import SampleLog

    config.validate()
    run_dir = Path(run_dir)
    torch.manual_seed(config.seed)  # before the oracle is built: its layers' construction draws from it
    data = load_dataset(config, data_dir, oracle_params)  # bad data is refused before run_dir is written
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", {
        "config": config.to_dict(), "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
        "oracle_params": None if oracle_params is None else str(Path(oracle_params).resolve())})
    generator_config = GeneratorConfig(
        vocab_size=data.vocab_size, seq_len=data.seq_len, emb_dim=config.emb_dim, hidden_dim=config.hidden_dim
    )
    generator = Generator(generator_config).to(device)
    data.train, data.valid = data.train.to(device), data.valid.to(device)
    if data.oracle is not None:
        data.oracle.to(device)
    optimizer = make_generator_optimizer(generator, config.lr)
    samples = SampleLog.for_run(run_dir, "mle", "epoch", run_dir / "checkpoint.pt", data.vocab_size, config.seed)
    log = MetricsLog(run_dir, step_key="epoch", samples=samples)
    started = time.perf_counter()
    try:
        records = pretrain_mle(generator, data, config, log=log, progress=progress, optimizer=optimizer)
    finally:
        log.close()
    wall_s = time.perf_counter() - started
    plot_curves(records, run_dir / "curves.png")
    checkpoint = save_checkpoint(
        run_dir / "checkpoint.pt",
        "mle",
        {
            "generator": generator.state_dict(),
            "generator_config": generator_config.__dict__,
            "optimizer": optimizer.state_dict(),
            "config": config.to_dict(),
            "epoch": config.epochs,
            "data": data.description,
        },
    )
    final = records[-1]
    return {
        "run_dir": str(run_dir),
        "checkpoint": str(checkpoint),
        "data": data.description,
        "epochs": config.epochs,
        "nll_oracle": final.get("eval/nll_oracle"),
        "nll_test": final.get("eval/nll_test"),
        "wall_s": wall_s,
    }
