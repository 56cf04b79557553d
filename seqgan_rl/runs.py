"""``seqgan-rl sample``: generated sequences from a checkpoint, as a token table or as text.

A checkpoint is a generator file (``generator.pt`` of a train run,
``checkpoint.pt`` of a pretrain run) or a run directory holding one. Text output
decodes with the run's vocabulary (``vocab.json`` beside its training data,
found through the run's ``config.json``, or given explicitly); word-level
corpora are joined with spaces, character-level ones without. Without a
vocabulary (the synthetic oracle) each line is the space-separated token ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_rl.checkpoint import GENERATOR_KINDS, load_checkpoint
from seqgan_rl.data import read_token_table, write_token_table
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.fileio import atomic_path
from seqgan_rl.generator import Generator, GeneratorConfig
from seqgan_rl.vocab import Vocabulary


def resolve_generator_file(checkpoint: str | Path) -> Path:
    """The generator file of ``checkpoint`` (a file, or a train/pretrain run directory)."""
    path = Path(checkpoint)
    if path.is_dir():
        for name in ("generator.pt", "checkpoint.pt"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"{path}: no generator.pt or checkpoint.pt in this directory")
    return path


def read_generator_checkpoint(path: str | Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    """The sizes and the parameters held by a generator checkpoint file (MLE or adversarial; see
    ``seqgan_rl.checkpoint.GENERATOR_KINDS``), checked as ``load_checkpoint`` checks every checkpoint."""
    record = load_checkpoint(path, GENERATOR_KINDS)
    return GeneratorConfig(**record["generator_config"]), record["generator"]


def load_generator(checkpoint: str | Path, device: str = "cpu") -> Generator:
    """A generator from any generator checkpoint (see module docstring), in eval mode on ``device``."""
    config, state = read_generator_checkpoint(resolve_generator_file(checkpoint))
    generator = Generator(config, init_std=None)
    generator.load_state_dict(state)
    return generator.to(device).eval()


def run_record(generator_file: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run a generator file belongs to (nearest directory up), if any.

    Both ``pretrain`` and ``train`` runs write one, with ``data_dir`` and ``oracle_params``.
    """
    for directory in (generator_file.parent, *generator_file.parents[:3]):
        config = directory / "config.json"
        if config.is_file():
            return json.loads(config.read_text())
    return None


def find_data_dir(generator_file: Path) -> Path | None:
    """The training-data directory of the run a generator file belongs to, if it can be found."""
    record = run_record(generator_file)
    data_dir = None if record is None else record.get("data_dir")
    return Path(data_dir) if data_dir else None


@dataclass(frozen=True)
class TextDecoder:
    """Turns generated token rows into tokens of text: the run's vocabulary, or token ids without one.

    ``level`` is the corpus's tokenisation ("word" or "char"), which decides how
    a sentence is joined into a line (spaces between words, nothing between characters).
    """

    vocab: Vocabulary | None
    level: str
    vocab_path: Path | None

    @classmethod
    def for_generator(cls, generator_file: Path, vocab_size: int, vocab_path: str | Path | None = None) -> TextDecoder:
        """The decoder of ``generator_file``'s run (``vocab_path`` overrides the vocabulary found beside its data).

        Raises:
            DataError: the vocabulary's size differs from the generator's.
        """
        data_dir = find_data_dir(generator_file)
        if vocab_path is None and data_dir is not None and (data_dir / "vocab.json").is_file():
            vocab_path = data_dir / "vocab.json"
        if vocab_path is None:
            return cls(None, "word", None)
        vocab = Vocabulary.load(vocab_path)
        if len(vocab) != vocab_size:
            raise DataError(f"{vocab_path}: {len(vocab)} tokens, the generator has {vocab_size}")
        level = "word"
        if data_dir is not None and (data_dir / "train.parquet").is_file():
            level = read_token_table(data_dir / "train.parquet").metadata.get("level", "word")
        return cls(vocab, level, Path(vocab_path))

    def tokens(self, rows: np.ndarray) -> list[list[str]]:
        """Tokens of each row [n, T]: up to ``<eos>``, without ``<pad>``; token ids as strings without a vocabulary."""
        if self.vocab is None:
            return [[str(token) for token in row] for row in rows]
        return [self.vocab.decode(row) for row in rows]

    def lines(self, rows: np.ndarray) -> list[str]:
        """One line of text per row [n, T]."""
        separator = "" if self.level == "char" and self.vocab is not None else " "
        return [separator.join(tokens) for tokens in self.tokens(rows)]


def write_samples(
    checkpoint: str | Path,
    out: str | Path,
    n: int,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    vocab_path: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Sample ``n`` sequences and write them to ``out`` (``.parquet``: token table; otherwise text lines)."""
    if n <= 0:
        raise ConfigError(f"--n must be > 0, got {n}")
    if not temperature > 0:
        raise ConfigError(f"--temperature must be > 0, got {temperature}")
    generator_file = resolve_generator_file(checkpoint)
    generator = load_generator(generator_file, device)
    rng = torch.Generator(device=device).manual_seed(seed)
    tokens = generator.sample(n, temperature=temperature, generator=rng).cpu().numpy().astype(np.int32)  # (n, T)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"out": str(out), "n": n, "temperature": temperature, "checkpoint": str(generator_file)}
    if out.suffix == ".parquet":
        write_token_table(out, tokens, generator.config.vocab_size,
                          {"source": str(generator_file), "temperature": str(temperature), "seed": str(seed)})
        return {**summary, "format": "parquet"}
    decoder = TextDecoder.for_generator(generator_file, generator.config.vocab_size, vocab_path)
    if decoder.vocab is None:
        summary["format"] = "token ids"
    else:
        summary.update({"format": "text", "vocab": str(decoder.vocab_path), "level": decoder.level})
    with atomic_path(out) as tmp:
        tmp.write_text("".join(line + "\n" for line in decoder.lines(tokens)), encoding="utf-8")
    return summary
