"""The reward step of one adversarial batch: the dense discriminator's one pass against the Monte Carlo search.

Both value every prefix of the same B = 64 generated sequences (T = 20, vocabulary 5,000, the paper's
generator): the Monte Carlo search completes each of the 19 proper prefixes N = 16 times with the
rollout policy and scores every completion with the ``cpu`` preset's CNN (``MonteCarloQ``, in-process, as
``num_mc_workers=0`` runs it), the dense discriminator (the defaults of ``DenseDiscriminator``) scores
all 64 × 20 prefixes in one forward pass (``DenseDiscriminator.prefix_logits``). Also timed: one d-step
of each discriminator on ``--negatives`` fresh negatives + as many real sequences (one epoch), the
other part of the batch that changes between the two.

The adversarial batch's whole phase breakdown (sampling, reward, learner, d-steps) comes from real runs:
``--runs`` reads their ``metrics.jsonl`` (``time/sample_s``, ``time/monte_carlo_q_s``, ``time/learner_s``,
``time/d_steps_s``, ``time/iteration_s``, means over the adversarial batches). Prints a JSON object as
its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine, median_seconds, paper_q_setting, pick_device  # noqa: E402

from seqgan_rl.config import CPU_DISCRIMINATOR  # noqa: E402
from seqgan_rl.evaluation.metrics_log import read_records  # noqa: E402
from seqgan_rl.models.dense_discriminator import DenseDiscriminator  # noqa: E402
from seqgan_rl.models.discriminator import (  # noqa: E402
    Discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)

PHASES = ("time/sample_s", "time/monte_carlo_q_s", "time/learner_s", "time/d_steps_s", "time/iteration_s")
"""The stages of an adversarial batch that a run logs (``time/monte_carlo_q_s``: its reward step)."""


def phase_breakdown(run_dir: Path) -> dict[str, float]:
    """Mean seconds of each stage over a run's adversarial batches (``metrics.jsonl``), and their count."""
    records = [r for r in read_records(run_dir / "metrics.jsonl") if r.get("iteration", 0) > 0 and
               "time/iteration_s" in r]
    if not records:
        raise SystemExit(f"{run_dir}: no adversarial batch in metrics.jsonl")
    means = {key.removeprefix("time/"): statistics.fmean(r.get(key, 0.0) for r in records) for key in PHASES}
    return {**means, "batches": len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--negatives", type=int, default=5_000, help="negatives of the timed d-step (cpu preset)")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], metavar="RUN_DIR",
                        help="finished runs whose adversarial batches' phases to report")
    args = parser.parse_args()
    device = pick_device(args.device)
    batch, n = 64, 16
    config, policy, sequences, engine = paper_q_setting(device, batch, n)  # sequences: (64, 20)
    rng = torch.Generator(device=device).manual_seed(0)
    cnn = Discriminator(config.vocab_size, config.seq_len, **CPU_DISCRIMINATOR).to(device).eval()
    dense = DenseDiscriminator(config.vocab_size, config.seq_len).to(device).eval()

    monte_carlo_s = median_seconds(lambda: engine(sequences, policy, cnn, generator=rng), repeats=args.repeats,
                                   device=device)
    dense_s = median_seconds(lambda: dense.prefix_logits(sequences), repeats=max(args.repeats, 10), device=device)

    real, fake = policy.sample(args.negatives), policy.sample(args.negatives)
    d_steps = {}
    for name, model in (("cnn", cnn), ("dense", dense)):
        optimizer = make_discriminator_optimizer(model)
        d_steps[name] = median_seconds(
            lambda model=model, optimizer=optimizer: train_discriminator(model, optimizer, real, fake, epochs=1),
            repeats=1, device=device)

    print(json.dumps({
        "setting": {"B": batch, "N": n, "T": config.seq_len, "vocab_size": config.vocab_size,
                    "cnn": CPU_DISCRIMINATOR, "dense": {"emb_dim": dense.embedding.embedding_dim,
                                                        "hidden_dim": dense.lstm.hidden_size},
                    "d_step_negatives": args.negatives, "threads": torch.get_num_threads()},
        "reward_step_s": {"monte_carlo": monte_carlo_s, "dense": dense_s},
        "reward_step_speedup": monte_carlo_s / dense_s,
        "d_step_s": d_steps,
        "runs": {str(run): phase_breakdown(run) for run in args.runs},
        "machine": machine(device),
    }))


if __name__ == "__main__":
    main()
