"""Time one SeqGAN d-round at the paper setting: sample the negatives, train the discriminator.

A d-round (one discriminator step of the original release) samples 10,000 negatives from
the generator (emb/hidden 32, vocabulary 5,000, length 20) and trains the paper CNN on them
plus 10,000 real sequences (here: samples of the oracle, as in the paper's synthetic
experiment; not timed): 3 shuffled epochs of minibatch-64 Adam, 939 steps in all. The
original TensorFlow release took 940 s for it on a 2-core machine of this kind
(``ORIGINAL_RELEASE_S``). ``--steps`` times only that many training steps (after
``--warmup`` untimed ones; fewer than one epoch's) and extrapolates to the whole round;
the JSON then says ``extrapolated_from_steps`` and its round figures end in ``_extrapolated``.
Prints a JSON object as its last line.

    python benchmarks/d_round.py [--steps 200] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.data.oracle_data import load_oracle  # noqa: E402
from seqgan_rl.models.discriminator import (  # noqa: E402
    TRAIN_PRECISIONS,
    Discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)
from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402

VOCAB, SEQ_LEN = 5_000, 20
ORIGINAL_RELEASE_S = 940.0


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return machine("cpu")["cpu"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-real", type=int, default=10_000)
    parser.add_argument("--num-fake", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, help="time only this many training steps (< one epoch's) and extrapolate"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed training steps first (default 5)")
    parser.add_argument("--precision", choices=TRAIN_PRECISIONS, default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = torch.Generator().manual_seed(args.seed)
    generator = Generator(GeneratorConfig(vocab_size=VOCAB, seq_len=SEQ_LEN, emb_dim=32, hidden_dim=32)).eval()
    generator.sample(64, generator=rng)  # warm up
    start = time.perf_counter()
    fake = generator.sample(args.num_fake, generator=rng)  # (num_fake, T)
    sample_s = time.perf_counter() - start
    oracle, oracle_source = load_oracle(None)
    real = oracle.sample(args.num_real, generator=rng)  # (num_real, T)

    disc = Discriminator(VOCAB, SEQ_LEN)
    optimizer = make_discriminator_optimizer(disc)
    batch = args.batch_size
    steps_per_epoch = math.ceil((args.num_real + args.num_fake) / batch)
    total_steps = args.epochs * steps_per_epoch

    def train(num_steps: int | None, epochs: int) -> dict[str, float]:
        """train_discriminator on all of real + fake, or on num_steps * batch of its rows
        (num_steps <= steps_per_epoch), taken half from each side where they suffice."""
        n_real, n_fake = args.num_real, args.num_fake
        if num_steps is not None:
            rows = num_steps * batch
            n_fake = min(n_fake, rows - min(n_real, rows // 2))
            n_real = rows - n_fake
        return train_discriminator(
            disc, optimizer, real[:n_real], fake[:n_fake], epochs=epochs, batch_size=batch,
            generator=rng, precision=args.precision,
        )  # fmt: skip

    if args.warmup > 0:
        train(min(args.warmup, steps_per_epoch), epochs=1)
    # A subset of steps is timed within one epoch; asking for more times the whole round.
    extrapolate = args.steps is not None and args.steps < steps_per_epoch
    timed_steps = args.steps if extrapolate else total_steps
    start = time.perf_counter()
    stats = train(timed_steps, epochs=1) if extrapolate else train(None, args.epochs)
    timed_s = time.perf_counter() - start
    step_s = timed_s / timed_steps
    train_s = step_s * total_steps
    d_round_s = sample_s + train_s
    suffix = "_extrapolated" if extrapolate else ""  # from timed_steps steps to the whole round

    result = {
        "setting": {
            "vocab": VOCAB, "seq_len": SEQ_LEN, "num_real": args.num_real, "num_fake": args.num_fake,
            "epochs": args.epochs, "batch_size": batch, "precision": args.precision, "real": oracle_source,
        },
        "total_steps": total_steps,
        "step_ms": round(1e3 * step_s, 2),
        "train_s": round(train_s, 2),
        "sample_negatives_s": round(sample_s, 3),
        f"d_round_s{suffix}": round(d_round_s, 2),
        "original_release_s": ORIGINAL_RELEASE_S,
        f"speedup_vs_original{suffix}": round(ORIGINAL_RELEASE_S / d_round_s, 2),
        "final_stats": {k: round(v, 4) for k, v in stats.items()},
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "machine": machine("cpu"),
    }  # fmt: skip
    if extrapolate:
        result["extrapolated_from_steps"] = timed_steps
    print(json.dumps(result))


if __name__ == "__main__":
    main()
