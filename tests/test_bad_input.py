"""Bad input through the command line and the Python API: one clear line, exit status 2, no traceback.

The CLI is driven in this process (``seqgan_rl.commands.cli.main``) except where a case
depends on starting or joining Ray, which this test process may already have
done (``--address``, the local Ray's resources): those run as a subprocess.
Cases already covered elsewhere are listed in README.md ("Bad input and
failures") with their tests and not repeated here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from conftest import SMALL
from test_cli import run_cli
from test_data import VALID_METADATA, write_raw

from seqgan_rl.commands.cli import main
from seqgan_rl.config import TrainConfig
from seqgan_rl.data.tables import write_token_table
from seqgan_rl.errors import ConfigError, DataError, SeqGANError
from seqgan_rl.experiment.ray_session import check_reachable
from seqgan_rl.experiment.run import run_training
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.rllib.with_seqgan import build_config
from seqgan_rl.storage.checkpoint import save_checkpoint

GOOD_TOKENS = np.random.default_rng(0).integers(0, SMALL.vocab_size, size=(64, SMALL.seq_len))


def fails(capsys: pytest.CaptureFixture[str], *argv: object) -> str:
    """Run the CLI, check exit status 2 and exactly one error line without a traceback; return the line."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("seqgan-rl ")]
    assert len(lines) == 1 and ": error: " in lines[0], err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture()
def mle_checkpoint(tmp_path: Path) -> Path:
    """A generator checkpoint of the SMALL sizes (vocabulary 97, length 8)."""
    return save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                                         "generator_config": SMALL.__dict__})


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(2048))


def _truncated(path: Path) -> None:
    write_token_table(path, GOOD_TOKENS, SMALL.vocab_size)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _strings(path: Path) -> None:
    write_raw(path, pa.array([["a", "b", "c"]]))


def _id_beyond_vocabulary(path: Path) -> None:
    write_raw(path, pa.array([[1, 2, 3], [4, 10, 6]]), VALID_METADATA)  # vocab_size 10


def _empty(path: Path) -> None:
    write_raw(path, pa.array([], type=pa.list_(pa.int32())))


TRAIN_DATA = {
    "random bytes": (_random_bytes, "train.parquet: not a Parquet file or the file is corrupt"),
    "truncated": (_truncated, "train.parquet: not a Parquet file or the file is corrupt"),
    "wrong column type": (_strings, "column 'tokens' has type list<element: string>"),
    "token id >= vocabulary": (_id_beyond_vocabulary,
                               "row 1 (0-based), position 1 of column 'tokens': token id 10 is outside [0, 10)"),
    "empty": (_empty, "train.parquet: no sequences"),
}
"""case: (how train.parquet is written, what the error says)."""


@pytest.mark.parametrize("command", ["pretrain", "train"])
@pytest.mark.parametrize("case", sorted(TRAIN_DATA))
def test_bad_training_data(tmp_path: Path, capsys: pytest.CaptureFixture[str], mle_checkpoint: Path,
                           command: str, case: str) -> None:
    write, message = TRAIN_DATA[case]
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "train.parquet")
    extra = ("--generator-checkpoint", mle_checkpoint) if command == "train" else ()
    line = fails(capsys, command, "--preset", "smoke", "--data", tmp_path / "data", "--run-dir", tmp_path / "run",
                 "--device", "cpu", "--no-progress", *extra)
    assert message in line and str(tmp_path / "data") in line
    if command == "train":
        assert not (tmp_path / "run" / "config.json").exists()  # nothing that --resume would take up


def test_held_out_split_of_another_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    write_token_table(tmp_path / "data" / "train.parquet", GOOD_TOKENS, SMALL.vocab_size)
    write_token_table(tmp_path / "data" / "valid.parquet", GOOD_TOKENS[:, :5], SMALL.vocab_size)
    line = fails(capsys, "pretrain", "--preset", "smoke", "--data", tmp_path / "data", "--run-dir", tmp_path / "run",
                 "--device", "cpu", "--no-progress")
    assert "valid.parquet: table sequence length 5 (seqgan_rl.seq_len) differs from the expected sequence length 8" \
        in line


@pytest.mark.parametrize("field", ["vocab_size", "seq_len"])
def test_generator_that_does_not_fit_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              field: str) -> None:
    (tmp_path / "data").mkdir()
    write_token_table(tmp_path / "data" / "train.parquet", GOOD_TOKENS, SMALL.vocab_size)
    other = GeneratorConfig(**{**SMALL.__dict__, field: getattr(SMALL, field) + 3})
    save_checkpoint(tmp_path / "other.pt", "mle", {"generator": Generator(other).state_dict(),
                                                   "generator_config": other.__dict__})
    line = fails(capsys, "train", "--preset", "smoke", "--data", tmp_path / "data", "--run-dir", tmp_path / "run",
                 "--generator-checkpoint", tmp_path / "other.pt", "--device", "cpu", "--no-progress")
    assert f"other.pt: generator vocabulary/length {other.vocab_size}/{other.seq_len} does not match the data's " \
           f"{SMALL.vocab_size}/{SMALL.seq_len}" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_oracle_that_does_not_fit_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    write_token_table(tmp_path / "data" / "train.parquet", GOOD_TOKENS, SMALL.vocab_size)
    Oracle.random(GeneratorConfig(**{**SMALL.__dict__, "vocab_size": 50}), seed=1).save_npz(
        tmp_path / "data" / "oracle.npz")
    line = fails(capsys, "pretrain", "--preset", "smoke", "--data", tmp_path / "data", "--run-dir", tmp_path / "run",
                 "--device", "cpu", "--no-progress")
    assert "oracle.npz: oracle vocabulary 50 / length 8 does not match" in line and "(97 / 8)" in line


TRAIN_OPTIONS = [
    (["--batches", "-1"], "adversarial_batches must be > 0, got -1"),
    (["--num-rollouts", "-1"], "num_rollouts must be > 0, got -1"),
    (["--num-rollouts", "0"], "num_rollouts must be > 0, got 0"),
    (["--d-steps", "-1"], "d_steps must be >= 0, got -1"),
    (["--d-epochs", "0"], "d_epochs must be > 0, got 0"),
    (["--d-pretrain-rounds", "-1"], "d_pretrain_rounds must be >= 0, got -1"),
    (["--num-mc-workers", "-1"], "num_mc_workers must be >= 0, got -1"),
    (["--mc-worker-num-cpus", "-1"], "mc_worker_num_cpus must be >= 0, got -1"),
    (["--discriminator-num-gpus", "-0.5"], "discriminator_num_gpus must be >= 0, got -0.5"),
    (["--eval-every", "0"], "eval_every must be > 0, got 0"),
    (["--checkpoint-every", "0"], "checkpoint_every must be > 0, got 0"),
    (["--mle-epochs", "0"], "epochs must be > 0, got 0"),
    (["--beta", "1.5"], "rollout_beta must be in [0, 1], got 1.5"),
    (["--num-cpus", "0"], "--num-cpus must be > 0, got 0"),
]


@pytest.mark.parametrize(("options", "message"), TRAIN_OPTIONS, ids=[o[0][0] + o[0][1] for o in TRAIN_OPTIONS])
def test_impossible_train_sizes(tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
                                message: str) -> None:
    line = fails(capsys, "train", "--preset", "smoke", "--run-dir", tmp_path / "run", "--no-progress", *options)
    assert message in line
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize(("argv", "message"), [
    (["pretrain", "--preset", "smoke", "--batch-size", "0"], "batch_size must be > 0, got 0"),
    (["pretrain", "--preset", "smoke", "--lr", "-0.1"], "lr must be > 0, got -0.1"),
    (["prepare-data", "--oracle", "--num-train", "0", "--out", "x"], "--num-train must be > 0"),
    (["sample", "--checkpoint", "none.pt", "--out", "x.txt", "--n", "0"], "--n must be > 0, got 0"),
    (["sample", "--checkpoint", "none.pt", "--out", "x.txt", "--temperature", "0"], "--temperature must be > 0"),
])
def test_impossible_sizes_of_other_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in fails(capsys, *argv)


def test_unknown_algorithm(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--algo", "foo"])
    assert exit_info.value.code == 2
    assert "argument --algo: invalid choice: 'foo'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"unknown algorithm 'foo'; known: seqgan, appo, impala, ppo"):
        build_config("foo")
    with pytest.raises(ConfigError, match=r"unknown algorithm 'foo'; known: seqgan, ppo, appo, impala"):
        TrainConfig().with_overrides(algo="foo")


@pytest.mark.parametrize("argv", [
    ["train", "--preset", "smoke", "--generator-checkpoint", "nope.pt", "--run-dir", "run", "--no-progress"],
    ["sample", "--checkpoint", "nope.pt", "--out", "x.txt", "--device", "cpu"],
    ["evaluate", "--checkpoint", "nope.pt", "--device", "cpu"],
], ids=["train", "sample", "evaluate"])
def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                            argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert "nope.pt: checkpoint not found" in fails(capsys, *argv)
    assert sorted(tmp_path.iterdir()) == []  # refused before any work


def _old_version(path: Path) -> None:
    torch.save({"format": "seqgan-rl-checkpoint", "version": 0, "kind": "mle"}, path)


def _other_kind(path: Path) -> None:
    save_checkpoint(path, "rng", {"torch": torch.get_rng_state()})


FOREIGN_CHECKPOINTS = {
    "plain torch.save": (lambda p: torch.save({"a": 1}, p), "not a seqgan-rl checkpoint (no format tag"),
    "random bytes": (_random_bytes, "not a readable checkpoint: truncated, corrupt or not a seqgan-rl file"),
    "empty file": (lambda p: p.write_bytes(b""), "not a readable checkpoint: truncated, corrupt"),
    "pickled object": (lambda p: torch.save({"x": np.zeros(3)}, p),
                       "not a readable checkpoint: truncated, corrupt or not a seqgan-rl file (UnpicklingError: "
                       "Unsupported global"),
    "old version": (_old_version, "checkpoint version 0, this seqgan-rl reads version 1"),
    "another kind": (_other_kind, "a 'rng' checkpoint, expected 'mle' or 'generator'"),
}
"""case: (how the file is written, what the error says after the file's name)."""


@pytest.mark.parametrize("command", ["sample", "train"])
@pytest.mark.parametrize("case", sorted(FOREIGN_CHECKPOINTS))
def test_foreign_or_old_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
                                   case: str) -> None:
    write, message = FOREIGN_CHECKPOINTS[case]
    path = tmp_path / "model.pt"
    write(path)
    if command == "sample":
        line = fails(capsys, "sample", "--checkpoint", path, "--out", tmp_path / "x.txt", "--device", "cpu")
    else:
        line = fails(capsys, "train", "--preset", "smoke", "--generator-checkpoint", path, "--run-dir",
                     tmp_path / "run", "--no-progress")
    assert f"{path}: {message}" in line


def test_resume_refuses_options_it_would_ignore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "train", "--resume", tmp_path, "--batches", "8", "--num-rollouts", "8", "--preset", "smoke",
                 "--no-progress")
    assert f"--resume continues {tmp_path} with its own configuration and data; --preset, --num-rollouts cannot " \
           "change them (only --batches may be raised)" in line


def test_python_api_raises_seqgan_errors(tmp_path: Path) -> None:
    """What the CLI turns into one line is a ``SeqGANError`` subclass for library callers."""
    config = TrainConfig()
    with pytest.raises(ConfigError, match="num_rollouts must be > 0"):
        config.with_overrides(num_rollouts=0)
    with pytest.raises(DataError, match="nope.pt: checkpoint not found"):
        run_training(config, tmp_path / "run", generator_checkpoint=tmp_path / "nope.pt")
    with pytest.raises(DataError, match="not a training run directory"):
        run_training(config, tmp_path / "elsewhere", resume=True)
    with pytest.raises(ConfigError, match="--num-cpus must be > 0"):
        run_training(config, tmp_path / "run", num_cpus=-1)
    assert issubclass(ConfigError, SeqGANError) and issubclass(DataError, SeqGANError)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:1", "cannot reach the Ray cluster at '127.0.0.1:1': Connection refused"),
    ("ray://127.0.0.1:1", "cannot reach the Ray cluster at 'ray://127.0.0.1:1': Connection refused"),
    ("no-port-here", "Ray address 'no-port-here' is not HOST:PORT"),
])
def test_unreachable_cluster_address_python_api(address: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_reachable(address)


@pytest.mark.slow
def test_unreachable_cluster_address_fails_fast(tmp_path: Path, mle_checkpoint: Path) -> None:
    """``ray.init`` alone would retry this address for many minutes; the CLI gives up at once."""
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    train = run_cli("train", "--preset", "smoke", "--address", "127.0.0.1:1", "--generator-checkpoint", mle_checkpoint,
                    "--oracle-params", "small.npz", "--run-dir", "run", "--no-progress", cwd=tmp_path)
    assert train.returncode == 2, train.stderr[-2000:]
    assert "seqgan-rl train: error: cannot reach the Ray cluster at '127.0.0.1:1': Connection refused" in train.stderr
    assert not (tmp_path / "run").exists()
    tune = run_cli("tune", "--address", "127.0.0.1:1", "--generator-checkpoint", mle_checkpoint, "--grid",
                   "rollout_beta=0.5", cwd=tmp_path)
    assert tune.returncode == 2 and "seqgan-rl tune: error: cannot reach the Ray cluster" in tune.stderr


@pytest.mark.slow
def test_actors_that_cannot_fit_the_local_ray(tmp_path: Path, mle_checkpoint: Path) -> None:
    """A local Ray never gains CPUs: a run needing more would wait for them forever, so it is refused."""
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    result = run_cli("train", "--preset", "smoke", "--num-cpus", 1, "--num-mc-workers", 2, "--generator-checkpoint",
                     mle_checkpoint, "--oracle-params", "small.npz", "--run-dir", "run", "--no-progress",
                     "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "seqgan-rl train: error: the local Ray cannot start this run's actors (the discriminator and 2 rollout " \
           "worker(s)): they need 3 CPUs (it has 1)" in result.stderr
