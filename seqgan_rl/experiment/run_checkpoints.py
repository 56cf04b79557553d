"""Checkpoints of a training run: sealed, the last ``keep_checkpoints`` kept, resumable bit for bit.

Each checkpoint directory ``checkpoints/iteration-NNNNNN/`` holds the RLlib
algorithm's state twice: as ``algorithm.pt`` (``Algorithm.get_state()``:
generator, optimiser, Learner's Monte Carlo state, the discriminator actor's
state, EnvRunner and metrics counters, stored as tensors and plain data by
``seqgan_rl.storage.state_tree``), which ``--resume`` reads with
``weights_only=True`` and gives to ``Algorithm.set_state`` on an algorithm
built from the run's ``config.json``; and as RLlib's own files, pickles,
which only ``Algorithm.from_checkpoint`` reads (trusted checkpoints only).
Beside them ``generator.pt`` (the generator alone) and ``rng.pt`` (the
driver's global RNGs, from which the local EnvRunner samples); a manifest
(``seqgan_rl.storage.checkpoint``) written last seals the directory.
``latest.json`` names the newest one, for tools; a resume takes the newest
sealed checkpoint that passes its manifest, falling back to older ones.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqgan_rl.errors import DataError
from seqgan_rl.evaluation.metrics_log import parse_records
from seqgan_rl.models.generator import Generator
from seqgan_rl.storage.checkpoint import (
    MANIFEST_FILE,
    load_checkpoint,
    open_checkpoint_dir,
    save_checkpoint,
    seal_checkpoint_dir,
)
from seqgan_rl.storage.files import atomic_path, write_json
from seqgan_rl.storage.state_tree import decode, encode

logger = logging.getLogger(__name__)

LATEST_FILE = "latest.json"
RNG_FILE = "rng.pt"
ALGORITHM_FILE = "algorithm.pt"
"""The algorithm's whole state without pickle (kind ``"algorithm"``): what ``--resume`` restores."""
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
                        phase_s: dict[str, float], keep: int) -> Path:
    """Write checkpoint ``iteration`` completely, seal it, point ``latest.json`` at it, then keep only the
    ``keep`` newest sealed checkpoints.

    The manifest is the commit: it is written after every other file, and a
    directory without one is never resumed from. A crash at any moment leaves
    the previous sealed checkpoints as they were; a half-written directory is
    removed by the next save, and so is any checkpoint newer than this one
    (written by an attempt that crashed or was passed over, and now redone).
    """
    checkpoints = run_dir / "checkpoints"
    target = checkpoints / checkpoint_name(iteration)
    if target.exists():  # a partial write by an earlier attempt that crashed
        shutil.rmtree(target)
    algo.save_to_path(str(target))  # RLlib's files, for Algorithm.from_checkpoint
    save_checkpoint(target / ALGORITHM_FILE, "algorithm", {"state": encode(algo.get_state())})
    save_checkpoint(target / "generator.pt", "generator", {
        "generator": generator.state_dict(), "generator_config": generator.config.__dict__, "iteration": iteration})
    save_checkpoint(target / RNG_FILE, "rng", process_rng_state())
    seal_checkpoint_dir(target, RUN_CHECKPOINT_KIND,
                        {"iteration": iteration, "num_records": num_records, "phase_s": phase_s})
    write_json(checkpoints / LATEST_FILE, {"iteration": iteration, "path": target.name})
    with atomic_path(run_dir / "generator.pt") as tmp:
        shutil.copyfile(target / "generator.pt", tmp)
    older_sealed = [path for path in checkpoint_dirs(run_dir)
                    if path.name < target.name and (path / MANIFEST_FILE).is_file()]
    kept = {target, *older_sealed[len(older_sealed) - (keep - 1):]} if keep > 1 else {target}
    for old in checkpoint_dirs(run_dir):
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)
    return target


def checkpoint_name(iteration: int) -> str:
    """The directory name of the checkpoint after adversarial batch ``iteration`` (names sort as iterations)."""
    return f"iteration-{iteration:06d}"


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """The run's checkpoint directories, sealed or not, oldest first."""
    return sorted((run_dir / "checkpoints").glob("iteration-*"))


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The newest sealed checkpoint of a run whose files match its manifest, and that manifest (iteration,
    num_records, phase_s).

    A newest checkpoint that fails its manifest (truncated, changed, written by
    another version) is passed over, with a warning naming what is wrong, for
    the one before it: the run redoes the batches in between.

    Raises:
        DataError: no sealed checkpoint yet, or none that passes its manifest
            (naming the newest one's problem).
    """
    candidates = [path for path in reversed(checkpoint_dirs(run_dir)) if (path / MANIFEST_FILE).is_file()]
    if not candidates:
        raise DataError(f"{run_dir}: no checkpoint to resume from (no sealed checkpoint in {run_dir / 'checkpoints'})")
    failures: list[DataError] = []
    for candidate in candidates:
        try:
            state = open_checkpoint_dir(candidate, RUN_CHECKPOINT_KIND)
        except DataError as error:
            failures.append(error)
            continue
        for failure in failures:
            logger.warning("passing over a damaged checkpoint: %s; resuming from %s", failure, candidate)
        return candidate, state
    more = f" (and {len(failures) - 1} older checkpoint(s) fail theirs too)" if len(failures) > 1 else ""
    raise DataError(f"{failures[0]}{more}")


def kept_records(path: Path, num_records: int, iteration: int) -> list[dict[str, Any]]:
    """The first ``num_records`` metrics records of ``path``: those the checkpoint at ``iteration`` follows.

    Later lines (batches after the checkpoint, a line cut short by a crash) are
    dropped: the resumed run logs those batches again.
    """
    lines = path.read_text().splitlines()[:num_records] if path.is_file() else []
    if len(lines) < num_records:
        raise DataError(f"{path}: {len(lines)} records, but the checkpoint at adversarial batch {iteration} was "
                        f"written after {num_records}")
    return parse_records(path, lines)


def restore_run_checkpoint(algo: Any, checkpoint: Path) -> None:
    """Load a checkpoint written by ``save_run_checkpoint`` into ``algo`` and the driver's RNGs, from its
    weights-only files alone: RLlib's pickles in the directory are never read.

    Raises:
        DataError: a checkpoint without ``algorithm.pt`` (written by an older seqgan-rl, whose algorithm
            state only RLlib's pickles hold).
    """
    if not (checkpoint / ALGORITHM_FILE).is_file():
        raise DataError(f"{checkpoint}: no {ALGORITHM_FILE} (a checkpoint of an older seqgan-rl, whose algorithm "
                        "state only RLlib's pickles hold); it cannot be resumed without unpickling them")
    algo.set_state(decode(load_checkpoint(checkpoint / ALGORITHM_FILE, "algorithm")["state"]))
    set_process_rng_state(load_checkpoint(checkpoint / RNG_FILE, "rng"))
