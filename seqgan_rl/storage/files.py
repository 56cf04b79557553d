"""Atomic file writes: a crash or an error mid-write never leaves a file that loads."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
