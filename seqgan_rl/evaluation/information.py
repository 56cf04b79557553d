"""How much a discriminator knows: its scores ranked against the ideal discriminator's.

The ideal discriminator's logit is log p_oracle(y) - log p_G(y) (Goodfellow et
al. 2014, Prop. 1); ``discriminator_information`` gives the Spearman rank
correlation of a discriminator's logits with it, how much of D*'s logit its own follows and how large
its remaining error is, and both accuracies on held-out real against fresh generated sequences
(docs/rewards.md, "The information measure").
"""

from __future__ import annotations

import math

import numpy as np


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of [n] values, ties given the mean of their ranks (float64 [n])."""
    order = np.argsort(values, kind="stable")
    ordered = np.asarray(values)[order]
    _, first, counts = np.unique(ordered, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0  # ranks first+1 .. first+count
    result = np.empty(len(values), dtype=np.float64)
    result[order] = np.repeat(mean_rank, counts)
    return result


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of [n] and [n] (Pearson's of their tie-averaged ranks); NaN when either
    is constant (a constant reward ranks nothing)."""
    rx, ry = ranks(np.asarray(x, dtype=np.float64)), ranks(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def discriminator_information(logits: np.ndarray, is_real: np.ndarray,
                              log_ratio: np.ndarray | None = None) -> dict[str, float]:
    """How much a reward model knows about real vs generated sequences, beside the ideal discriminator.

    Args:
        logits: log D(y) − log(1 − D(y)) [n] of held-out real and fresh generated sequences (logits, not
            probabilities: D* saturates to 0 or 1 in floating point where its logit still orders sequences).
        is_real: [n] bool, which of them are real.
        log_ratio: log p_oracle(y) − log p_G(y) [n] (synthetic data only): D*'s logit.

    Returns:
        ``eval/d_accuracy``: the share of sequences on the right side of D = 0.5 (real above);
        with ``log_ratio`` also ``eval/ideal_accuracy`` (the same for D*, the most any discriminator can
        reach on these sequences) and ``eval/d_spearman``: the rank correlation of D with D* (1: D orders
        sequences as the optimal discriminator does; 0: D carries no information on the density ratio);
        ``eval/d_spearman_generated``: the same over the generated sequences alone. The policy gradient
        only ever sees generated sequences, and on the mixture telling real from generated ranks most
        pairs, so this is the part of D's information the generator can use. Over the generated sequences
        too, the least-squares fit logit ≈ a + b · log_ratio: ``eval/d_slope`` (b: 1 when D's logit follows
        D*'s nat for nat; below 1 when its error cancels part of D*'s, as a q that makes the generator's
        mistakes does) and ``eval/d_error_std`` (the standard deviation of what the fit leaves, the error a
        policy gradient can climb). Both are in D's logit units: nats for ``ratio`` and ``ideal``.
    """
    is_real = np.asarray(is_real, dtype=bool)
    logits = np.asarray(logits, dtype=np.float64)
    metrics = {"eval/d_accuracy": float(np.mean(np.where(is_real, logits > 0, logits < 0)))}
    if log_ratio is not None:
        log_ratio = np.asarray(log_ratio, dtype=np.float64)
        metrics["eval/ideal_accuracy"] = float(np.mean(np.where(is_real, log_ratio > 0, log_ratio < 0)))
        metrics["eval/d_spearman"] = spearman(logits, log_ratio)
        metrics["eval/d_spearman_generated"] = spearman(logits[~is_real], log_ratio[~is_real])
        metrics.update(signal_and_error(logits[~is_real], log_ratio[~is_real]))
    return metrics


def signal_and_error(logits: np.ndarray, log_ratio: np.ndarray) -> dict[str, float]:
    """The least-squares fit logits ≈ a + b · log_ratio over [n] sequences: b (``eval/d_slope``) and the standard
    deviation of the residual (``eval/d_error_std``); NaN for fewer than two sequences or a constant log_ratio."""
    centred_ratio = log_ratio - log_ratio.mean() if len(log_ratio) else log_ratio
    variance = float((centred_ratio ** 2).sum())
    if len(log_ratio) < 2 or variance == 0:
        return {"eval/d_slope": float("nan"), "eval/d_error_std": float("nan")}
    centred = logits - logits.mean()
    slope = float((centred * centred_ratio).sum()) / variance
    return {"eval/d_slope": slope, "eval/d_error_std": float(np.std(centred - slope * centred_ratio))}
