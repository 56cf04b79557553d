"""``seqgan-rl tune``: a real Ray Tune grid of two smoke trials, NLL-oracle reported per evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SMALL
from test_cli import run_cli

from seqgan_rl.errors import ConfigError
from seqgan_rl.experiment.tune import parse_grid
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import save_checkpoint


@pytest.mark.slow
def test_tune_grid_reports_nll_oracle_for_every_trial(tmp_path: Path) -> None:
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                                  "generator_config": SMALL.__dict__})
    result = run_cli("tune", "--generator-checkpoint", "mle.pt", "--oracle-params", "small.npz", "--preset", "smoke",
                     "--batches", 2, "--grid", "rollout_beta=0.5,0.9", "--storage-path", "sweep", "--num-cpus", 2,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    assert sorted(t["config"]["rollout_beta"] for t in summary["trials"]) == [0.5, 0.9]
    assert all(t["nll_oracle"] > 0 for t in summary["trials"])
    assert summary["best_nll_oracle"] == min(t["nll_oracle"] for t in summary["trials"])
    assert len(list((tmp_path / "sweep" / "seqgan-tune").glob("*/run/metrics.jsonl"))) == 2


def test_grid_values_are_typed_and_checked() -> None:
    assert parse_grid(["rollout_beta=0.6,0.8", "num_rollouts=8,16", "algo=seqgan,ppo"]) == {
        "rollout_beta": [0.6, 0.8], "num_rollouts": [8, 16], "algo": ["seqgan", "ppo"]}
    with pytest.raises(ConfigError, match="FIELD=V1"):
        parse_grid(["no_such_field=1"])
    with pytest.raises(ConfigError, match="FIELD=V1"):  # resources are the trial's reservation, not a knob
        parse_grid(["num_mc_workers=0,2"])
    with pytest.raises(ConfigError, match="num_rollouts=many"):
        parse_grid(["num_rollouts=many"])
