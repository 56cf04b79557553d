"""MLE pretraining of the generator (the paper's first phase, and its MLE baseline).

``pretrain_mle`` is the training loop; ``load_dataset`` resolves where the
data comes from (a prepared directory, or oracle samples made on the fly);
``run_pretraining`` ties both to a run directory (metrics, plot, checkpoint)
and is what ``seqgan-rl pretrain`` calls.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from seqgan_rl.checkpoint import save_checkpoint
from seqgan_rl.config import PretrainConfig
from seqgan_rl.data import iterate_minibatches, read_token_table, write_token_table
from seqgan_rl.errors import DataError
from seqgan_rl.fileio import write_json
from seqgan_rl.generator import Generator, GeneratorConfig
from seqgan_rl.metrics import MetricsLog, nll_oracle, nll_test, plot_curves
from seqgan_rl.oracle import PAPER_ORACLE_SEED, Oracle, default_oracle_params

logger = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Training data of a run.

    Attributes:
        train: [n_train, T] int64 training sequences.
        valid: [n_valid, T] held-out sequences (``valid.parquet``) for NLL-test (may be empty).
        vocab_size: id space of the data (the generator's vocabulary).
        oracle: the oracle for NLL-oracle, when the data is synthetic.
        description: where the data came from, for logs and checkpoints.
    """

    train: torch.Tensor
    valid: torch.Tensor
    vocab_size: int
    oracle: Oracle | None
    description: str

    @property
    def seq_len(self) -> int:
        return int(self.train.shape[1])


def make_generator_optimizer(generator: Generator, lr: float) -> torch.optim.Adam:
    """Adam for MLE; the fused kernel (CPU and CUDA) updates each parameter and its moments in one pass
    instead of a loop of element-wise ops, most of it over the [V, H] embedding and projection."""
    return torch.optim.Adam(generator.parameters(), lr=lr, fused=generator.device.type in ("cpu", "cuda"))


def load_oracle(oracle_params: str | Path | None) -> tuple[Oracle, str]:
    """The oracle from ``oracle_params``, else the original file if present, else a fresh N(0, 1) one."""
    path = Path(oracle_params) if oracle_params is not None else default_oracle_params()
    if path is not None:
        return Oracle.from_npz(path), f"oracle {path}"
    logger.warning(
        "original oracle file not found (../shared/data/oracle_lstm_params.npz or --oracle-params): using a "
        "fresh N(0, 1) oracle with seed %d; its NLL-oracle figures are NOT comparable with the paper's",
        PAPER_ORACLE_SEED,
    )
    return Oracle.random(seed=PAPER_ORACLE_SEED), f"fresh N(0,1) oracle, seed {PAPER_ORACLE_SEED}"


def sample_oracle_data(oracle: Oracle, num_train: int, num_valid: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw training and held-out sequences from the oracle with one seeded RNG."""
    rng = torch.Generator(device=oracle.device).manual_seed(seed)
    return oracle.sample(num_train, generator=rng), oracle.sample(num_valid, generator=rng)


def write_oracle_dataset(out_dir: str | Path, oracle: Oracle, source: str, num_train: int, num_valid: int,
                         seed: int) -> dict[str, Any]:
    """``prepare-data --oracle``: write train/valid token tables and the oracle's parameters.

    The oracle is saved beside the data (``oracle.npz``) so that a run on this
    directory can compute NLL-oracle without knowing where it came from.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, valid = sample_oracle_data(oracle, num_train, num_valid, seed)
    meta = {"source": source, "oracle": "oracle.npz", "seed": str(seed)}
    write_token_table(out_dir / "train.parquet", train.numpy(), oracle.vocab_size, {**meta, "split": "train"})
    write_token_table(out_dir / "valid.parquet", valid.numpy(), oracle.vocab_size, {**meta, "split": "valid"})
    oracle.save_npz(out_dir / "oracle.npz")
    return {"out_dir": str(out_dir), "num_train": num_train, "num_valid": num_valid,
            "vocab_size": oracle.vocab_size, "seq_len": oracle.seq_len, "source": source}


def load_dataset(config: PretrainConfig, data_dir: str | Path | None, oracle_params: str | Path | None) -> Dataset:
    """Resolve the run's data.

    With ``data_dir``: ``train.parquet`` (required), ``valid.parquet`` (for
    NLL-test, optional) and ``oracle.npz`` (for NLL-oracle, optional) from it.
    Without: ``config.num_train`` + ``config.num_valid`` oracle samples, drawn
    with ``config.data_seed`` from the oracle given by ``oracle_params`` (or
    the original file, or a fresh one, see ``load_oracle``).
    """
    if data_dir is None:
        oracle, source = load_oracle(oracle_params)
        train, valid = sample_oracle_data(oracle, config.num_train, config.num_valid, config.data_seed)
        return Dataset(train, valid, oracle.vocab_size, oracle, source)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: data directory not found (make one with `seqgan-rl prepare-data`)")
    train_table = read_token_table(data_dir / "train.parquet")
    valid = torch.zeros((0, train_table.seq_len), dtype=torch.long)
    if (data_dir / "valid.parquet").exists():
        valid_table = read_token_table(data_dir / "valid.parquet", seq_len=train_table.seq_len)
        if valid_table.vocab_size != train_table.vocab_size:
            raise DataError(
                f"{data_dir / 'valid.parquet'}: vocab_size {valid_table.vocab_size} differs from "
                f"train.parquet's {train_table.vocab_size}"
            )
        valid = torch.tensor(valid_table.tokens, dtype=torch.long)  # a copy: Arrow buffers are read-only
    oracle = None
    oracle_path = Path(oracle_params) if oracle_params is not None else data_dir / "oracle.npz"
    if oracle_path.exists():
        oracle = Oracle.from_npz(oracle_path)
        if oracle.vocab_size != train_table.vocab_size or oracle.seq_len != train_table.seq_len:
            raise DataError(
                f"{oracle_path}: oracle vocabulary {oracle.vocab_size} / length {oracle.seq_len} does not match "
                f"{data_dir / 'train.parquet'} ({train_table.vocab_size} / {train_table.seq_len})"
            )
    train = torch.tensor(train_table.tokens, dtype=torch.long)
    return Dataset(train, valid, train_table.vocab_size, oracle, str(data_dir))


def nll_metrics(generator: Generator, data: Dataset, num_samples: int, rng: torch.Generator) -> dict[str, float]:
    """NLL-oracle (when an oracle exists) and NLL-test (when held-out data exists)."""
    metrics: dict[str, float] = {}
    generator.eval()
    if data.oracle is not None:
        metrics["eval/nll_oracle"] = nll_oracle(generator, data.oracle, num_samples, rng=rng)
    if len(data.valid):
        metrics["eval/nll_test"] = nll_test(generator, data.valid.to(generator.device))
    return metrics


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
    text; ``seqgan_rl.samples``), ``curves.png`` and ``checkpoint.pt`` (model,
    optimiser, config, epoch, data description) and returns a summary.
    """
    from seqgan_rl.samples import SampleLog

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
