"""Text corpora made into token tables: tokenising, the vocabulary, the train/validation split.

Text sequences are ``tokens + <eos> + <pad>...`` up to ``seq_len`` (see
:mod:`seqgan_rl.data.vocabulary` for the special ids); ``prepare_text_dataset``
is what ``seqgan-rl prepare-data --text`` calls.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, TypedDict

import numpy as np

from seqgan_rl.data.tables import write_token_table
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, DataError

_WORD_PATTERN = re.compile(r"\w+|[^\w\s]")


def tokenize_line(line: str, level: Literal["word", "char"], lowercase: bool = True) -> list[str]:
    """Split one line of text into tokens.

    ``"word"``: runs of word characters and single punctuation marks, Unicode
    aware (``"A man, riding."`` -> ``["a", "man", ",", "riding", "."]``).
    ``"char"``: every non-whitespace character is a token; whitespace is
    dropped (the Chinese poem corpus separates its characters by spaces).

    Raises:
        ConfigError: ``level`` is neither ``"word"`` nor ``"char"``.
    """
    text = line.lower() if lowercase else line
    if level == "word":
        return _WORD_PATTERN.findall(text)
    if level == "char":
        return [character for character in text if not character.isspace()]
    raise ConfigError(f"level must be 'word' or 'char', got {level!r}")


class DatasetSummary(TypedDict):
    """What :func:`prepare_text_dataset` wrote (JSON-serialisable)."""

    num_train: int
    num_valid: int
    vocab_size: int
    seq_len: int
    truncated: int
    unknown_rate_valid: float | None
    level: str
    train_path: str
    valid_path: str | None
    vocab_path: str


def read_text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file, decoded one at a time (a leading byte-order mark is dropped).

    Raises ``DataError`` naming the file, the line (1-based) and the byte of the first line that is not
    valid UTF-8.
    """
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                yield raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}, line {line_number} (1-based): not valid UTF-8 "
                    f"(byte 0x{raw[exc.start]:02x} at byte column {exc.start})"
                ) from None


def _read_corpus(path: Path, level: Literal["word", "char"], lowercase: bool) -> list[list[str]]:
    """Tokenised non-blank lines of a UTF-8 corpus (a leading byte-order mark is ignored)."""
    if not path.is_file():
        raise DataError(f"text corpus not found: {path}")
    return [tokenize_line(line, level, lowercase) for line in read_text_lines(path) if line.strip()]


def _encode_sequences(vocab: Vocabulary, lines: list[list[str]], seq_len: int) -> np.ndarray:
    """Ids of ``lines`` as int32 [len(lines), seq_len]: tokens, ``<eos>``, then ``<pad>``."""
    out = np.full((len(lines), seq_len), vocab.pad_id, dtype=np.int32)
    for row, tokens in enumerate(lines):
        ids = vocab.encode(tokens)
        out[row, : len(ids)] = ids
        out[row, len(ids)] = vocab.eos_id
    return out


def prepare_text_dataset(text_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                         level: Literal["word", "char"] = "word", max_len: int | None = None, min_freq: int = 1,
                         valid_fraction: float = 0.1, seed: int = 0, lowercase: bool = True) -> DatasetSummary:
    """Turn a text corpus (one sentence per line) into train/valid token tables.

    Blank lines are skipped. Every sequence is its tokens, ``<eos>``, then
    ``<pad>`` up to ``seq_len``; ``seq_len`` is ``max_len`` when given, else the
    longest line plus one (room for ``<eos>``). Lines with more than
    ``max_len - 1`` tokens are truncated to that many (their ``<eos>`` is kept)
    and counted in ``truncated``. The lines are split reproducibly by a
    ``numpy.random.default_rng(seed)`` permutation (each split keeps corpus
    order): the validation split gets ``round(valid_fraction * n)`` lines, at
    least one when ``valid_fraction > 0``. The vocabulary is built from the
    train split only, so ``unknown_rate_valid`` (fraction of validation tokens,
    ``<eos>``/``<pad>`` excluded, that map to ``<unk>``) measures real
    out-of-vocabulary words.

    Writes ``out_dir/train.parquet``, ``out_dir/valid.parquet`` and
    ``out_dir/vocab.json``. With ``valid_fraction == 0`` there is no
    validation split: no ``valid.parquet`` is written and a stale one from an
    earlier run is removed, so the directory never mixes two vocabularies.

    Raises:
        ConfigError: ``max_len < 2``, ``min_freq < 1``, ``valid_fraction`` outside
            ``[0, 1)`` or an unknown ``level``.
        DataError: the corpus is missing, not UTF-8 (file and line named), has
            no non-blank line, or has a single line while a validation split
            is requested.
    """
    _check_text_options(level, max_len, min_freq, valid_fraction)
    source = Path(text_path)
    lines = _read_corpus(source, level, lowercase)
    if not lines:
        raise DataError(f"{source}: the corpus is empty (no non-blank lines)")
    seq_len = max_len if max_len is not None else max(len(tokens) for tokens in lines) + 1
    truncated = sum(len(tokens) > seq_len - 1 for tokens in lines)
    lines = [tokens[: seq_len - 1] for tokens in lines]
    train_lines, valid_lines = _split_lines(source, lines, valid_fraction, seed)

    vocab = Vocabulary.build(train_lines, min_freq=min_freq)
    out = Path(out_dir)
    common = {"source": source.name, "level": level, "lowercase": str(lowercase).lower(), "min_freq": str(min_freq),
              "seed": str(seed)}
    train_path, valid_path, vocab_path = out / "train.parquet", out / "valid.parquet", out / "vocab.json"
    write_token_table(train_path, _encode_sequences(vocab, train_lines, seq_len), len(vocab),
                      {**common, "split": "train"})
    unknown_rate = _write_valid_split(valid_path, vocab, valid_lines, seq_len, {**common, "split": "valid"})
    vocab.save(vocab_path)
    return DatasetSummary(num_train=len(train_lines), num_valid=len(valid_lines), vocab_size=len(vocab),
                          seq_len=seq_len, truncated=truncated, unknown_rate_valid=unknown_rate, level=level,
                          train_path=str(train_path), valid_path=str(valid_path) if valid_lines else None,
                          vocab_path=str(vocab_path))


def _check_text_options(level: str, max_len: int | None, min_freq: int, valid_fraction: float) -> None:
    if level not in ("word", "char"):
        raise ConfigError(f"level must be 'word' or 'char', got {level!r}")
    if max_len is not None and max_len < 2:
        raise ConfigError(f"max_len must be >= 2 (one token plus <eos>), got {max_len}")
    if min_freq < 1:
        raise ConfigError(f"min_freq must be >= 1, got {min_freq}")
    if not 0.0 <= valid_fraction < 1.0:
        raise ConfigError(f"valid_fraction must be in [0, 1), got {valid_fraction}")


def _split_lines(source: Path, lines: list[list[str]], valid_fraction: float,
                 seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """(train, valid) lines: a seeded permutation picks ``round(valid_fraction * n)`` (>= 1 when > 0) valid
    lines; each split keeps corpus order."""
    num_lines = len(lines)
    num_valid = 0
    if valid_fraction > 0:
        if num_lines < 2:
            raise DataError(
                f"{source}: a validation split needs at least 2 non-blank lines, found {num_lines} "
                "(use valid_fraction=0)"
            )
        num_valid = min(max(1, round(valid_fraction * num_lines)), num_lines - 1)
    order = np.random.default_rng(seed).permutation(num_lines)
    return [lines[i] for i in np.sort(order[num_valid:])], [lines[i] for i in np.sort(order[:num_valid])]


def _write_valid_split(path: Path, vocab: Vocabulary, valid_lines: list[list[str]], seq_len: int,
                       metadata: dict[str, str]) -> float | None:
    """Write ``valid.parquet`` (or remove a stale one when there is no split); the split's ``<unk>`` rate."""
    if not valid_lines:
        path.unlink(missing_ok=True)
        return None
    valid_tokens = _encode_sequences(vocab, valid_lines, seq_len)
    write_token_table(path, valid_tokens, len(vocab), metadata)
    num_content = sum(len(tokens) for tokens in valid_lines)
    return float(np.count_nonzero(valid_tokens == vocab.unk_id)) / num_content
