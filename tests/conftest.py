"""Shared fixtures: small models, the shared data folder, deterministic torch."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.models.oracle import Oracle, default_data_dir

SLOW_TEST_TIMEOUT_S = 900
"""Deadline of a test marked slow (a whole smoke run, a two-node cluster); others get setup.cfg's ``timeout``."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


SMALL = GeneratorConfig(vocab_size=97, seq_len=8, emb_dim=16, hidden_dim=16)
"""A model small enough for exhaustive checks; vocab not a multiple of the sampling block."""


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = default_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (read-only inputs not in this checkout)")
    return path


@pytest.fixture(scope="session")
def original_oracle_path(shared_data_dir: Path) -> Path:
    path = shared_data_dir / "oracle_lstm_params.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the original release's oracle is not ours to ship")
    return path


@pytest.fixture()
def small_oracle() -> Oracle:
    return Oracle.random(SMALL, seed=3)


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[str, str]:
    """Real data (oracle samples) and an MLE checkpoint (a fresh generator) for SMALL."""
    from seqgan_rl.data.tables import write_token_table
    from seqgan_rl.models.generator import Generator
    from seqgan_rl.storage.checkpoint import save_checkpoint

    oracle = Oracle.random(SMALL, seed=3)
    write_token_table(tmp_path / "real.parquet", oracle.sample(300).numpy(), SMALL.vocab_size)
    torch.manual_seed(1)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                                  "generator_config": SMALL.__dict__})
    return str(tmp_path / "real.parquet"), str(tmp_path / "mle.pt")


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs, no dashboard) shared by every test that needs one.

    ``address="local"`` always starts a new instance: never one a multi-node test
    (or anything else on the machine) left behind in /tmp/ray."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


SMOKE_TRAIN: tuple[object, ...] = (
    "train", "--preset", "smoke", "--oracle-params", "small.npz", "--mle-epochs", 10, "--mle-num-train", 3000,
    "--batches", 4, "--checkpoint-every", 1, "--num-mc-workers", 1, "--mc-worker-num-cpus", 0.5, "--num-cpus", 2,
    "--no-progress", "--device", "cpu")
"""A whole ``seqgan-rl train`` run in a few seconds per phase (run from a directory holding ``small.npz``):
MLE with an evaluation per epoch, Monte Carlo rollouts on a worker actor, a checkpoint per batch."""


def user_env() -> dict[str, str]:
    """The environment of a user's shell: an earlier ``ray.init`` in this process set ``RAY_AUTH_MODE``."""
    return {name: value for name, value in os.environ.items() if name != "RAY_AUTH_MODE"}


def run_seqgan(*args: object, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``seqgan-rl ARGS`` as a user runs it: a process of its own (its own local Ray), output captured."""
    return subprocess.run([sys.executable, "-m", "seqgan_rl.commands.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=user_env())


@dataclass(frozen=True)
class SmokeRun:
    root: Path
    """Holds ``small.npz`` (the oracle) and ``run/``."""
    result: subprocess.CompletedProcess

    @property
    def run_dir(self) -> Path:
        return self.root / "run"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One uninterrupted ``SMOKE_TRAIN`` run, shared by the tests that read what a whole run writes (its
    metrics and TensorBoard, its terminal, its checkpoints) and that compare a killed and resumed run to it."""
    root = tmp_path_factory.mktemp("smoke")
    Oracle.random(SMALL, seed=3).save_npz(root / "small.npz")
    result = run_seqgan(*SMOKE_TRAIN, "--run-dir", "run", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return SmokeRun(root, result)
