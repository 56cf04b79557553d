"""What several sub-commands share: the --device flag's device and run-directory names."""

from __future__ import annotations

import time
from pathlib import Path

from seqgan_rl.errors import SeqGANError


def device_flag(name: str) -> str:
    """``auto`` → ``cuda`` when a GPU is present, else ``cpu``; a CUDA device without CUDA is refused."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqGANError(f"--device {name}: CUDA is not available on this machine")
    return name


def default_run_dir(kind: str, preset: str) -> Path:
    """``runs/<kind>-<preset>-<date-time>``: where a run goes when no ``--run-dir`` is given."""
    return Path("runs") / f"{kind}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
