"""``seqgan-rl train`` end to end (a real subprocess with its own local Ray), ``--resume`` and ``sample``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL
from test_cli import run_cli

from seqgan_rl.data.tables import read_token_table
from seqgan_rl.models.oracle import Oracle


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_smoke_train_writes_metrics_and_checkpoint_then_resume_continues(tmp_path: Path) -> None:
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    common = ("--num-cpus", 2, "--no-progress", "--device", "cpu")
    first = run_cli("train", "--preset", "smoke", "--oracle-params", "small.npz", "--run-dir", "run",
                    "--batches", 2, "--checkpoint-every", 1, *common, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = json.loads(first.stdout.splitlines()[-1])
    run = tmp_path / "run"
    assert summary["preset"] == "smoke" and summary["adversarial_batches"] == 2
    assert [r["iteration"] for r in records(run)] == [0, 1, 2]
    first_records = records(run)
    assert {"eval/nll_oracle", "eval/nll_test", "train/d_accuracy"} <= set(first_records[0])
    assert {"train/mean_q", "train/d_accuracy", "time/monte_carlo_q_s", "time/d_steps_s", "time/sample_s",
            "eval/nll_oracle"} <= set(first_records[1])
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["iteration"] == 2
    assert (run / "curves.png").stat().st_size > 0 and (run / "mle" / "checkpoint.pt").is_file()
    assert any((run / "tensorboard").glob("events.out.tfevents.*"))
    for key in ("mle_s", "d_pretrain_s", "adversarial_s"):
        assert summary[key] > 0

    resumed = run_cli("train", "--resume", "run", "--batches", 4, *common, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = records(run)
    assert [r["iteration"] for r in after] == [0, 1, 2, 3, 4]
    assert after[:3] == first_records  # history kept, not recomputed
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["iteration"] == 4
    assert "D pretrain" not in resumed.stderr  # the discriminator was not pretrained again

    sample = run_cli("sample", "--checkpoint", "run", "--n", 50, "--out", "samples.parquet", cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr[-2000:]
    table = read_token_table(tmp_path / "samples.parquet")
    assert table.tokens.shape == (50, SMALL.seq_len) and table.vocab_size == SMALL.vocab_size
    text = run_cli("sample", "--checkpoint", "run/generator.pt", "--n", 5, "--out", "samples.txt", cwd=tmp_path)
    assert text.returncode == 0, text.stderr[-2000:]
    lines = (tmp_path / "samples.txt").read_text().splitlines()
    ids = np.array([line.split() for line in lines], dtype=int)  # no vocabulary: token ids
    assert ids.shape == (5, SMALL.seq_len) and ids.min() >= 0 and ids.max() < SMALL.vocab_size


def test_resume_without_a_run_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("train", "--resume", "nowhere", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2
    assert "nowhere: not a training run directory" in result.stderr


def test_unknown_preset_and_bad_override_are_refused(tmp_path: Path) -> None:
    result = run_cli("train", "--preset", "smoke", "--batches", 0, "--no-progress", cwd=tmp_path)
    assert result.returncode == 2 and "adversarial_batches must be > 0" in result.stderr
