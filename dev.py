#!/usr/bin/env python3
"""One-command entry points of the README quick start.

``python3 dev.py train`` and ``python3 dev.py test`` each make sure ``.venv``
holds this package and its pinned dependencies (``constraints.txt``), then run
the main job, or the linter (``ruff check``, configured in ``pyproject.toml``)
and the default test suite (every test not marked slow; ``-m slow`` runs the
others), inside it. Only the Python standard library is used here, so a fresh
machine with Python 3.11 and pip needs nothing else.

The environment is rebuilt only when ``setup.cfg``, ``pyproject.toml`` or
``constraints.txt`` changed since the last install (a hash stamp in ``.venv``),
so both commands are idempotent and fast the second time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".seqgan-rl-install-stamp"
INSTALL_INPUTS = ("setup.cfg", "pyproject.toml", "constraints.txt")
DEFAULT_SUITE = "not slow"
"""The tests ``python3 dev.py test`` runs unless a ``-m`` is given: all but those marked slow (learning
tests, real processes killed and resumed, multi-node clusters), which ``-m slow`` runs; ``.ci/run`` runs both."""


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def _install_hash() -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create ``.venv`` and install the package with its test extra, if stale."""
    wanted = _install_hash()
    if STAMP.exists() and STAMP.read_text() == wanted and _bin("seqgan-rl").exists():
        return
    if not _bin("python").exists():
        print(f"[dev] creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[dev] installing seqgan-rl and its pinned dependencies (first run takes ~2 min)", flush=True)
    subprocess.run(
        [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[test]"],
        check=True,
    )
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"train", "test", "setup"}:
        print("usage: python3 dev.py {train|test|setup} [extra args passed through]", file=sys.stderr)
        return 2
    if sys.version_info < (3, 10):
        print(f"Python >= 3.10 is required, this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    ensure_venv()
    command, extra = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "train":
        # SeqGAN on the synthetic oracle; --preset auto = paper with a GPU, cpu without
        cmd = [str(_bin("seqgan-rl")), "train", *extra]
    else:
        lint = subprocess.run([str(_bin("ruff")), "check", "."], cwd=ROOT)
        if lint.returncode != 0:
            print("[dev] ruff found problems (see above); fix them before the tests run", file=sys.stderr)
            return lint.returncode
        if not any(arg == "-m" or arg.startswith("-m") and len(arg) > 2 for arg in extra):
            extra = ["-m", DEFAULT_SUITE, *extra]  # the slow tests: python3 dev.py test -m slow (CI runs both)
        cmd = [str(_bin("python")), "-m", "pytest", *extra]
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
