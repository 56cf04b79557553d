"""Pre-flight checks (``seqgan_rl.experiment.preflight``): every bad input is refused before the MLE phase.

Each case runs the real command line (in this process, or as a subprocess where
it must start its own local Ray) on real files: a tiny text corpus prepared
with ``prepare-data``, a small oracle and a generator checkpoint. Each asserts
exit status 2 with one line naming the option, file or value, that nothing was
written to the run directory (so no MLE epoch ran: the MLE phase starts by
creating ``mle/``), and that the directory is still usable: the corrected run
into it passes ``resolve_fresh_run`` and ``preflight``, where ``train`` refuses
a run (``test_a_refused_run_directory_then_trains_to_its_end`` runs one to the
end).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import SMALL
from test_bad_input import fails
from test_cli import run_cli

from seqgan_rl.commands.cli import main
from seqgan_rl.config import get_train_preset
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.experiment.preflight import preflight
from seqgan_rl.experiment.run import resolve_fresh_run, run_training
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import save_checkpoint

CAPTIONS = [
    "a man rides a horse on the beach", "a dog runs on the grass", "the cat sits on a red chair",
    "two men walk down the street", "a woman holds an umbrella in the rain", "a bus stops at the corner",
    "a boy throws a ball to the dog", "the train crosses a bridge", "a girl eats a slice of pizza",
    "people sit on a bench in the park", "a horse stands in the field", "a man reads a book on the train",
]
SMOKE = ("--preset", "smoke", "--no-progress", "--device", "cpu")
FITTING_DISCRIMINATOR = {"emb_dim": 16, "filter_sizes": (1, 2, 3, 4), "num_filters": (8, 8, 8, 8)}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A tiny caption corpus: 12 captions twice, one per line (a longest line of 8 words: length 9)."""
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(CAPTIONS * 2) + "\n")
    return path


def prepared(corpus: Path, out: Path, *options: object) -> Path:
    """``seqgan-rl prepare-data --text corpus --out out [options]``, checked to succeed."""
    assert main(["prepare-data", "--text", str(corpus), "--out", str(out), *map(str, options)]) == 0
    return out


def run_cli_env(env: dict[str, str], *args: object, cwd: Path) -> subprocess.CompletedProcess:
    """``test_cli.run_cli`` with an environment of its own."""
    return subprocess.run([sys.executable, "-m", "seqgan_rl.commands.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def nothing_written(run_dir: Path) -> None:
    """The refused run left nothing: no run directory at all, so no ``mle/`` and no ``config.json``."""
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())


def accepted(run_dir: Path, data: Path | None = None, oracle: Path | None = None, **options: Any) -> None:
    """The corrected run into ``run_dir`` passes every check ``train`` makes before its MLE phase (on the
    tests' shared local Ray: nothing is started) and still writes nothing."""
    config = get_train_preset("smoke").with_overrides(**options)
    plan = resolve_fresh_run(config, run_dir.resolve(), data, oracle, None)
    assert preflight(plan) is False
    nothing_written(run_dir)


def test_filters_wider_than_the_sequences(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
                                          ray_local: Any) -> None:
    """``prepare-data --max-len 4``: the smoke discriminator's width-5 filters cannot slide over 4 tokens."""
    data = prepared(corpus, tmp_path / "d4", "--max-len", 4)
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1")
    assert "discriminator {\"emb_dim\": 16, \"filter_sizes\": [1, 2, 3, 5]" in line
    assert f"does not fit the data ({data}: vocabulary" in line and "sequence length 4" in line
    assert "filter size 5 exceeds seq_len 4" in line and "filter_sizes of at most 4" in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data, discriminator=FITTING_DISCRIMINATOR)


@pytest.mark.parametrize(("sizes", "message"), [
    ('{"num_filter": [8]}', "unknown size(s) 'num_filter'; the Discriminator takes emb_dim, filter_sizes, "
                            "num_filters, dropout_keep, l2_reg"),
    ('{"emb_dim": "16"}', 'emb_dim must be an integer, got "16"'),
    ('{"filter_sizes": 3, "num_filters": [8]}', "filter_sizes must be a list of integers, got 3"),
    ('{"l2_reg": NaN}', "l2_reg must be a finite number, got NaN"),
    ('{"filter_sizes": [1, 2], "num_filters": [8]}', "filter_sizes and num_filters must have the same length"),
])
def test_discriminator_sizes_are_the_discriminator_s_own(tmp_path: Path, corpus: Path, sizes: str, message: str,
                                                          capsys: pytest.CaptureFixture[str], ray_local: Any) -> None:
    """``--discriminator`` JSON against ``Discriminator``'s parameters, their types and its own checks."""
    data = prepared(corpus, tmp_path / "d")
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", "--discriminator", sizes)
    assert line.startswith("seqgan-rl train: error: discriminator {") and message in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data, discriminator=FITTING_DISCRIMINATOR)


@pytest.mark.parametrize(("options", "message"), [
    (["--seed", "-1"], "seed must be in [0, 2147483647], got -1"),
    (["--seed", str(2**31)], "seed must be in [0, 2147483647], got 2147483648"),
    (["--mle-seed", "-1"], "seed must be in [0, 2147483647], got -1"),
    (["--mle-data-seed", "-5"], "data_seed must be in [0, 2147483647], got -5"),
])
def test_seeds_outside_numpy_s_range(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
                                     options: list[str], message: str, ray_local: Any) -> None:
    """A negative seed used to fail in RLlib's ``np.random.seed`` after the MLE phase."""
    data = prepared(corpus, tmp_path / "d")
    assert message in fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", *options)
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data, seed=2**31 - 1)


@pytest.mark.parametrize(("options", "message"), [
    (["--d-lr", "nan"], "d_lr must be a finite number, got nan"),
    (["--kl-coef", "inf"], "kl_coef must be a finite number, got inf"),
    (["--mle-lr", "inf"], "lr must be a finite number, got inf"),
    (["--beta", "nan"], "rollout_beta must be a finite number, got nan"),
    (["--discriminator-num-cpus", "inf"], "discriminator_num_cpus must be a finite number, got inf"),
])
def test_non_finite_numbers(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], options: list[str],
                            message: str, ray_local: Any) -> None:
    """nan passes no comparison and inf passes every "> 0": both used to reach the run."""
    data = prepared(corpus, tmp_path / "d")
    assert message in fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", *options)
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data)


def test_a_corpus_without_a_held_out_split(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
                                           ray_local: Any) -> None:
    """``--valid-fraction 0`` and no oracle: nothing to evaluate on (the run used to end in an IndexError)."""
    data = prepared(corpus, tmp_path / "d0", "--valid-fraction", 0)
    for command in ("train", "pretrain"):
        line = fails(capsys, command, *SMOKE, "--data", data, "--run-dir", tmp_path / "r1")
        assert f"{data}: no held-out split (valid.parquet missing or empty) and no oracle.npz" in line
        assert "--valid-fraction above 0" in line
        nothing_written(tmp_path / "r1")
    with pytest.raises(DataError, match="no held-out split"):
        run_training(get_train_preset("smoke"), tmp_path / "r1", data_dir=data, progress=False)
    accepted(tmp_path / "r1", prepared(corpus, tmp_path / "d", "--valid-fraction", 0.2))


def test_a_scorer_that_raises(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str],
                              ray_local: Any) -> None:
    """``json:loads`` imports and is callable, but raises a TypeError on token ids: one line naming it, on a
    corpus and on oracle data (not written before the checks: probed on a few sequences drawn for them)."""
    data = prepared(corpus, tmp_path / "d")
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", "--reward-model",
                 "json:loads")
    assert "reward_model 'json:loads' failed on a probe of 4 real sequences (int64 token ids of shape (4, 9)): " \
           "TypeError: the JSON object must be str, bytes or bytearray, not ndarray" in line
    nothing_written(tmp_path / "r1")
    line = fails(capsys, "train", *SMOKE, "--run-dir", tmp_path / "r1", "--reward-model", "json:loads")
    assert "reward_model 'json:loads' failed on a probe of 4 real sequences (int64 token ids of shape (4, 20))" in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data, reward_model="bleu")
    accepted(tmp_path / "r1", reward_model="bleu")  # oracle data: BLEU built on a temporary copy of the probe


def test_the_ideal_discriminator_on_a_text_corpus(tmp_path: Path, corpus: Path,
                                                  capsys: pytest.CaptureFixture[str], ray_local: Any) -> None:
    """A corpus has no true density: ``ideal`` is one line before any work; on oracle data it is accepted, and
    a transform or baseline the algorithm cannot use is refused the same way."""
    data = prepared(corpus, tmp_path / "d")
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", "--reward-model", "ideal")
    assert "reward_model 'ideal' needs the oracle beside the real data" in line and "text corpus" in line
    nothing_written(tmp_path / "r1")
    line = fails(capsys, "train", *SMOKE, "--run-dir", tmp_path / "r1", "--algo", "ppo", "--baseline", "ema")
    assert "baseline='ema' is for algo=seqgan" in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", reward_model="ideal", reward_transform="log_d", baseline="ema")


def test_an_oracle_start_for_q_needs_an_oracle_of_the_generators_sizes(
        tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], ray_local: Any) -> None:
    """``ratio_start=oracle`` copies the oracle into q: a corpus has none, and an oracle of other sizes does not
    fit q; both are one line before any work; on the default oracle it is accepted."""
    ratio = ("--reward-model", "ratio", "--ratio-start", "oracle")
    data = prepared(corpus, tmp_path / "d")
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", *ratio)
    assert "ratio_start=oracle starts q from the oracle" in line and "synthetic oracle data only" in line
    nothing_written(tmp_path / "r1")
    line = fails(capsys, "train", *SMOKE, "--run-dir", tmp_path / "r1", "--mle-hidden-dim", 8, *ratio)
    assert "ratio_start=oracle: q has the generator's vocab_size/seq_len/emb_dim/hidden_dim/start_token" in line
    assert "[5000, 20, 32, 8, 0]" in line and "[5000, 20, 32, 32, 0]" in line
    nothing_written(tmp_path / "r1")
    line = fails(capsys, "train", *SMOKE, "--run-dir", tmp_path / "r1", "--ratio-start", "oracle")
    assert "ratio_start='oracle' is where the ratio discriminator's q starts; reward_model='discriminator'" in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", reward_model="ratio", ratio_start="oracle")


def test_minibatches_that_do_not_divide_the_batch(tmp_path: Path, corpus: Path,
                                                  capsys: pytest.CaptureFixture[str], ray_local: Any) -> None:
    data = prepared(corpus, tmp_path / "d")
    line = fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1", "--algo", "ppo",
                 "--minibatches", 3)
    assert "minibatches=3 must divide episodes_per_batch=16 (a minibatch holds whole sequences)" in line
    nothing_written(tmp_path / "r1")
    accepted(tmp_path / "r1", data, algo="ppo", minibatches=4)


@pytest.fixture()
def sweep_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A small oracle and a generator checkpoint of its sizes, for ``tune``."""
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                                  "generator_config": SMALL.__dict__})
    return tmp_path / "small.npz", tmp_path / "mle.pt"


@pytest.mark.parametrize(("grid", "message"), [
    (["--grid", "rollout_beta=0.5,1.5"], "--grid rollout_beta=1.5: rollout_beta must be in [0, 1], got 1.5"),
    (["--grid", "seed=1,-1"], "--grid seed=-1: seed must be in [0, 2147483647], got -1"),
    (["--grid", "d_lr=nan"], "--grid d_lr=nan: d_lr must be a finite number, got nan"),
    (["--algo", "ppo", "--grid", "minibatches=4,3"],
     "--grid minibatches=3: minibatches=3 must divide episodes_per_batch=16"),
    (["--grid", "algo=seqgan,ppo", "--grid", "episodes_per_batch=16,18"],
     "--grid algo=ppo, episodes_per_batch=18: minibatches=4 must divide episodes_per_batch=18"),
    (["--grid", "reward_model=discriminator,json:loads"], "--grid reward_model=json:loads: reward_model "
                                                          "'json:loads' failed on a probe of 4 real sequences"),
])
def test_tune_grid_values_are_checked_before_any_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       sweep_inputs: tuple[Path, Path], grid: list[str],
                                                       message: str) -> None:
    """A value no trial can take used to fail every trial it is in, found only when ``get_best_result`` raised."""
    oracle, checkpoint = sweep_inputs
    line = fails(capsys, "tune", "--preset", "smoke", "--generator-checkpoint", checkpoint, "--oracle-params", oracle,
                 "--storage-path", tmp_path / "sweep", *grid)
    assert message in line
    nothing_written(tmp_path / "sweep")


def test_pretrain_refuses_a_directory_in_use(tmp_path: Path, corpus: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``pretrain`` has no --resume: it refuses a non-empty --run-dir (as ``train`` refuses a run's) instead of
    overwriting it; a refused start leaves an empty or absent one, which the corrected command takes."""
    data = prepared(corpus, tmp_path / "d")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "checkpoint.pt").write_bytes(b"an earlier run")
    line = fails(capsys, "pretrain", *SMOKE, "--data", data, "--run-dir", tmp_path / "used")
    assert f"--run-dir {tmp_path / 'used'} is not empty (it holds checkpoint.pt)" in line
    assert (tmp_path / "used" / "checkpoint.pt").read_bytes() == b"an earlier run"
    assert "lr must be > 0" in fails(capsys, "pretrain", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1",
                                     "--lr", "-1")
    nothing_written(tmp_path / "r1")
    (tmp_path / "r1").mkdir()  # an empty directory is a new run's
    capsys.readouterr()
    assert main(["pretrain", *SMOKE, "--data", str(data), "--run-dir", str(tmp_path / "r1"), "--epochs", "1"]) == 0
    assert (tmp_path / "r1" / "checkpoint.pt").is_file()
    assert "is not empty" in fails(capsys, "pretrain", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1")


def test_python_api_raises_the_same_errors(tmp_path: Path, corpus: Path) -> None:
    """``run_training`` refuses the same inputs with ``ConfigError`` / ``DataError`` (no Ray needed)."""
    data = prepared(corpus, tmp_path / "d4", "--max-len", 4)
    with pytest.raises(ConfigError, match="filter size 5 exceeds seq_len 4"):
        run_training(get_train_preset("smoke"), tmp_path / "r1", data_dir=data, progress=False)
    with pytest.raises(ConfigError, match="unknown size"):
        run_training(get_train_preset("smoke").with_overrides(discriminator={"num_filter": (8,)}), tmp_path / "r1",
                     data_dir=data, progress=False)
    nothing_written(tmp_path / "r1")


# ------------------------------------------------------------------ a fresh local Ray: subprocesses


@pytest.mark.slow
@pytest.mark.parametrize(("options", "message"), [
    (["--preset", "paper"], "they need 0.5 GPUs (it has 0)"),
    (["--preset", "smoke", "--num-cpus", "1", "--num-mc-workers", "2"], "they need 3 CPUs (it has 1)"),
], ids=["paper-preset-without-a-gpu", "more-cpus-than-the-local-ray"])
def test_actors_the_local_ray_cannot_hold_are_refused_before_the_mle_phase(tmp_path: Path, options: list[str],
                                                                           message: str) -> None:
    """``--preset paper`` asks for half a GPU for its discriminator: on a host without one, the local Ray can
    never start it. The check used to run after the MLE phase (120 epochs of it for the paper preset)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a CPU-only host, whatever this machine has
    result = run_cli_env(env, "train", *options, "--run-dir", "r1", "--no-progress", "--device", "cpu", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "seqgan-rl train: error: the local Ray cannot start this run's actors" in result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    nothing_written(tmp_path / "r1")


@pytest.mark.slow
def test_a_tune_trial_the_local_ray_cannot_hold(tmp_path: Path, sweep_inputs: tuple[Path, Path]) -> None:
    oracle, checkpoint = sweep_inputs
    result = run_cli("tune", "--preset", "smoke", "--generator-checkpoint", checkpoint, "--oracle-params", oracle,
                     "--grid", "rollout_beta=0.5", "--num-cpus", 1, "--storage-path", "sweep", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "seqgan-rl tune: error: the Ray cluster can never start a trial's reservation (its driver, " \
           "discriminator actor and 0 rollout worker(s)): they need 2 CPUs and its 1 node(s) have 1" in result.stderr
    nothing_written(tmp_path / "sweep")


@pytest.mark.slow
def test_a_refused_run_directory_then_trains_to_its_end(tmp_path: Path, corpus: Path,
                                                        capsys: pytest.CaptureFixture[str], ray_local: Any) -> None:
    """The directory of a refused start is the corrected run's: it trains into it to its summary."""
    data = prepared(corpus, tmp_path / "d4", "--max-len", 4)
    fails(capsys, "train", *SMOKE, "--data", data, "--run-dir", tmp_path / "r1")
    config = get_train_preset("smoke").with_overrides(discriminator=FITTING_DISCRIMINATOR, adversarial_batches=1)
    summary = run_training(config, tmp_path / "r1", data_dir=data, progress=False)
    assert (tmp_path / "r1" / "summary.json").is_file() and summary["nll_test_final"] > 0

