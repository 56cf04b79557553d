"""The metrics log of a run: ``metrics.jsonl``, TensorBoard, and a PNG of the curves.

Metrics of a run go to ``metrics.jsonl`` in the run directory (one JSON object
per evaluation, keys named by prefix: ``train/``, ``eval/``, ``time/``), the
same records to TensorBoard, and a PNG of the curves at the end.

A resumed run continues from a checkpoint taken at some step: ``restart_logs``
first cuts all three logs back to that step (metrics.jsonl to the records the
checkpoint follows, samples.txt's blocks and every TensorBoard event after the
step), so no step appears twice once the run logs it again.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqgan_rl.errors import DataError
from seqgan_rl.evaluation.event_files import EventWriter, trim_event_files
from seqgan_rl.evaluation.sample_log import SAMPLES_FILE, trim_samples
from seqgan_rl.storage.files import atomic_path

if TYPE_CHECKING:
    from seqgan_rl.evaluation.sample_log import SampleLog

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricsLog:
    """A run's records, one JSON object each appended to ``<run_dir>/metrics.jsonl`` (flushed each time).

    With ``step_key`` (the key that numbers the records: ``epoch`` for MLE, ``iteration`` for the
    adversarial batches) every other key of a record also goes to TensorBoard, as a scalar at that
    step, in ``<run_dir>/tensorboard/``. ``samples``, when given, is where the run shows the
    generator's text at each evaluation (``seqgan_rl.evaluation.sample_log``); whoever evaluates writes to it.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, step_key: str | None = None,
                 samples: SampleLog | None = None) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = read_records(self.path) if self.path.is_file() else []
        self.step_key = step_key
        self.samples = samples
        self.writer = EventWriter(Path(run_dir) / TENSORBOARD_DIR) if step_key is not None else None

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != self.step_key:
                    self.writer.add_scalar(key, value, record[self.step_key])

    def close(self) -> None:
        """Close the TensorBoard files (of the scalars and of the samples)."""
        if self.writer is not None:
            self.writer.close()
        if self.samples is not None:
            self.samples.close()


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, one JSON object per line (``parse_records``)."""
    return parse_records(path, Path(path).read_text().splitlines())


def parse_records(path: str | os.PathLike[str], lines: list[str]) -> list[dict[str, Any]]:
    """Metrics records from ``lines`` of the ``metrics.jsonl`` at ``path``.

    Raises:
        DataError: naming the file and line of one that is not JSON (a line a crash cut short is one).
    """
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not JSON ({error.msg})") from None
    return records


def restart_logs(run_dir: str | os.PathLike[str], records: list[dict[str, Any]], step: int) -> None:
    """Cut a run's logs back to where its checkpoint at ``step`` left them, before they are opened again.

    ``metrics.jsonl`` keeps exactly ``records`` (those the checkpoint follows;
    later lines and a line a crash cut short go), ``samples.txt`` its blocks
    up to ``step``, TensorBoard its events up to ``step``.
    """
    run_dir = Path(run_dir)
    with atomic_path(run_dir / METRICS_FILE) as tmp:
        tmp.write_text("".join(json.dumps(record) + "\n" for record in records))
    trim_samples(run_dir / SAMPLES_FILE, step)
    trim_event_files(run_dir / TENSORBOARD_DIR, step)


CURVE_PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Likelihood", "nats per token", ("eval/nll_oracle", "eval/nll_test", "train/nll")),
    ("Discriminator", "probability", ("train/d_accuracy", "train/d_fake_mean", "train/mean_q")),
    ("Discriminator's information: rank correlation of D with the ideal D*", "Spearman's rho",
     ("eval/d_spearman", "eval/d_spearman_generated")),
    ("Slope of D's logit on D*'s, generated sequences", "logit per unit of D*'s logit", ("eval/d_slope",)),
    ("D's error beside that slope, generated sequences", "standard deviation, logit units (nats: ratio, ideal)",
     ("eval/d_error_std",)),
    ("Held-out real vs fresh generated: share classified right", "accuracy",
     ("eval/d_accuracy", "eval/ideal_accuracy")),
    ("Spread of Q over the batch", "standard deviation of Q_t, mean over t", ("train/q_spread",)),
    ("Distance from the MLE generator", "nats per token (KL estimate)", ("train/kl_to_mle",)),
    ("Time", "seconds", ("time/epoch_s", "time/iteration_s", "time/sample_s", "time/monte_carlo_q_s",
                         "time/learner_s", "time/d_steps_s")),
)
"""``curves.png``'s panels: (title, y-axis label, metrics); each quantity on an axis of its own unit, a
panel drawn only when a run logged one of its metrics."""


def curve_points(records: list[dict[str, Any]], x_key: str, key: str) -> list[tuple[float, float]]:
    """(x, value) of every record that holds a finite number under ``key``."""
    return [(r[x_key], r[key]) for r in records
            if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and x_key in r]


def curve_panels(records: list[dict[str, Any]], x_key: str) -> list[tuple[str, str, list[str]]]:
    """The ``CURVE_PANELS`` these records fill, each with the metrics they hold."""
    panels = [(title, unit, [k for k in keys if curve_points(records, x_key, k)]) for title, unit, keys in CURVE_PANELS]
    return [panel for panel in panels if panel[2]]


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike[str], x_key: str = "epoch") -> Path:
    """Plot the run's metrics against ``x_key`` into a PNG: one panel per quantity (``CURVE_PANELS``).

    The MLE phase gets its likelihood and epoch times; a training run also the discriminator's
    accuracy and rewards, the KL to the MLE generator and the per-stage seconds of a batch.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = curve_panels(records, x_key)
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(7, 2.6 * max(1, len(panels))), sharex=True,
                             squeeze=False)
    for ax, (title, unit, keys) in zip(axes[:, 0], panels):
        for key in keys:
            points = curve_points(records, x_key, key)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("adversarial batch" if x_key == "iteration" else x_key)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
