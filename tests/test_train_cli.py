"""``seqgan-rl train`` end to end (``smoke_run``: a real subprocess with its own local Ray), ``--resume``'s
refusals and ``sample``; a killed run's resume: tests/test_kill_resume.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL, SmokeRun
from test_cli import run_cli

from seqgan_rl.data.tables import read_token_table


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_smoke_train_writes_metrics_checkpoints_and_a_generator_to_sample(smoke_run: SmokeRun,
                                                                         tmp_path: Path) -> None:
    summary = json.loads(smoke_run.result.stdout.splitlines()[-1])
    run = smoke_run.run_dir
    assert summary["preset"] == "smoke" and summary["adversarial_batches"] == 4
    history = records(run)
    assert [r["iteration"] for r in history] == [0, 1, 2, 3, 4]
    assert {"eval/nll_oracle", "eval/nll_test", "train/d_accuracy"} <= set(history[0])
    assert {"train/mean_q", "train/d_accuracy", "time/monte_carlo_q_s", "time/d_steps_s", "time/sample_s",
            "eval/nll_oracle"} <= set(history[1])
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["iteration"] == 4
    assert (run / "curves.png").stat().st_size > 0 and (run / "mle" / "checkpoint.pt").is_file()
    assert any((run / "tensorboard").glob("events.out.tfevents.*"))
    for key in ("mle_s", "d_pretrain_s", "adversarial_s"):
        assert summary[key] > 0
    # the run's own files by relative paths (a moved run resumes): its data, with the oracle sampled for it
    saved = json.loads((run / "config.json").read_text())
    assert (saved["data_dir"], saved["oracle_params"], saved["mle_checkpoint"]) == ("data", None, None)
    assert (run / "data" / "oracle.npz").is_file()

    sample = run_cli("sample", "--checkpoint", run, "--n", 50, "--out", tmp_path / "samples.parquet",
                     cwd=smoke_run.root)
    assert sample.returncode == 0, sample.stderr[-2000:]
    table = read_token_table(tmp_path / "samples.parquet")
    assert table.tokens.shape == (50, SMALL.seq_len) and table.vocab_size == SMALL.vocab_size
    text = run_cli("sample", "--checkpoint", run / "generator.pt", "--n", 5, "--out", tmp_path / "samples.txt",
                   cwd=smoke_run.root)
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
