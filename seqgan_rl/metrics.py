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


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike[str], x_key: str = "epoch") -> Path:
    """Plot every numeric ``train/`` and ``eval/`` metric against ``x_key`` into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in records for k, v in r.items() if k.split("/")[0] in ("train", "eval")
                   and isinstance(v, (int, float)) and math.isfinite(v)})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in keys:
        points = [(r[x_key], r[key]) for r in records if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
    ax.set_xlabel(x_key)
    ax.set_ylabel("NLL per token (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
