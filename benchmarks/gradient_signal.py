"""How much of the ideal discriminator's information reaches one SeqGAN gradient step?

With ``reward_model=ideal`` and ``reward_transform=log_d`` the reward is log D*(y) ≈ log p_oracle(y) −
log p_G(y), whose expectation under G is −KL(G ‖ oracle): the policy gradient then estimates the
gradient of the reverse KL to the oracle, exactly the information a perfect discriminator holds. This
script measures how well one batch's gradient estimate points along that direction, for the
estimators a run can use, from one generator checkpoint, without Ray:

* ``mc-<baseline>``: SeqGAN's Monte Carlo Q (N completions of every prefix by a copy of G, each scored
  log D*, ``seqgan_rl.mc.MonteCarloQ`` with ``seqgan_rl.rewards.transformed_scorer``), minus the
  baseline (``seqgan_rl.rewards.baselined``), in SeqGAN's loss −Σ_t log G(y_t | y_<t)·(Q_t − b_t);
* ``exact-return``: the same loss with Q_t = Σ_{s≥t} (log p_oracle(y_s | y_<s) − log p_G(y_s | y_<s)),
  the per-token log-ratio's return from t (no search, no earlier tokens' noise), batch-mean baseline;
* ``control``: Q_t = ``--constant`` for every token (``reward_model=constant``), whose expectation is zero:
  the sharpening step, for comparison.

The reference direction is the mean of ``--reference-batches`` ``exact-return`` gradients of 64
sequences each (an unbiased estimate of ∇(−KL), from batches apart from the measured ones). For each
estimator, over ``--batches`` fresh batches, the script reports the cosine between each batch's gradient
and the reference (mean ± sd) and the signal-to-noise ratio ‖E g‖² / E‖g − E g‖² of one batch's gradient
g, estimated without bias from the batches (0: a step follows noise, not the discriminator; it grows in
proportion to the batch size). JSON on the last line.

Example::

    python benchmarks/gradient_signal.py --generator-checkpoint MLE/checkpoint.pt --data RUN/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.mc import MonteCarloQ  # noqa: E402
from seqgan_rl.models.generator import Generator  # noqa: E402
from seqgan_rl.models.oracle import Oracle  # noqa: E402
from seqgan_rl.rewards import IdealDiscriminator, baselined, transformed_scorer  # noqa: E402
from seqgan_rl.runs import load_generator  # noqa: E402

QEstimator = Callable[[torch.Tensor], np.ndarray]
"""Sequences [B, T] → Q − b [B, T] (float64) for SeqGAN's loss."""


def flat_gradient(generator: Generator, tokens: torch.Tensor, advantages: np.ndarray) -> torch.Tensor:
    """∇ of −Σ_t log G(y_t | y_<t)·A_t over the generator's parameters, flattened (float64 [P])."""
    generator.zero_grad()
    weights = torch.as_tensor(advantages, dtype=torch.float32)
    (-(generator.log_prob(tokens) * weights).sum()).backward()
    return torch.cat([p.grad.reshape(-1) for p in generator.parameters()]).double()


def signal_to_noise(gradients: torch.Tensor) -> float:
    """‖μ‖² / tr Σ of one batch's gradient, from K independent ones [K, P]: (‖ḡ‖² − tr Σ̂ / K) / tr Σ̂."""
    count = gradients.shape[0]
    mean = gradients.mean(0)
    noise = float(((gradients - mean) ** 2).sum() / (count - 1))
    return (float(mean @ mean) - noise / count) / noise


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-30))


def estimators(generator: Generator, oracle: Oracle, rollouts: int, constant: float,
               seed: int) -> dict[str, QEstimator]:
    """The Q − b estimators compared (module docstring), each a function of a batch of sequences."""
    ideal = IdealDiscriminator(oracle, generator.config)
    ideal.load_generator_weights(generator.state_dict())
    scorer = transformed_scorer(ideal, "log_d")
    engine = MonteCarloQ(rollouts)
    rng = torch.Generator().manual_seed(seed)

    def monte_carlo(baseline: str) -> QEstimator:
        def estimate(tokens: torch.Tensor) -> np.ndarray:
            q = engine(tokens, generator, scorer, generator=rng).double().numpy()
            return baselined(q, np.ones_like(q, dtype=bool), baseline)[0]
        return estimate

    def exact_return(tokens: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            ratio = (oracle.log_prob(tokens) - generator.log_prob(tokens)).double().numpy()  # (B, T)
        q = np.flip(np.cumsum(np.flip(ratio, 1), 1), 1)
        return baselined(q, np.ones_like(q, dtype=bool), "batch_mean")[0]

    return {"control": lambda tokens: np.full(tuple(tokens.shape), constant),
            "mc-none": monte_carlo("none"), "mc-batch_mean": monte_carlo("batch_mean"),
            "mc-prefix": monte_carlo("prefix"), "exact-return": exact_return}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator-checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a synthetic run's data directory (oracle.npz)")
    parser.add_argument("--batch", type=int, default=64, help="sequences per gradient step (a run's batch)")
    parser.add_argument("--rollouts", type=int, default=16, help="N, completions per prefix")
    parser.add_argument("--batches", type=int, default=6, help="batches per estimator")
    parser.add_argument("--reference-batches", type=int, default=64)
    parser.add_argument("--constant", type=float, default=0.45)
    parser.add_argument("--estimators", default="control,mc-none,mc-batch_mean,mc-prefix,exact-return",
                        help="comma-separated, of those in the module docstring")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generator = load_generator(args.generator_checkpoint, "cpu").train()
    oracle = Oracle.from_npz(args.data / "oracle.npz")
    rng = torch.Generator().manual_seed(args.seed)

    def batch() -> torch.Tensor:
        with torch.no_grad():
            return generator.sample(args.batch, generator=rng)  # (B, T)

    table = estimators(generator, oracle, args.rollouts, args.constant, args.seed)
    started = time.perf_counter()
    reference_rng = torch.Generator().manual_seed(args.seed + 1)
    reference = torch.zeros(sum(p.numel() for p in generator.parameters()), dtype=torch.float64)
    for _ in range(args.reference_batches):
        with torch.no_grad():
            tokens = generator.sample(64, generator=reference_rng)
        reference += flat_gradient(generator, tokens, table["exact-return"](tokens)) / args.reference_batches
    results: dict[str, object] = {"reference_s": time.perf_counter() - started}
    for name in args.estimators.split(","):
        estimate = table[name]
        started = time.perf_counter()
        gradients = []
        for _ in range(args.batches):
            tokens = batch()
            gradients.append(flat_gradient(generator, tokens, estimate(tokens)))
        cosines = [cosine(g, reference) for g in gradients]
        results[name] = {"cosine_mean": statistics.fmean(cosines), "cosine_std": statistics.stdev(cosines),
                         "cosine_of_mean": cosine(torch.stack(gradients).mean(0), reference),
                         "snr": signal_to_noise(torch.stack(gradients)),
                         "gradient_norm": statistics.fmean(float(g.norm()) for g in gradients),
                         "seconds_per_batch": (time.perf_counter() - started) / args.batches}
        print(json.dumps({"estimator": name, **results[name]}), flush=True)
    print(json.dumps({"benchmark": "gradient_signal", "setting": {k: str(v) for k, v in vars(args).items()},
                      "results": results, "machine": machine("cpu")}))


if __name__ == "__main__":
    main()
