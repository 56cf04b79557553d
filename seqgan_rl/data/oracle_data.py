"""The data a run trains on: a prepared directory, or samples of the synthetic oracle made on the fly.

``load_dataset`` resolves where the data comes from and returns a ``Dataset``
(train and held-out sequences, and the oracle when the data is synthetic);
``write_oracle_dataset`` is what ``seqgan-rl prepare-data --oracle`` calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from seqgan_rl.data.tables import read_token_table, write_token_table
from seqgan_rl.errors import DataError
from seqgan_rl.models.oracle import PAPER_ORACLE_SEED, Oracle, default_oracle_params

logger = logging.getLogger(__name__)


class SampleCounts(Protocol):
    """What ``load_dataset`` reads of a job's options (``seqgan_rl.config.PretrainConfig`` has them): how many
    oracle samples to draw for training and validation, and the seed they are drawn with."""

    num_train: int
    num_valid: int
    data_seed: int


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


def load_dataset(config: SampleCounts, data_dir: str | Path | None, oracle_params: str | Path | None) -> Dataset:
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
