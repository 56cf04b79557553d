"""Shared fixtures: small models, the shared data folder, deterministic torch."""

from __future__ import annotations

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
