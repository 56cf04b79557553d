"""Versioned, atomically written checkpoints: single files and whole directories.

A checkpoint file is a ``torch.save`` dictionary with a ``format`` tag, a
``version`` and a ``kind`` (``"mle"`` for pretraining, ``"generator"`` for a
SeqGAN run's generator, ``"rng"`` for a run's random-number generators);
loading checks all three so an old, foreign or truncated file gets a clear
error instead of a model that silently loads wrong. Writes go to a temporary
file in the same directory and are renamed over the target, so a crash
mid-write never leaves a checkpoint that loads.

A checkpoint directory (a SeqGAN run's algorithm checkpoint: RLlib's files plus
ours) cannot be renamed into place as one file can, and RLlib writes its files
itself. So it is *sealed* instead: after every file is written, a manifest
(``MANIFEST_FILE``: format, version, kind, the caller's state and the size and
SHA-256 of every file) is written last, atomically. ``open_checkpoint_dir``
refuses a directory without a manifest (a write that never finished) and one
whose files differ from it (truncated or changed since), naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from seqgan_rl.errors import DataError
from seqgan_rl.storage.files import atomic_path, write_json

CHECKPOINT_FORMAT = "seqgan-rl-checkpoint"
CHECKPOINT_VERSION = 1
MANIFEST_FILE = "state.json"
"""A sealed checkpoint directory's manifest (the name predates sealing: runs' state lived there before)."""


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


def _unreadable_reason(error: Exception) -> str:
    """One line saying why ``torch.load`` failed (its own messages span paragraphs and suggest unsafe loading)."""
    text = str(error)
    unpickler = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|\. Please use|$)", text, re.DOTALL)
    if unpickler:  # a pickle that holds something besides tensors and plain data, or random bytes
        return f"{type(error).__name__}: {' '.join(unpickler.group(1).split())}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "empty or cut short")
    return f"{type(error).__name__}: {first}"


def _check_header(path: Path, record: Any, kinds: tuple[str, ...]) -> None:
    """Raise ``DataError`` unless ``record`` carries our format tag, this version and one of ``kinds``."""
    if not isinstance(record, dict) or record.get("format") != CHECKPOINT_FORMAT:
        raise DataError(f"{path}: not a seqgan-rl checkpoint (no format tag {CHECKPOINT_FORMAT!r})")
    if record.get("version") != CHECKPOINT_VERSION:
        raise DataError(
            f"{path}: checkpoint version {record.get('version')!r}, this seqgan-rl reads version {CHECKPOINT_VERSION}"
        )
    if record.get("kind") not in kinds:
        raise DataError(f"{path}: a {record.get('kind')!r} checkpoint, expected {' or '.join(map(repr, kinds))}")


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
        raise DataError(f"{path}: not a readable checkpoint: truncated, corrupt or not a seqgan-rl file "
                        f"({_unreadable_reason(error)})") from error
    _check_header(path, record, (kind,) if isinstance(kind, str) else kind)
    return record


def _file_digest(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def seal_checkpoint_dir(directory: str | os.PathLike[str], kind: str, state: dict[str, Any]) -> Path:
    """Mark the fully written checkpoint ``directory`` complete: write its manifest, last and atomically.

    ``state`` (JSON-able) is stored in the manifest and returned by
    ``open_checkpoint_dir``. Call this only after every other file of the
    directory is written: the manifest records each one's size and SHA-256.
    """
    directory = Path(directory)
    files = {path.relative_to(directory).as_posix(): _file_digest(path)
             for path in sorted(directory.rglob("*")) if path.is_file() and path.name != MANIFEST_FILE}
    manifest = directory / MANIFEST_FILE
    write_json(manifest, {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **state,
                          "files": files})
    return manifest


def open_checkpoint_dir(directory: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The manifest of a sealed checkpoint directory of ``kind``, after checking every file it lists.

    Raises:
        DataError: naming the directory or file: no manifest (the write never
            finished), not ours / another version / another kind, or a file
            missing, of another size or with other contents than when sealed.
    """
    directory = Path(directory)
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file():
        raise DataError(f"{directory}: incomplete checkpoint ({MANIFEST_FILE} missing: its write never finished)")
    try:
        record = json.loads(manifest.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{manifest}: not a readable checkpoint manifest ({error})") from None
    if isinstance(record, dict) and "format" not in record and "iteration" in record:
        raise DataError(f"{manifest}: a checkpoint written before checkpoints had a format version (seqgan-rl "
                        f"before checkpoint version {CHECKPOINT_VERSION}); this seqgan-rl cannot resume it")
    _check_header(manifest, record, (kind,))
    files = record.get("files")
    if not isinstance(files, dict):
        raise DataError(f"{manifest}: no file list (not a sealed seqgan-rl checkpoint directory)")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise DataError(f"{path}: missing from the checkpoint {directory}")
        if path.stat().st_size != expected["bytes"]:
            raise DataError(f"{path}: {path.stat().st_size} bytes, the checkpoint's manifest says "
                            f"{expected['bytes']} (truncated or rewritten after the checkpoint was sealed)")
        if _file_digest(path)["sha256"] != expected["sha256"]:
            raise DataError(f"{path}: contents differ from the checkpoint's manifest (corrupted or rewritten "
                            "after the checkpoint was sealed)")
    return record
