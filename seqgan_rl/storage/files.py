"""Atomic file writes (a crash or an error mid-write never leaves a file that loads), the run directory's
lock, and the paths its ``config.json`` keeps."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from seqgan_rl.errors import RunInUseError


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The temporary file lives in the destination directory (created if missing)
    so that ``os.replace`` is an atomic rename on one file system; on any error
    it is deleted and an existing ``path`` stays untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically (values JSON cannot hold are written as ``str``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")


LOCK_FILE = ".lock"
"""The lock of a run directory (``run_dir_lock``): it holds the pid of the process that owns the run."""


@contextmanager
def run_dir_lock(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``<run_dir>/.lock`` while a process writes the run: a second process is refused at once.

    The lock is an advisory ``flock`` on the file, which the kernel releases
    when the process that holds it exits, however it exits (``kill -9``
    included): a dead process never holds a run forever, and no stale file
    has to be cleaned up. The file keeps the holder's pid for the message.

    Raises:
        RunInUseError: another live process holds the lock.
    """
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunInUseError(f"{Path(run_dir)} is in use by another process (pid {holder}); wait for it to end "
                                "or stop it, then resume") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(descriptor)  # releases the lock


def stored_path(path: str | os.PathLike[str] | None, run_dir: str | os.PathLike[str]) -> str | None:
    """``path`` as a run directory's ``config.json`` keeps it: relative inside ``run_dir`` (so a moved or
    copied run finds its own files), absolute outside it (a user's data or checkpoint)."""
    if path is None:
        return None
    absolute, root = Path(path).resolve(), Path(run_dir).resolve()
    return absolute.relative_to(root).as_posix() if absolute.is_relative_to(root) else str(absolute)


def resolved_path(value: str | None, run_dir: str | os.PathLike[str]) -> Path | None:
    """Inverse of ``stored_path``: a path read from ``<run_dir>/config.json``, relative ones taken from
    ``run_dir`` wherever it now is."""
    return None if value is None else Path(run_dir) / value
