"""Generated text from a checkpoint: decoding token ids, and ``seqgan-rl sample``'s token table or text file.

A checkpoint is a generator file (``generator.pt`` of a train run,
``checkpoint.pt`` of a pretrain run) or a run directory holding one. Text output
decodes with the run's vocabulary (``vocab.json`` beside its training data,
found through the run's ``config.json``, or given explicitly); word-level
corpora are joined with spaces, character-level ones without. Without a
vocabulary (the synthetic oracle) each line is the space-separated token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_rl.data.tables import read_token_table, write_token_table
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.runs import find_data_dir, load_generator, resolve_generator_file
from seqgan_rl.storage.files import atomic_path


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
