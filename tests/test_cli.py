"""The ``seqgan-rl`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from seqgan_rl.data.tables import read_token_table
from seqgan_rl.models.oracle import Oracle


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqgan_rl.commands.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_prepare_oracle_data_then_pretrain(tmp_path: Path, small_oracle: Oracle) -> None:
    small_oracle.save_npz(tmp_path / "small.npz")
    prep = run_cli("prepare-data", "--oracle", "--oracle-params", "small.npz", "--out", "data",
                   "--num-train", 400, "--num-valid", 100, cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr
    assert json.loads(prep.stdout.splitlines()[-1])["num_train"] == 400
    table = read_token_table(tmp_path / "data" / "train.parquet")
    assert table.tokens.shape == (400, small_oracle.seq_len) and table.vocab_size == small_oracle.vocab_size
    assert (tmp_path / "data" / "oracle.npz").is_file()

    train = run_cli("pretrain", "--preset", "smoke", "--data", "data", "--run-dir", "run", "--epochs", 1,
                    "--num-eval-samples", 200, "--no-progress", "--device", "cpu", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    summary = json.loads(train.stdout.splitlines()[-1])
    assert summary["nll_oracle"] > 0 and summary["nll_test"] > 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_prepare_text_data(tmp_path: Path) -> None:
    (tmp_path / "corpus.txt").write_text("a man rides a horse .\na dog runs .\nthe man walks\n" * 10)
    result = run_cli("prepare-data", "--text", "corpus.txt", "--out", "text", "--valid-fraction", 0.2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["num_train"] == 24 and summary["num_valid"] == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pretrain", "--data", "nowhere"], "nowhere: data directory not found"),
        (["prepare-data", "--out", "x"], "exactly one of --text FILE or --oracle"),
        (["prepare-data", "--text", "empty.txt", "--out", "x"], "empty.txt"),
        (["pretrain", "--epochs", "0"], "epochs must be > 0"),
        (["convert-oracle", "missing.pkl", "--out", "o.npz"], "missing.pkl: file not found"),
        (["pretrain", "--device", "cuda:0", "--epochs", "1"], "CUDA is not available"),
    ],
)
def test_bad_input_gets_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty.txt").write_text("\n\n")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
