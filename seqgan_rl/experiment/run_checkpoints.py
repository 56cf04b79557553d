"""Checkpoints of a training run: sealed, pointed at by ``latest.json``, resumable bit for bit.

Each checkpoint directory ``checkpoints/iteration-NNNNNN/`` holds the RLlib
algorithm's state (generator, optimiser, Learner's Monte Carlo state, the
discriminator actor's state), ``generator.pt`` (the generator alone) and
``rng.pt`` (the driver's global RNGs, from which the local EnvRunner samples),
and is sealed by a manifest (``seqgan_rl.storage.checkpoint``) written last.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_rl.errors import DataError
from seqgan_rl.models.generator import Generator
from seqgan_rl.storage.checkpoint import load_checkpoint, open_checkpoint_dir, save_checkpoint, seal_checkpoint_dir
from seqgan_rl.storage.files import atomic_path, write_json

LATEST_FILE = "latest.json"
RNG_FILE = "rng.pt"
RUN_CHECKPOINT_KIND = "run"
"""Kind of a sealed algorithm checkpoint directory (``seqgan_rl.storage.checkpoint.seal_checkpoint_dir``)."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object the run wrote (``DataError`` naming the file if it is not one)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a readable {what} ({error})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: not a readable {what} (a JSON {type(record).__name__}, expected an object)")
    return record


def process_rng_state() -> dict[str, Any]:
    """This (the driver) process's global RNGs: torch's, NumPy's and Python's.

    Every config ``build_algorithm_config`` makes has ``num_env_runners=0``:
    the EnvRunner that samples the generator's sequences and the Learner run
    in this process and draw from these RNGs (RLlib seeds exactly these three),
    but RLlib's checkpoints do not hold them. Without them a resumed run
    samples other sequences than the run that never stopped.
    """
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}}


def set_process_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``process_rng_state``."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))


def save_run_checkpoint(algo: Any, run_dir: Path, iteration: int, generator: Generator, num_records: int,
          phase_s: dict[str, float]) -> Path:
    """Write checkpoint ``iteration`` completely, seal it, then point ``latest.json`` at it, then drop older ones.

    ``latest.json`` is the commit: it is replaced (atomically) only after the
    checkpoint's manifest, which is written after every other file. A crash at
    any moment leaves ``latest.json`` naming a complete, sealed checkpoint (the
    previous one until the new one is sealed); a half-written directory is
    never named and is removed by the next save.
    """
    checkpoints = run_dir / "checkpoints"
    target = checkpoints / f"iteration-{iteration:06d}"
    if target.exists():  # a partial write by an earlier attempt that crashed
        shutil.rmtree(target)
    algo.save_to_path(str(target))
    save_checkpoint(target / "generator.pt", "generator", {
        "generator": generator.state_dict(), "generator_config": generator.config.__dict__, "iteration": iteration})
    save_checkpoint(target / RNG_FILE, "rng", process_rng_state())
    seal_checkpoint_dir(target, RUN_CHECKPOINT_KIND,
                        {"iteration": iteration, "num_records": num_records, "phase_s": phase_s})
    write_json(checkpoints / LATEST_FILE, {"iteration": iteration, "path": target.name})
    with atomic_path(run_dir / "generator.pt") as tmp:
        shutil.copyfile(target / "generator.pt", tmp)
    for old in checkpoints.glob("iteration-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest complete algorithm checkpoint of a run and its manifest (iteration, num_records, phase_s).

    Raises:
        DataError: naming what is wrong: no checkpoint yet, an unreadable
            ``latest.json``, or a checkpoint that is incomplete, of another
            version or whose files differ from its manifest (truncated, changed).
    """
    pointer = run_dir / "checkpoints" / LATEST_FILE
    if not pointer.is_file():
        raise DataError(f"{run_dir}: no checkpoint to resume from ({pointer} is missing)")
    name = read_json(pointer, "checkpoint pointer").get("path")
    if not isinstance(name, str) or not name.startswith("iteration-"):
        raise DataError(f"{pointer}: names no checkpoint directory (path {name!r})")
    target = run_dir / "checkpoints" / name
    return target, open_checkpoint_dir(target, RUN_CHECKPOINT_KIND)


def kept_records(path: Path, num_records: int, iteration: int) -> list[dict[str, Any]]:
    """The first ``num_records`` metrics records of ``path``: those the checkpoint at ``iteration`` follows.

    Later lines (batches after the checkpoint, a line cut short by a crash) are
    dropped: the resumed run logs those batches again.
    """
    lines = path.read_text().splitlines()[:num_records] if path.is_file() else []
    if len(lines) < num_records:
        raise DataError(f"{path}: {len(lines)} records, but the checkpoint at adversarial batch {iteration} was "
                        f"written after {num_records}")
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return records


def restore_run_checkpoint(algo: Any, checkpoint: Path) -> None:
    """Load a checkpoint written by ``save_run_checkpoint`` into ``algo`` and the driver's RNGs."""
    algo.restore_from_path(str(checkpoint))
    set_process_rng_state(load_checkpoint(checkpoint / RNG_FILE, "rng"))
