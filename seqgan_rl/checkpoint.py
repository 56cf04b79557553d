"""Versioned, atomically written checkpoints.

A checkpoint is a ``torch.save`` dictionary with a ``format`` tag, a
``version`` and a ``kind`` (``"mle"`` for pretraining, ``"generator"`` for a
SeqGAN run's generator); loading checks all
three so an old, foreign or truncated file gets a clear error instead of a
model that silently loads wrong. Writes go to a temporary file in the same
directory and are renamed over the target, so a crash mid-write never leaves a
checkpoint that loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from seqgan_rl.errors import DataError
from seqgan_rl.fileio import atomic_path

CHECKPOINT_FORMAT = "seqgan-rl-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, state dicts, plain data) as a checkpoint of ``kind``."""
    path = Path(path)
    record = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **payload}
    with atomic_path(path) as tmp, tmp.open("wb") as stream:
        torch.save(record, stream)
        stream.flush()
        os.fsync(stream.fileno())
    return path


GENERATOR_KINDS: tuple[str, ...] = ("mle", "generator")
"""Checkpoint kinds holding a generator (``generator``, ``generator_config``): an MLE run's and a SeqGAN run's."""


def load_checkpoint(
    path: str | os.PathLike[str], kind: str | tuple[str, ...], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint and check that it is ours, of this version and of ``kind`` (or one of the kinds)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt file
        raise DataError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a seqgan-rl checkpoint (no format tag {CHECKPOINT_FORMAT!r})")
    if record.get("version") != CHECKPOINT_VERSION:
        raise DataError(
            f"{path}: checkpoint version {record.get('version')!r}, this seqgan-rl reads version {CHECKPOINT_VERSION}"
        )
    kinds = (kind,) if isinstance(kind, str) else kind
    if record.get("kind") not in kinds:
        raise DataError(f"{path}: a {record.get('kind')!r} checkpoint, expected {' or '.join(map(repr, kinds))}")
    return record
