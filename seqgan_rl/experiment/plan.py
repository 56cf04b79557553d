"""A run as resolved from the command line before any work: what ``preflight`` checks and ``run`` executes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seqgan_rl.config import TrainConfig
from seqgan_rl.models.oracle import Oracle


@dataclass
class RunPlan:
    """A run resolved before any work: its options, inputs and, when resumed, where it stopped."""

    config: TrainConfig
    run_dir: Path
    data_dir: str | Path | None
    oracle_params: str | Path | None
    generator_checkpoint: str | Path | None
    checkpoint: Path | None = None
    """The latest checkpoint of a resumed run (``None``: a fresh run)."""
    iteration: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)
    oracle: tuple[Oracle, str] | None = None
    """A run without a data directory: the oracle its data is sampled from and where that came from
    (``load_oracle``; loaded once, by ``preflight``)."""
