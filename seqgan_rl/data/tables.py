"""Token tables on disk (Parquet): the one data format every stage of seqgan-rl reads.

Oracle samples of the synthetic experiment, tokenised text corpora and
generator samples are all token tables. A token table is a Parquet file with
one row per sequence and a single column ``tokens`` of type ``list<int32>``;
every row holds exactly ``seq_len`` ids. The schema metadata records what a
reader needs to check compatibility before training on the file:

* ``seqgan_rl.format`` = ``token-table`` and ``seqgan_rl.version`` = ``1``;
* ``seqgan_rl.vocab_size``: every id is in ``[0, vocab_size)``;
* ``seqgan_rl.seq_len``: the length of every row;
* optional free-form string entries from the writer (``source``, ``oracle``...).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.storage.files import atomic_path

TOKENS_COLUMN = "tokens"

_META_PREFIX = "seqgan_rl."
_META_FORMAT = "seqgan_rl.format"
_META_VERSION = "seqgan_rl.version"
_META_VOCAB_SIZE = "seqgan_rl.vocab_size"
_META_SEQ_LEN = "seqgan_rl.seq_len"
_FORMAT_NAME = "token-table"
_FORMAT_VERSION = "1"

_INT32_MAX = int(np.iinfo(np.int32).max)
# Rows per Arrow chunk when writing: keeps every chunk's int32 list offsets far
# from overflow and bounds the extra memory of the int32 copy.
_WRITE_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class TokenTable:
    """A token table loaded in memory.

    Attributes:
        tokens: int32 array of shape [num_sequences, seq_len].
        vocab_size: every id in ``tokens`` is in ``[0, vocab_size)``.
        seq_len: length of every sequence (``tokens.shape[1]``).
        metadata: the writer's free-form metadata (``source``, ``oracle``...),
            without the reserved ``seqgan_rl.*`` entries.
    """

    tokens: np.ndarray
    vocab_size: int
    seq_len: int
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tokens.ndim != 2 or self.tokens.shape[1] != self.seq_len:
            raise ValueError(
                f"tokens must have shape [num_sequences, {self.seq_len}], got {self.tokens.shape}"
            )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


def _validate_tokens_for_write(path: Path, tokens: np.ndarray, vocab_size: int) -> None:
    """Raise DataError naming ``path`` unless ``tokens`` is a valid [n, seq_len] id array."""
    where = f"cannot write token table {path}"
    if tokens.ndim != 2:
        raise DataError(
            f"{where}: tokens must be a 2-D array [num_sequences, seq_len], got shape {tokens.shape}"
        )
    if not np.issubdtype(tokens.dtype, np.integer):
        raise DataError(f"{where}: tokens must have an integer dtype, got {tokens.dtype}")
    if tokens.shape[0] == 0:
        raise DataError(f"{where}: no sequences (tokens has shape {tokens.shape})")
    if tokens.shape[1] == 0:
        raise DataError(f"{where}: sequences are empty (tokens has shape {tokens.shape})")
    bad = (tokens < 0) | (tokens >= vocab_size)
    if bad.any():
        row, position = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: row {row} (0-based), position {position}: token id "
            f"{int(tokens[row, position])} is outside [0, {vocab_size}) (vocab_size)"
        )


def _checked_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """The user's schema metadata for a token table, checked: str to str, no key of the reserved prefix."""
    extra = dict(metadata or {})
    for key, value in extra.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(
                f"token table metadata must map str to str, got {key!r}: {value!r} "
                f"({type(key).__name__}: {type(value).__name__})"
            )
        if key.startswith(_META_PREFIX):
            raise ConfigError(
                f"token table metadata key {key!r} is reserved (the '{_META_PREFIX}' prefix "
                "belongs to seqgan-rl)"
            )
    return extra


def write_token_table(
    path: str | os.PathLike[str],
    tokens: np.ndarray,
    vocab_size: int,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Validate ``tokens`` and write them as a token table, atomically.

    The data goes to a temporary file in the destination directory that is then
    renamed over ``path``, so a crash or a validation error never leaves a
    half-written or truncated table (an existing file stays intact).

    Args:
        path: destination ``.parquet`` file; missing parent directories are created.
        tokens: integer array of shape [num_sequences, seq_len], ids in
            ``[0, vocab_size)``; stored as int32.
        vocab_size: size of the id space the tokens come from.
        metadata: optional free-form string entries stored in the schema
            metadata (keys starting with ``seqgan_rl.`` are reserved).

    Raises:
        ConfigError: ``vocab_size`` is not a positive int32, or ``metadata`` has a
            reserved or non-string key or value.
        DataError: ``tokens`` is not 2-D, not integer, empty, or has an id
            outside ``[0, vocab_size)`` (row and position are named).
    """
    target = Path(path)
    if not 1 <= vocab_size <= _INT32_MAX:
        raise ConfigError(f"vocab_size must be in [1, {_INT32_MAX}], got {vocab_size}")
    extra = _checked_metadata(metadata)
    array = np.asarray(tokens)
    _validate_tokens_for_write(target, array, vocab_size)

    num_rows, seq_len = array.shape
    chunks = []
    for start in range(0, num_rows, _WRITE_CHUNK_ROWS):
        block = np.ascontiguousarray(array[start : start + _WRITE_CHUNK_ROWS], dtype=np.int32)
        offsets = np.arange(0, block.size + 1, seq_len, dtype=np.int32)
        chunks.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(block.reshape(-1))))
    schema_metadata = {
        _META_FORMAT: _FORMAT_NAME,
        _META_VERSION: _FORMAT_VERSION,
        _META_VOCAB_SIZE: str(int(vocab_size)),
        _META_SEQ_LEN: str(int(seq_len)),
        **extra,
    }
    schema = pa.schema(
        [pa.field(TOKENS_COLUMN, pa.list_(pa.int32()), nullable=False)],
        metadata={k.encode("utf-8"): v.encode("utf-8") for k, v in schema_metadata.items()},
    )
    table = pa.Table.from_arrays([pa.chunked_array(chunks, type=pa.list_(pa.int32()))], schema=schema)

    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def _decode_metadata(raw: Mapping[bytes, bytes] | None) -> dict[str, str]:
    return {
        key.decode("utf-8", errors="replace"): value.decode("utf-8", errors="replace")
        for key, value in (raw or {}).items()
    }


def _positive_int_metadata(path: Path, meta: Mapping[str, str], key: str) -> int:
    """Parse a required positive-integer metadata entry, or raise DataError naming it."""
    if key not in meta:
        raise DataError(
            f"{path}: missing schema metadata {key!r}; a token table written by seqgan-rl "
            "records it (rewrite the file with seqgan_rl.data.write_token_table)"
        )
    text = meta[key]
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"{path}: schema metadata {key!r} is {text!r}, expected an integer") from None
    if not 1 <= value <= _INT32_MAX:
        raise DataError(f"{path}: schema metadata {key!r} is {value}, expected in [1, {_INT32_MAX}]")
    return value


def _is_integer_list(data_type: pa.DataType) -> bool:
    return (pa.types.is_list(data_type) or pa.types.is_large_list(data_type)) and pa.types.is_integer(
        data_type.value_type
    )


def _chunk_to_numpy(
    path: Path, chunk: pa.Array, first_row: int, seq_len: int, vocab_size: int
) -> np.ndarray:
    """Check one Arrow chunk of the ``tokens`` column and return it as int32 [rows, seq_len].

    ``first_row`` is the table row of the chunk's first element, so errors
    name rows of the file rather than of the chunk.
    """
    if chunk.null_count:
        row = first_row + int(np.flatnonzero(chunk.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{path}: row {row} (0-based) of column {TOKENS_COLUMN!r} is null")
    lengths = pc.list_value_length(chunk).to_numpy()
    wrong = np.flatnonzero(lengths != seq_len)
    if wrong.size:
        index = int(wrong[0])
        length = int(lengths[index])
        kind = "longer" if length > seq_len else "shorter"
        raise DataError(
            f"{path}: row {first_row + index} (0-based) of column {TOKENS_COLUMN!r} has {length} "
            f"tokens, expected {seq_len} ({_META_SEQ_LEN}): sequence {kind} than the configured length"
        )
    values = chunk.flatten()
    if values.null_count:
        flat = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"{path}: row {first_row + flat // seq_len} (0-based), position {flat % seq_len} "
            f"of column {TOKENS_COLUMN!r}: token id is null"
        )
    ids = values.to_numpy()
    bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
    if bad.size:
        flat = int(bad[0])
        raise DataError(
            f"{path}: row {first_row + flat // seq_len} (0-based), position {flat % seq_len} "
            f"of column {TOKENS_COLUMN!r}: token id {int(ids[flat])} is outside [0, {vocab_size}) "
            f"(vocab_size {vocab_size} from {_META_VOCAB_SIZE})"
        )
    return ids.astype(np.int32, copy=False).reshape(len(chunk), seq_len)


def read_token_table(
    path: str | os.PathLike[str],
    *,
    vocab_size: int | None = None,
    seq_len: int | None = None,
) -> TokenTable:
    """Load and fully validate a token table.

    Args:
        path: a ``.parquet`` file written by :func:`write_token_table`.
        vocab_size: the consumer's vocabulary size (e.g. the model's embedding
            size). The file's ``seqgan_rl.vocab_size`` must not exceed it: a
            smaller id space fits the model, a larger one does not.
        seq_len: the consumer's sequence length; must equal the file's exactly.

    Returns:
        The table with ``tokens`` as int32 [num_sequences, seq_len]. Columns
        stored as ``list``/``large_list`` of any integer type are accepted and
        converted after their ids are range-checked.

    Raises:
        DataError: naming the file (and the row, position and column where it
            applies) when the file is missing, not Parquet or corrupt, lacks the
            ``tokens`` column or has it with another type, lacks the seqgan-rl
            metadata, has a null row, a row of the wrong length, an id outside
            ``[0, vocab_size)``, no rows, or disagrees with ``vocab_size`` /
            ``seq_len``.
    """
    source = Path(path)
    parquet, meta = _open_token_table(source)
    file_vocab_size, file_seq_len = _check_token_table_header(source, parquet, meta, vocab_size, seq_len)
    try:
        column = parquet.read(columns=[TOKENS_COLUMN]).column(TOKENS_COLUMN)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{source}: the file is corrupt; reading column {TOKENS_COLUMN!r} failed ({exc})"
        ) from None

    blocks = []
    first_row = 0
    for chunk in column.chunks:
        blocks.append(_chunk_to_numpy(source, chunk, first_row, file_seq_len, file_vocab_size))
        first_row += len(chunk)
    tokens = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    user_meta = {key: value for key, value in meta.items() if not key.startswith(_META_PREFIX)}
    return TokenTable(tokens=tokens, vocab_size=file_vocab_size, seq_len=file_seq_len, metadata=user_meta)


def _open_token_table(source: Path) -> tuple[pq.ParquetFile, dict[str, str]]:
    """The Parquet file and its seqgan-rl metadata, refused unless it is a token table of this format version."""
    if not source.exists():
        raise DataError(f"token table not found: {source}")
    if source.is_dir():
        raise DataError(f"token table path is a directory, not a file: {source}")
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{source}: not a Parquet file or the file is corrupt ({exc})") from None
    meta = _decode_metadata(parquet.schema_arrow.metadata)
    if meta.get(_META_FORMAT) != _FORMAT_NAME:
        found = f"is {meta[_META_FORMAT]!r}" if _META_FORMAT in meta else "is missing"
        raise DataError(
            f"{source}: not a seqgan-rl token table (schema metadata {_META_FORMAT!r} {found}, "
            f"expected {_FORMAT_NAME!r}); write token tables with seqgan_rl.data.write_token_table"
        )
    if meta.get(_META_VERSION) != _FORMAT_VERSION:
        raise DataError(
            f"{source}: unsupported token table version {meta.get(_META_VERSION)!r} "
            f"(schema metadata {_META_VERSION!r}; this seqgan-rl reads version {_FORMAT_VERSION!r})"
        )
    return parquet, meta


def _check_token_table_header(source: Path, parquet: pq.ParquetFile, meta: Mapping[str, str],
                              vocab_size: int | None, seq_len: int | None) -> tuple[int, int]:
    """The table's vocabulary size and sequence length, checked against its column and the consumer's."""
    schema = parquet.schema_arrow
    file_vocab_size = _positive_int_metadata(source, meta, _META_VOCAB_SIZE)
    file_seq_len = _positive_int_metadata(source, meta, _META_SEQ_LEN)

    if TOKENS_COLUMN not in schema.names:
        raise DataError(f"{source}: no column {TOKENS_COLUMN!r} (columns found: {schema.names})")
    found_type = schema.field(TOKENS_COLUMN).type
    if not _is_integer_list(found_type):
        raise DataError(
            f"{source}: column {TOKENS_COLUMN!r} has type {found_type}, expected list<int32> "
            "(a list or large_list of integers)"
        )
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{source}: no sequences (the table has 0 rows)")
    if vocab_size is not None and file_vocab_size > vocab_size:
        raise DataError(
            f"{source}: table vocabulary size {file_vocab_size} ({_META_VOCAB_SIZE}) exceeds the "
            f"expected vocabulary size {vocab_size}; the table was built for another vocabulary"
        )
    if seq_len is not None and file_seq_len != seq_len:
        raise DataError(
            f"{source}: table sequence length {file_seq_len} ({_META_SEQ_LEN}) differs from the "
            f"expected sequence length {seq_len}"
        )
    return file_vocab_size, file_seq_len


def iterate_minibatches(
    tokens: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    rng: np.random.Generator | None,
) -> Iterator[np.ndarray]:
    """Yield consecutive [batch_size, seq_len] batches of ``tokens`` [num_sequences, seq_len].

    One pass over the data (an epoch); the last batch is smaller when
    ``batch_size`` does not divide ``num_sequences``, so no sequence is ever
    skipped. Unshuffled batches are views of ``tokens``; shuffled ones are
    copies in the order of one ``rng.permutation`` drawn when this function is
    called. Arguments are checked at call time, not at the first ``next()``.

    Raises:
        ConfigError: ``batch_size < 1``, ``tokens`` not 2-D, or ``shuffle``
            without an ``rng`` (shuffling must be reproducible from a seed).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if tokens.ndim != 2:
        raise ConfigError(f"tokens must be 2-D [num_sequences, seq_len], got shape {tokens.shape}")
    num_rows = tokens.shape[0]
    starts = range(0, num_rows, batch_size)
    if not shuffle:
        return (tokens[start : start + batch_size] for start in starts)
    if rng is None:
        raise ConfigError("shuffle=True needs an rng (numpy.random.Generator) so batches are reproducible")
    order = rng.permutation(num_rows)
    return (tokens[order[start : start + batch_size]] for start in starts)
