"""Every phase of SeqGAN against the original release, in the exact and the fast precision mode.

The original release (TensorFlow) was timed on a 2-core VM of this kind at the paper's setting
(vocabulary 5,000, length 20, generator emb/hidden 32, the paper's discriminator CNN). Its
seconds are the constants in ``ORIGINAL_S``. Each phase here runs the project's own code for the
same work:

* ``sample_10k``: ``Generator.sample`` of 10,000 sequences;
* ``mle_epoch``: one epoch of ``pretrain_mle`` (157 minibatches of 64 of 10,000 oracle sequences,
  Adam 0.01, clip 5) (float32 in both modes), the median of ``--repeats`` epochs after one untimed;
* ``nll_oracle_eval``: ``nll_oracle`` on 10,000 samples (sample, then score with the oracle);
* ``get_reward``: Monte Carlo Q of one batch (B 64, N 16) with the paper's discriminator scoring
  every completion (``MonteCarloQ`` with ``score_precision`` of the mode);
* ``d_round``: one d-round (sample 10,000 negatives, 3 epochs of minibatch-64 Adam on them plus
  10,000 real sequences: 939 steps) with ``d_precision`` of the mode; ``--d-steps`` times that
  many training steps and extrapolates to 939 (the JSON says so);
* ``g_step``: one adversarial generator step: sample 64 sequences, their Monte Carlo Q with the
  discriminator, the policy-gradient update (−Σ log G · Q, Adam, clip 5) and the rollout
  policy's β update. The core pieces, without RLlib's per-iteration bookkeeping (the ``cpu``
  preset's ``time/*`` metrics give a whole adversarial batch);
* ``paper_schedule``: the paper preset's whole schedule extrapolated from the phases above:
  120 MLE epochs with 24 evaluations, 50 pretraining d-rounds, then 200 batches of one g-step,
  5 d-rounds, and an evaluation every 5 batches (original ≈ 11.5 days).

``--generator-checkpoint`` times the phases with a trained generator (an MLE checkpoint), whose
logits span ~[−96, 17] where a fresh one's stay near 0: the realistic case, and the one the
figures in docs/results.md use. Every phase runs in a fresh Python process (``--phase``), so no
figure depends on what ran before it (caches, allocator state, the thread pool). The host's fp32
GEMM throughput is probed at the start and at the end: a shared VM's speed changes with its
neighbours' load.

    python benchmarks/vs_original.py [--precision exact fast] [--repeats 3] [--d-steps 300]
                                     [--generator-checkpoint MLE.pt]

Prints a table, then a JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import adversarial_g_step, gemm_gflops, machine, median_seconds  # noqa: E402

from seqgan_rl.config import PRECISION_PARTS, PRESETS  # noqa: E402
from seqgan_rl.data.oracle_data import Dataset, load_oracle  # noqa: E402
from seqgan_rl.distributed.devices import score_precision_on, train_precision_on  # noqa: E402
from seqgan_rl.evaluation.nll import nll_oracle  # noqa: E402
from seqgan_rl.mc import MonteCarloQ, RolloutPolicy  # noqa: E402
from seqgan_rl.mle import make_generator_optimizer, pretrain_mle  # noqa: E402
from seqgan_rl.models.discriminator import Discriminator, make_discriminator_optimizer, train_discriminator  # noqa: E402
from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402
from seqgan_rl.models.precision import hardware_summary  # noqa: E402
from seqgan_rl.runs import load_generator  # noqa: E402

ORIGINAL_S: dict[str, float] = {
    "sample_10k": 9.2,
    "mle_epoch": 16.2,
    "nll_oracle_eval": 15.9,
    "get_reward": 16.3,
    "d_round": 940.0,
    "g_step": 18.3,
}
"""The original release's seconds per phase on a 2-core VM of this kind (the README's reference figures)."""
PHASES: tuple[str, ...] = tuple(ORIGINAL_S)
PAPER_SCHEDULE = {"mle_epochs": 120, "mle_evals": 24, "d_pretrain_rounds": 50, "batches": 200,
                  "d_rounds_per_batch": 5, "adversarial_evals": 40}
"""The paper preset's schedule, counted in phases (an evaluation = one ``nll_oracle_eval``)."""
D_ROUND_STEPS = 939
"""Training steps of one d-round: 3 epochs over 20,000 sequences in minibatches of 64."""


def paper_schedule_s(phase_s: dict[str, float]) -> float:
    """Seconds of the paper preset's whole schedule, from the seconds of each phase."""
    s = PAPER_SCHEDULE
    return (s["mle_epochs"] * phase_s["mle_epoch"]
            + (s["mle_evals"] + s["adversarial_evals"]) * phase_s["nll_oracle_eval"]
            + (s["d_pretrain_rounds"] + s["batches"] * s["d_rounds_per_batch"]) * phase_s["d_round"]
            + s["batches"] * phase_s["g_step"])


# ------------------------------------------------------------------------------------------ phases
def _models(seed: int, checkpoint: str | None) -> tuple[Generator, Any, str]:
    torch.manual_seed(seed)
    oracle, source = load_oracle(None)
    if checkpoint:
        return load_generator(checkpoint), oracle, source
    generator = Generator(GeneratorConfig(vocab_size=oracle.vocab_size, seq_len=oracle.seq_len))
    return generator, oracle, source


def _discriminator(generator: Generator, score_precision: str) -> Discriminator:
    discriminator = Discriminator(generator.vocab_size, generator.seq_len).eval()
    discriminator.score_precision = score_precision_on(discriminator.device, score_precision, "the benchmark")
    return discriminator


def phase_sample_10k(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    rng = torch.Generator().manual_seed(args.seed)
    return {"seconds": median_seconds(lambda: generator.sample(10_000, generator=rng), repeats=args.repeats)}


def phase_nll_oracle_eval(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    rng = torch.Generator().manual_seed(args.seed)
    return {"seconds": median_seconds(lambda: nll_oracle(generator, oracle, 10_000, rng=rng), repeats=args.repeats)}


def phase_mle_epoch(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    config = PRESETS["paper"].with_overrides(epochs=1 + args.repeats, eval_every=1, num_eval_samples=64,
                                             seed=args.seed)
    rng = torch.Generator().manual_seed(config.data_seed)
    train, valid = oracle.sample(config.num_train, generator=rng), oracle.sample(64, generator=rng)
    records = pretrain_mle(generator, Dataset(train, valid, oracle.vocab_size, oracle, "oracle"), config,
                           progress=False)
    epochs = [record["time/epoch_s"] for record in records[2:]]  # records[1] is the untimed first epoch
    return {"seconds": statistics.median(epochs), "epoch_s": epochs, "train_nll": records[-1]["train/nll"]}


def phase_get_reward(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    discriminator = _discriminator(generator, parts["score_precision"])
    sequences = generator.sample(64, generator=torch.Generator().manual_seed(args.seed))
    engine, rng = MonteCarloQ(num_rollouts=16), torch.Generator().manual_seed(args.seed)
    seconds = median_seconds(lambda: engine(sequences, generator, discriminator, generator=rng), repeats=args.repeats)
    return {"seconds": seconds, "score_precision": discriminator.score_precision}


def phase_d_round(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    rng = torch.Generator().manual_seed(args.seed)
    real = oracle.sample(10_000, generator=rng)
    discriminator = Discriminator(generator.vocab_size, generator.seq_len)
    precision = train_precision_on(discriminator.device, parts["d_precision"], "the benchmark")
    optimizer = make_discriminator_optimizer(discriminator)
    generator.sample(64, generator=rng)  # warm up
    started = time.perf_counter()
    fake = generator.sample(10_000, generator=rng)
    sample_s = time.perf_counter() - started
    train_discriminator(discriminator, optimizer, real[:160], fake[:160], epochs=1, generator=rng,
                        precision=precision)  # warm up: 5 steps
    steps = min(args.d_steps or D_ROUND_STEPS, D_ROUND_STEPS)
    if steps < D_ROUND_STEPS:  # one pass over steps * 64 rows, half real, half generated
        half = steps * 64 // 2
        real_rows, fake_rows, epochs = real[:half], fake[: steps * 64 - half], 1
    else:
        real_rows, fake_rows, epochs = real, fake, 3
    started = time.perf_counter()
    stats = train_discriminator(discriminator, optimizer, real_rows, fake_rows, epochs=epochs, generator=rng,
                                precision=precision)
    train_s = (time.perf_counter() - started) * D_ROUND_STEPS / (steps if steps < D_ROUND_STEPS else D_ROUND_STEPS)
    result = {"seconds": sample_s + train_s, "sample_negatives_s": sample_s, "train_s": train_s,
              "d_precision": precision, "loss": stats["loss"]}
    if steps < D_ROUND_STEPS:
        result["extrapolated_from_steps"] = steps
    return result


def phase_g_step(generator: Generator, oracle: Any, parts: dict[str, str], args: argparse.Namespace) -> dict:
    discriminator = _discriminator(generator, parts["score_precision"])
    rollout = RolloutPolicy(generator, beta=0.8)
    optimizer = make_generator_optimizer(generator, 0.01)
    engine, rng = MonteCarloQ(num_rollouts=16), torch.Generator().manual_seed(args.seed)

    def step() -> None:
        adversarial_g_step(generator, rollout, engine, discriminator, optimizer, 64, rng)

    return {"seconds": median_seconds(step, repeats=args.repeats), "score_precision": discriminator.score_precision}


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this (fresh) process."""
    if args.threads:
        torch.set_num_threads(args.threads)
    generator, oracle, source = _models(args.seed, args.generator_checkpoint)
    parts = PRECISION_PARTS[args.precision]
    result = globals()[f"phase_{args.phase}"](generator, oracle, parts, args)
    return {"phase": args.phase, "precision": args.precision, "oracle": source,
            "torch_threads": torch.get_num_threads(), **result}


# ------------------------------------------------------------------------------------------ driver
def run_all(args: argparse.Namespace) -> dict[str, Any]:
    gemm_at_start = gemm_gflops("cpu")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for precision in args.precision:
        results[precision] = {}
        for phase in args.phases:
            command = [sys.executable, __file__, "--phase", phase, "--precision", precision,
                       "--repeats", str(args.repeats), "--seed", str(args.seed)]
            if args.d_steps:
                command += ["--d-steps", str(args.d_steps)]
            if args.threads:
                command += ["--threads", str(args.threads)]
            if args.generator_checkpoint:
                command += ["--generator-checkpoint", args.generator_checkpoint]
            completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if completed.returncode != 0:
                raise SystemExit(f"phase {phase} ({precision}) failed:\n{completed.stderr[-4000:]}")
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            result["original_s"] = ORIGINAL_S[phase]
            result["speedup"] = ORIGINAL_S[phase] / result["seconds"]
            results[precision][phase] = result
            print(f"[{precision}] {phase}: {result['seconds']:.3f} s, {result['speedup']:.1f}x", file=sys.stderr,
                  flush=True)
        if set(PHASES) <= set(results[precision]):
            ours = paper_schedule_s({phase: results[precision][phase]["seconds"] for phase in PHASES})
            original = paper_schedule_s(ORIGINAL_S)
            results[precision]["paper_schedule"] = {"seconds": ours, "days": ours / 86_400, "original_s": original,
                                                    "original_days": original / 86_400, "speedup": original / ours}
    return {"setting": {"repeats": args.repeats, "seed": args.seed, "d_steps": args.d_steps,
                        "generator_checkpoint": args.generator_checkpoint,
                        "paper_schedule": PAPER_SCHEDULE},
            "original_s": ORIGINAL_S, "results": results, "hardware": hardware_summary(),
            "gemm_gflops_at_start": round(gemm_at_start, 1), "machine": machine("cpu")}


def table(report: dict[str, Any]) -> str:
    precisions = list(report["results"])
    header = "| phase | original, s | " + " | ".join(f"{p}, s | {p}, speed-up" for p in precisions) + " |"
    lines = [header, "| --- " * (2 + 2 * len(precisions)) + "|"]
    for phase in (*PHASES, "paper_schedule"):
        cells = []
        for precision in precisions:
            result = report["results"][precision].get(phase)
            cells += ["–", "–"] if result is None else [f"{result['seconds']:.3g}", f"{result['speedup']:.1f}x"]
        original = report["original_s"].get(phase, paper_schedule_s(ORIGINAL_S))
        lines.append(f"| {phase} | {original:.4g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", nargs="+", choices=tuple(PRECISION_PARTS), default=list(PRECISION_PARTS))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # one phase, in this process
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per phase (median)")
    parser.add_argument("--d-steps", type=int, default=300,
                        help="d_round: time this many training steps and extrapolate to 939 (0: the whole round)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator-checkpoint", default=None,
                        help="a trained generator (an MLE checkpoint or a run) instead of a freshly initialised one: "
                             "its sharper logits are the realistic case for sampling and the Monte Carlo rollouts")
    args = parser.parse_args()
    if args.phase:
        args.precision = args.precision[0] if isinstance(args.precision, list) else args.precision
        print(json.dumps(run_phase(args)))
        return
    report = run_all(args)
    print(table(report))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
