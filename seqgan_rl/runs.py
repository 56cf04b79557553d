"""Run directories read back: the generator of any checkpoint, the run's ``config.json``, its data folder.

A generator file is ``generator.pt`` of a train run or ``checkpoint.pt`` of a
pretrain run (``seqgan_rl.storage.checkpoint.GENERATOR_KINDS``); every command
that starts from a checkpoint (``train --init``, ``sample``, ``evaluate``) and
the RLlib generator module read it here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from seqgan_rl.errors import DataError
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.checkpoint import GENERATOR_KINDS, load_checkpoint
from seqgan_rl.storage.files import resolved_path


def resolve_generator_file(checkpoint: str | Path) -> Path:
    """The generator file of ``checkpoint`` (a file, or a train/pretrain run directory)."""
    path = Path(checkpoint)
    if path.is_dir():
        for name in ("generator.pt", "checkpoint.pt"):
            if (path / name).is_file():
                return path / name
        raise DataError(f"{path}: no generator.pt or checkpoint.pt in this directory")
    return path


def read_generator_checkpoint(path: str | Path) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    """The sizes and the parameters held by a generator checkpoint file (MLE or adversarial; see
    ``seqgan_rl.storage.checkpoint.GENERATOR_KINDS``), checked as ``load_checkpoint`` checks every checkpoint."""
    record = load_checkpoint(path, GENERATOR_KINDS)
    return GeneratorConfig(**record["generator_config"]), record["generator"]


def load_generator(checkpoint: str | Path, device: str = "cpu") -> Generator:
    """A generator from any generator checkpoint (see module docstring), in eval mode on ``device``."""
    config, state = read_generator_checkpoint(resolve_generator_file(checkpoint))
    generator = Generator(config, init_std=None)
    generator.load_state_dict(state)
    return generator.to(device).eval()


RUN_PATHS = ("data_dir", "oracle_params", "mle_checkpoint")
"""The paths a run's ``config.json`` keeps (``seqgan_rl.storage.files.stored_path``: relative inside the run)."""


def run_record(generator_file: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the run a generator file belongs to (nearest directory up), if any, with its
    paths (``RUN_PATHS``) taken from where that directory now is.

    Both ``pretrain`` and ``train`` runs write one, with ``data_dir`` and ``oracle_params``.
    """
    for directory in (generator_file.parent, *generator_file.parents[:3]):
        config = directory / "config.json"
        if config.is_file():
            record = json.loads(config.read_text())
            for key in RUN_PATHS:
                path = resolved_path(record.get(key), directory)
                record[key] = None if path is None else str(path)
            return record
    return None


def find_data_dir(generator_file: Path) -> Path | None:
    """The training-data directory of the run a generator file belongs to, if it can be found."""
    record = run_record(generator_file)
    data_dir = None if record is None else record.get("data_dir")
    return Path(data_dir) if data_dir else None
