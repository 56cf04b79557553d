"""A real ``seqgan-rl`` process killed with SIGKILL at each phase, then ``--resume``: the same result as a run
that never stopped, bit for bit on CPU.

Each run is its own subprocess (its own local Ray for ``train``), killed by
``os.kill(pid, SIGKILL)`` once the run directory shows it is in the phase the
test is about: no signal handler, no ``atexit``, no chance to tidy up. The
uninterrupted reference runs with the same options in a subprocess of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import SMALL, SMOKE_TRAIN, SmokeRun, run_seqgan, user_env

from seqgan_rl.evaluation.event_files import logged_steps
from seqgan_rl.evaluation.metrics_log import read_records
from seqgan_rl.evaluation.sample_log import read_samples
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import MANIFEST_FILE, load_checkpoint

PHASE_DEADLINE_S = 240.0
"""The longest a run may take to reach the phase a test kills it in."""


def start(*args: object, cwd: Path) -> subprocess.Popen:
    """``seqgan-rl ARGS`` as a process of its own session (its local Ray's processes with it); its stderr
    goes to a file (``kill_when`` shows it), which a pipe nobody reads could not take without blocking."""
    stderr = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([sys.executable, "-m", "seqgan_rl.commands.cli", *map(str, args)], cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=stderr, text=True, start_new_session=True,
                               env=user_env())
    process.stderr_file = stderr  # type: ignore[attr-defined]
    return process


def stderr_of(process: subprocess.Popen) -> str:
    process.stderr_file.seek(0)  # type: ignore[attr-defined]
    return process.stderr_file.read()[-3000:]  # type: ignore[attr-defined]


def kill_when(process: subprocess.Popen, reached: Callable[[], bool], what: str) -> None:
    """SIGKILL ``process`` as soon as ``reached()``; fail if it ended or took too long first."""
    deadline = time.monotonic() + PHASE_DEADLINE_S
    while not reached():
        if process.poll() is not None:
            pytest.fail(f"the run ended (exit {process.returncode}) before {what}: {stderr_of(process)}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run did not reach {what} in {PHASE_DEADLINE_S:g} s: {stderr_of(process)}")
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    try:  # what the run started (a local Ray) goes with it, as on a lost machine
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def evaluated_epochs(run_dir: Path) -> int:
    """How many MLE evaluations ``run_dir``'s metrics.jsonl holds (complete lines)."""
    path = run_dir / "metrics.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def sealed_iterations(run_dir: Path) -> list[int]:
    return sorted(int(path.parent.name.split("-")[1]) for path in (run_dir / "checkpoints").glob(f"*/{MANIFEST_FILE}"))


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if not k.startswith("time/")} for record in records]


def assert_same_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert state.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(state[name], value), name


def assert_logged_once(run_dir: Path, steps: list[int]) -> None:
    """metrics.jsonl, samples.txt and TensorBoard (scalars and text) each hold every step once."""
    step_key = "epoch" if "epoch" in read_records(run_dir / "metrics.jsonl")[0] else "iteration"
    assert [r[step_key] for r in read_records(run_dir / "metrics.jsonl")] == steps
    assert [step for _, _, step, _ in read_samples(run_dir / "samples.txt")] == steps
    for directory in (run_dir / "tensorboard", run_dir / "tensorboard" / "samples"):
        logged = logged_steps(directory)
        assert len(logged) == len(set(logged)) and sorted({step for _, step in logged}) == steps


PRETRAIN = ("pretrain", "--preset", "smoke", "--oracle-params", "small.npz", "--epochs", 12, "--num-train", 3000,
            "--device", "cpu", "--no-progress")


@pytest.mark.slow
def test_pretrain_killed_mid_run_resumes_to_the_same_generator(tmp_path: Path) -> None:
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    reference = run_seqgan(*PRETRAIN, "--run-dir", "full", cwd=tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]

    run = tmp_path / "killed"
    kill_when(start(*PRETRAIN, "--run-dir", run, cwd=tmp_path), lambda: evaluated_epochs(run) >= 4,
              "its fourth MLE evaluation")
    assert not (run / "checkpoint.pt").exists() and (run / "progress.pt").is_file()
    resumed = run_seqgan("pretrain", "--resume", run, "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming the MLE phase" in resumed.stderr

    final, expected = load_checkpoint(run / "checkpoint.pt", "mle"), load_checkpoint(tmp_path / "full" /
                                                                                      "checkpoint.pt", "mle")
    assert_same_state(final["generator"], expected["generator"])
    assert final["optimizer"]["state"].keys() == expected["optimizer"]["state"].keys()
    for key, moments in expected["optimizer"]["state"].items():
        assert_same_state(final["optimizer"]["state"][key], moments)
    assert without_timings(read_records(run / "metrics.jsonl")) == \
        without_timings(read_records(tmp_path / "full" / "metrics.jsonl"))
    assert_logged_once(run, list(range(13)))
    assert not (run / "progress.pt").exists()  # a finished run keeps only its checkpoint
    assert json.loads(resumed.stdout.splitlines()[-1])["nll_oracle"] == \
        read_records(tmp_path / "full" / "metrics.jsonl")[-1]["eval/nll_oracle"]


@pytest.mark.slow
def test_train_killed_in_each_phase_resumes_to_the_uninterrupted_run(smoke_run: SmokeRun, tmp_path: Path) -> None:
    """One run killed three times: during MLE, after MLE (the discriminator pretrained, the first batch not
    yet checkpointed), and after its second adversarial checkpoint; each time ``--resume`` takes it up, and
    the last one finishes it where ``smoke_run`` (never stopped) ended."""
    shutil.copy(smoke_run.root / "small.npz", tmp_path)
    run = tmp_path / "killed"
    resume = ("train", "--resume", run, "--num-cpus", 2, "--no-progress", "--device", "cpu")

    kill_when(start(*SMOKE_TRAIN, "--run-dir", run, cwd=tmp_path), lambda: evaluated_epochs(run / "mle") >= 3,
              "its third MLE evaluation")
    assert not (run / "mle" / "checkpoint.pt").exists() and (run / "config.json").is_file()

    kill_when(start(*resume, cwd=tmp_path), lambda: (run / "metrics.jsonl").is_file() and evaluated_epochs(run) >= 1,
              "its discriminator pretraining")
    assert (run / "mle" / "checkpoint.pt").is_file() and not sealed_iterations(run)

    kill_when(start(*resume, cwd=tmp_path), lambda: 2 in sealed_iterations(run), "its second checkpoint")
    assert not (run / "summary.json").exists()

    final = run_seqgan(*resume, cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-3000:]
    reference = smoke_run.run_dir
    assert_same_state(torch.load(run / "generator.pt", weights_only=True)["generator"],
                      torch.load(reference / "generator.pt", weights_only=True)["generator"])
    for phase in (Path("mle"), Path(".")):
        assert without_timings(read_records(run / phase / "metrics.jsonl")) == \
            without_timings(read_records(reference / phase / "metrics.jsonl"))
    assert_logged_once(run / "mle", list(range(11)))
    assert_logged_once(run, list(range(5)))
    assert sealed_iterations(run) == [3, 4]  # keep_checkpoints=2
