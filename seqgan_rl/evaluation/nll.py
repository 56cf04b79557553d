"""The paper's two likelihood metrics of a generator.

* NLL-oracle (the paper's metric): the oracle's mean negative log-likelihood
  per token of sequences sampled from G. Lower means G's samples are more
  likely under the true distribution; it alone rewards low-entropy
  generators, so it is always reported beside
* NLL-test: G's own mean negative log-likelihood per token of held-out real
  sequences (how much of the real distribution G covers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from seqgan_rl.models.generator import Generator

if TYPE_CHECKING:  # the annotation only: NLL needs no Parquet reader
    from seqgan_rl.data.oracle_data import Dataset


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


def nll_metrics(generator: Generator, data: Dataset, num_samples: int, rng: torch.Generator) -> dict[str, float]:
    """NLL-oracle (when an oracle exists) and NLL-test (when held-out data exists)."""
    metrics: dict[str, float] = {}
    generator.eval()
    if data.oracle is not None:
        metrics["eval/nll_oracle"] = nll_oracle(generator, data.oracle, num_samples, rng=rng)
    if len(data.valid):
        metrics["eval/nll_test"] = nll_test(generator, data.valid.to(generator.device))
    return metrics
