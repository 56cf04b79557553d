"""Every metric the documentation names exists where it says: in a real run's metrics.jsonl and TensorBoard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SmokeRun

from seqgan_rl.commands.cli import main
from seqgan_rl.evaluation.event_files import logged_steps

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METRIC = re.compile(r"(?<![\w./-])((?:eval|train|time)/[a-z0-9_]+)\b")
OLD_NAMES = re.compile(r"(?<![\w./-])((?:learners|discriminator|timers)/[a-z0-9_]+)\b")


def documented_metrics() -> dict[str, list[str]]:
    """metric name → the doc files that name it."""
    found: dict[str, list[str]] = {}
    for path in DOCS:
        for name in METRIC.findall(path.read_text()):
            found.setdefault(name, []).append(path.name)
    return found


def tensorboard_tags(directory: Path) -> set[str]:
    """The scalar tags of every TensorBoard event file in ``directory``."""
    return {tag for tag, _ in logged_steps(directory)}


def test_the_docs_name_metrics_only_by_their_logged_names() -> None:
    assert len(documented_metrics()) >= 10  # the docs do describe the metrics
    stale = {name for path in DOCS for name in OLD_NAMES.findall(path.read_text())}
    assert not stale, f"RLlib result keys instead of metrics.jsonl names: {sorted(stale)}"


@pytest.mark.slow
def test_every_documented_metric_is_logged_by_a_smoke_run(smoke_run: SmokeRun, tmp_path: Path, ray_local) -> None:
    # an actor-critic algorithm with the KL penalty logs its own metrics (value warm-up, explained variance), and
    # the dense discriminator's run its own (no rollout workers): both run by the CLI's main on the tests' Ray
    common = ["train", "--preset", "smoke", "--oracle-params", str(smoke_run.root / "small.npz"), "--batches", "1",
              "--generator-checkpoint", str(smoke_run.run_dir / "mle" / "checkpoint.pt"), "--no-progress",
              "--device", "cpu"]
    assert main([*common, "--run-dir", str(tmp_path / "ppo"), "--algo", "ppo", "--kl-coef", "0.05",
                 "--value-warmup-steps", "2"]) == 0
    assert main([*common, "--run-dir", str(tmp_path / "dense"), "--reward-model", "dense"]) == 0
    logged = set()
    for run in (smoke_run.run_dir, tmp_path / "ppo", tmp_path / "dense"):
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        keys = {key for record in records for key in record} - {"iteration"}
        assert tensorboard_tags(run / "tensorboard") == keys  # TensorBoard gets every key, only those
        logged |= keys
    documented = documented_metrics()
    missing = {name: files for name, files in documented.items() if name not in logged}
    assert not missing, f"documented but never logged: {missing}"
    assert {"train/mc_worker_restarts", "train/discriminator_restarts"} <= logged
