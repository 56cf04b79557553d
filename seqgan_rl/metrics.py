"""Evaluation metrics and the metrics log of a run.

* NLL-oracle (the paper's metric): the oracle's mean negative log-likelihood
  per token of sequences sampled from G. Lower means G's samples are more
  likely under the true distribution; it alone rewards low-entropy
  generators, so it is always reported beside
* NLL-test: G's own mean negative log-likelihood per token of held-out real
  sequences (how much of the real distribution G covers).

Metrics of a run go to ``metrics.jsonl`` in the run directory (one JSON object
per evaluation, keys named by prefix: ``train/``, ``eval/``, ``time/``) and a
PNG of the curves at the end.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqgan_rl.generator import Generator


@torch.no_grad()
def nll_oracle(
    generator: Generator,
    oracle: Generator,
    num_samples: int = 10_000,
    *,
    rng: torch.Generator | None = None,
    temperature: float = 1.0,
) -> float:
    """NLL-oracle: sample ``num_samples`` sequences from ``generator``, score them with ``oracle``.

    Returns:
        Mean negative log-likelihood per token (nats) under the oracle.
    """
    samples = generator.sample(num_samples, temperature=temperature, generator=rng)  # (n, T)
    return oracle.nll(samples.to(oracle.device))


@torch.no_grad()
def nll_test(generator: Generator, tokens: Tensor, *, temperature: float = 1.0) -> float:
    """NLL-test: ``generator``'s mean negative log-likelihood per token of held-out ``tokens`` [n, T].

    ``temperature`` scores under the distribution sampled at that temperature."""
    return generator.nll(tokens, temperature=temperature)


class MetricsLog:
    """Appends one JSON object per record to ``<run_dir>/metrics.jsonl`` (flushed each time)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []

    def log(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with self.path.open("a") as stream:
            stream.write(json.dumps(record) + "\n")


CURVE_PANELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Likelihood", "nats per token", ("eval/nll_oracle", "eval/nll_test", "train/nll")),
    ("Discriminator", "probability", ("train/d_accuracy", "train/d_fake_mean", "train/mean_q")),
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
