"""Exact resume and the run's checkpoint directories (``seqgan-rl train --resume``), on a real local Ray.

Three smoke runs drive ``seqgan_rl.commands.cli.main`` in this process (one shared Ray):
4 adversarial batches in one go, and 2 batches then ``--resume`` to 4. The
schedule is chosen so the two differ in everything that must not matter:
``eval_every=3`` and ``checkpoint_every=3`` make the interrupted run evaluate
and checkpoint at batch 2, where the uninterrupted one does neither. The KL
penalty toward the MLE generator is on, with its coefficient adapting after
every batch: the reference generator and the coefficient must come back from
the checkpoint as they were; so must the moving-average baseline of SeqGAN's
gradient, under the log D reward transform of the dense discriminator's discounted
per-prefix rewards, and the dense discriminator itself (its actor's weights, Adam and
RNGs; the Learner's copy of its weights). The Monte Carlo search's exact resume is
``tests/test_kill_resume.py``'s (a real process killed three times).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import SMALL

from seqgan_rl.commands.cli import main
from seqgan_rl.config import TrainConfig
from seqgan_rl.evaluation.event_files import logged_steps
from seqgan_rl.evaluation.sample_log import read_samples
from seqgan_rl.experiment.run_checkpoints import RUN_CHECKPOINT_KIND
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import MANIFEST_FILE, save_checkpoint, seal_checkpoint_dir
from seqgan_rl.storage.files import run_dir_lock

SCHEDULE = ("--preset", "smoke", "--eval-every", "3", "--checkpoint-every", "3", "--seed", "7", "--kl-coef", "0.05",
            "--kl-target", "0.02", "--reward-model", "dense", "--dense-gamma", "0.5", "--reward-transform", "log_d",
            "--baseline", "ema")


FLAT_CONFIG = Path(__file__).resolve().parent / "data" / "flat_run_config.json"
"""The options of ``half`` (``SCHEDULE``, 2 batches) as ``config.json`` held them before they were grouped:
written by that version of ``seqgan-rl``, one flat name per option."""


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("time/")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, ray_local) -> dict[str, Path]:
    """``full``: 4 batches; ``half``: the first 2 (left as they are); ``resumed``: a copy of ``half``,
    given a half-written newer checkpoint and a metrics line cut short (a crash), then resumed to 4."""
    base = tmp_path_factory.mktemp("resume")
    Oracle.random(SMALL, seed=3).save_npz(base / "small.npz")
    save_checkpoint(base / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                             "generator_config": SMALL.__dict__})
    common = (*SCHEDULE, "--oracle-params", str(base / "small.npz"), "--generator-checkpoint", str(base / "mle.pt"),
              "--no-progress", "--device", "cpu")
    assert main(["train", *common, "--run-dir", str(base / "full"), "--batches", "4"]) == 0
    assert main(["train", *common, "--run-dir", str(base / "half"), "--batches", "2"]) == 0
    shutil.copytree(base / "half", base / "resumed")
    # a crash while checkpoint 3 was being written: RLlib's files partly there, no manifest, latest.json not moved
    partial = base / "resumed" / "checkpoints" / "iteration-000003"
    shutil.copytree(base / "half" / "checkpoints" / "iteration-000002", partial)
    (partial / MANIFEST_FILE).unlink()
    (partial / "rng.pt").write_bytes(b"\x80\x02")
    with (base / "resumed" / "metrics.jsonl").open("a") as stream:
        stream.write('{"iteration": 3, "train/mean_q": 0.5')  # the crash cut this record short
    assert main(["train", "--resume", str(base / "resumed"), "--batches", "4", "--no-progress"]) == 0
    return {name: base / name for name in ("full", "half", "resumed")}


def test_resumed_run_is_bit_identical_to_the_uninterrupted_one(runs: dict[str, Path]) -> None:
    full = torch.load(runs["full"] / "generator.pt", weights_only=True)
    resumed = torch.load(runs["resumed"] / "generator.pt", weights_only=True)
    assert full["iteration"] == resumed["iteration"] == 4
    for name, weights in full["generator"].items():
        assert torch.equal(weights, resumed["generator"][name]), name
    coefficients = [r["train/kl_coef"] for r in records(runs["full"]) if "train/kl_coef" in r]
    assert len(set(coefficients)) == len(coefficients) == 4  # the adaptive KL coefficient moved every batch
    # every batch trained and evaluated the same (the evaluation samples depend on (seed, batch) only)
    by_iteration = {r["iteration"]: without_timings(r) for r in records(runs["resumed"])}
    for record in records(runs["full"]):
        expected = without_timings(record)
        assert {k: by_iteration[record["iteration"]].get(k) for k in expected} == expected


def test_resume_takes_the_sealed_checkpoint_and_drops_what_a_crash_left(runs: dict[str, Path]) -> None:
    resumed, half = runs["resumed"], runs["half"]
    history = records(resumed)
    assert [r["iteration"] for r in history] == [0, 1, 2, 3, 4]
    assert history[:3] == records(half)  # kept, not recomputed; the cut line is gone
    assert {"eval/nll_oracle", "train/mean_q"} <= set(history[3])  # batch 3 was trained and evaluated again
    checkpoints = resumed / "checkpoints"
    assert json.loads((checkpoints / "latest.json").read_text())["iteration"] == 4
    # keep_checkpoints=2: the newest two sealed ones (3 sealed again over the half-written one)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iteration-000003", "iteration-000004", "latest.json"]
    manifest = json.loads((checkpoints / "iteration-000004" / MANIFEST_FILE).read_text())
    assert (manifest["format"], manifest["version"], manifest["kind"]) == ("seqgan-rl-checkpoint", 1, "run")
    assert {"generator.pt", "rng.pt"} <= set(manifest["files"]) and manifest["num_records"] == 5
    assert torch.load(resumed / "generator.pt", weights_only=True)["iteration"] == 4


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _set_manifest_version(path: Path) -> None:
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "version": 0}))


def _unversioned_manifest(path: Path) -> None:
    """The state.json of a checkpoint written before checkpoint directories were sealed."""
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({k: manifest[k] for k in ("iteration", "num_records", "phase_s")}))


DAMAGE: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "truncated file": ("checkpoints/iteration-000002/generator.pt", _cut, "bytes, the checkpoint's manifest says"),
    "changed file": ("checkpoints/iteration-000002/rng.pt", _flip_last_byte, "contents differ from the checkpoint"),
    "old version": (f"checkpoints/iteration-000002/{MANIFEST_FILE}", _set_manifest_version,
                    "checkpoint version 0, this seqgan-rl reads version 1"),
    "unversioned": (f"checkpoints/iteration-000002/{MANIFEST_FILE}", _unversioned_manifest,
                    "a checkpoint written before checkpoints had a format version"),
    "lost metrics": ("metrics.jsonl", lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"),
                     "1 records, but the checkpoint at adversarial batch 2 was written after 3"),
    "garbled config": ("config.json", lambda p: p.write_text("not json"), "not a readable run configuration"),
}
"""case: (file of a finished 2-batch run, what happens to it, what the error says besides the file's name)."""


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_resume_refuses_a_damaged_run_naming_the_file(runs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str], case: str) -> None:
    target, damage, message = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    damage(run / target)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqgan-rl train: error: ") and "\n" not in err
    assert f"{run / target}: " in err
    assert message in err


def test_resume_cannot_shorten_a_run_nor_start_over_it(runs: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--batches", "1", "--no-progress"]) == 2
    assert "--batches 1 is fewer than the 2 adversarial batches the run has already done" in capsys.readouterr().err
    assert main(["train", "--preset", "smoke", "--run-dir", str(run), "--no-progress"]) == 2
    assert f"{run} already holds a run; use --resume to continue it" in capsys.readouterr().err
    assert records(run) == records(runs["half"])  # untouched


def generator_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "generator.pt", weights_only=True)["generator"]


def assert_same_generator(run_dir: Path, reference: Path) -> None:
    expected = generator_weights(reference)
    for name, weights in generator_weights(run_dir).items():
        assert torch.equal(weights, expected[name]), name


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(runs: dict[str, Path], tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """``resumed`` keeps the checkpoints of batches 3 and 4; with 4's generator changed, a resume to 4 starts
    from 3 again, redoes batch 4, and ends where the uninterrupted run ended."""
    shutil.copytree(runs["resumed"], tmp_path / "copy")
    run = (tmp_path / "copy").rename(tmp_path / "moved")  # config.json's paths inside the run are relative
    _flip_last_byte(run / "checkpoints" / "iteration-000004" / "generator.pt")
    assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 0
    assert "passing over a damaged checkpoint" in caplog.text and "iteration-000004" in caplog.text
    assert [r["iteration"] for r in records(run)] == [0, 1, 2, 3, 4]
    assert_same_generator(run, runs["full"])
    # batch 4 was logged twice; TensorBoard, as metrics.jsonl and samples.txt, holds each once
    shown = [step for _, _, step, _ in read_samples(run / "samples.txt")]
    assert shown == [step for _, _, step, _ in read_samples(runs["resumed"] / "samples.txt")]  # each evaluation
    for directory, steps in ((run / "tensorboard", [0, 1, 2, 3, 4]), (run / "tensorboard" / "samples", shown)):
        logged = logged_steps(directory)
        assert len(logged) == len(set(logged)) and sorted({step for _, step in logged}) == steps


def test_a_checkpoint_never_sealed_is_not_resumed_from(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run killed while writing its first checkpoint (no manifest: the write never finished) has nothing
    to resume from but its MLE generator: the adversarial phase starts again and ends as if never stopped."""
    shutil.copytree(runs["half"], tmp_path / "copy")
    run = (tmp_path / "copy").rename(tmp_path / "moved")
    (run / "checkpoints" / "iteration-000002" / MANIFEST_FILE).unlink()
    assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 0
    assert [r["iteration"] for r in records(run)] == [0, 1, 2, 3, 4]
    assert_same_generator(run, runs["full"])
    assert [without_timings(r) for r in records(run)] == [without_timings(r) for r in records(runs["full"])]


def test_a_second_process_on_the_run_is_refused_until_the_first_dies(runs: dict[str, Path], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A real process holds the run's lock; ``--resume`` is refused at once (nothing done, the run unchanged);
    once the holder is killed with SIGKILL, nothing holds the run any more."""
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom seqgan_rl.storage.files import run_dir_lock\n"
         "with run_dir_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = records(run)
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 2
        assert f"{run} is in use by another process (pid {holder.pid})" in capsys.readouterr().err
        assert records(run) == before
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with run_dir_lock(run):  # the kernel released the dead process's lock
        pass


class WritesAFile:
    """Unpickled, it creates ``path``: what a pickle from someone else's run directory could do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def test_resume_never_unpickles_what_the_run_directory_holds(runs: dict[str, Path], tmp_path: Path) -> None:
    """Every pickle of RLlib's in the checkpoint replaced by one that writes a file when loaded, the manifest
    sealed again over them (as whoever replaced them could): ``--resume`` restores the run from its
    weights-only files, writes no file, and ends where the uninterrupted run ended."""
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    checkpoint = run / "checkpoints" / "iteration-000002"
    pickles = sorted(checkpoint.rglob("*.pkl"))
    assert pickles  # RLlib's own files, kept for Algorithm.from_checkpoint
    marker = tmp_path / "unpickled"
    for path in pickles:
        path.write_bytes(pickle.dumps(WritesAFile(marker)))
    manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
    seal_checkpoint_dir(checkpoint, RUN_CHECKPOINT_KIND, {k: manifest[k] for k in ("iteration", "num_records",
                                                                                   "phase_s")})
    assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 0
    assert not marker.exists()
    assert_same_generator(run, runs["full"])
    pickle.loads(pickles[0].read_bytes() if pickles[0].exists() else pickle.dumps(WritesAFile(marker)))
    assert marker.exists()  # the planted pickle does what it says when something does unpickle it


def test_resume_existing_continues_the_run_a_directory_holds_and_only_that_run(
        runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A retried job repeats its command: with ``--resume-existing`` the same command continues the run
    (to the same result as the run that never stopped); other options are refused, naming them."""
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    common = [*SCHEDULE, "--oracle-params", str(runs["half"].parent / "small.npz"), "--generator-checkpoint",
              str(runs["half"].parent / "mle.pt"), "--no-progress", "--device", "cpu", "--run-dir", str(run)]
    capsys.readouterr()
    assert main(["train", *common, "--batches", "4", "--resume-existing", "--d-epochs", "2"]) == 2
    assert f"--resume-existing: {run} holds a run started with other options (d_epochs: 1 there, 2 given)" \
        in capsys.readouterr().err
    assert main(["train", *common, "--batches", "4", "--resume-existing"]) == 0
    assert_same_generator(run, runs["full"])
    assert main(["train", *common, "--batches", "2", "--resume-existing"]) == 2  # it cannot shorten the run either


def test_a_run_whose_config_json_predates_the_option_groups_resumes_bit_identically(runs: dict[str, Path],
                                                                                    tmp_path: Path) -> None:
    """A run directory written before the options were grouped holds them flat (``d_steps``, ``discriminator``
    as the CNN's sizes, ``reward`` as shaped or terminal); it resumes with the same options, to the same
    generator as the run that never stopped."""
    run = tmp_path / "run"
    shutil.copytree(runs["half"], run)
    saved = json.loads((run / "config.json").read_text())
    flat = json.loads(FLAT_CONFIG.read_text())
    assert {"d_steps", "reward", "discriminator"} <= set(flat) and "d_steps" not in saved["config"]
    assert TrainConfig.from_dict(flat) == TrainConfig.from_dict(saved["config"])
    (run / "config.json").write_text(json.dumps({**saved, "config": flat}))
    assert main(["train", "--resume", str(run), "--batches", "4", "--no-progress"]) == 0
    assert_same_generator(run, runs["full"])
