"""How much a learned discriminator can know: d-steps against one fixed generator, measured against D*.

The question before any adversarial phase: given the MLE generator and the real data, how close does
a discriminator's ranking of sequences come to the ideal discriminator's (Spearman with
log p_oracle − log p_G, ``seqgan_rl.evaluation.information``), and how does that depend on the
architecture (the paper's CNN at the ``cpu`` preset's sizes, the dense LSTM, the ratio discriminator with
the generator's sizes, q started from it and the generator as its reference), the learning rate and
the schedule? Each configuration trains from scratch for ``--d-steps`` d-steps, each on
``--negatives`` fresh samples of the generator against as many real sequences (a fresh subset of the
run's fixed training set, or fresh oracle samples with ``--fresh-real``), ``--epochs`` passes each,
as the discriminator actor's ``train_on_generator`` does; after every ``--eval-every`` d-steps it is
measured on ``--info-samples`` held-out real and as many fresh generated sequences, with its
training accuracy beside them (memorisation shows as a gap). Seconds per d-step are measured on the
same thread count. ``--save-q PATH`` writes the q of the last ``ratio`` configuration in the oracle's layout:
``--reward-model ideal --ideal-density PATH`` then values that q, frozen, through the Monte Carlo search.
``--ideal-noise`` measures the ideal discriminator with a fixed error of each size
(``reward_model=ideal``'s ``ideal_noise``) on the same sequences: the σ whose Spearman matches a learned
discriminator's. Prints a JSON object as its last line.

    python benchmarks/discriminator_information.py --generator-checkpoint MLE/checkpoint.pt --data RUN/data \\
        --configs cnn:lr=1e-4 dense:lr=1e-4 dense:lr=1e-3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine  # noqa: E402

from seqgan_rl.config import CPU_DISCRIMINATOR  # noqa: E402
from seqgan_rl.data.tables import read_token_table  # noqa: E402
from seqgan_rl.distributed.weights import module_weights  # noqa: E402
from seqgan_rl.evaluation.information import discriminator_information  # noqa: E402
from seqgan_rl.models.discriminator import (  # noqa: E402
    build_discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)
from seqgan_rl.models.oracle import Oracle  # noqa: E402
from seqgan_rl.models.ratio_discriminator import RatioDiscriminator  # noqa: E402
from seqgan_rl.rewards import IdealDiscriminator, probability_logits  # noqa: E402
from seqgan_rl.runs import load_generator  # noqa: E402


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,...`` → (architecture, options): ``lr`` and the architecture's sizes (JSON values)."""
    architecture, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[key.strip()] = json.loads(value)
    return architecture.strip(), options


def measure(model: Any, real: torch.Tensor, fake: torch.Tensor, log_ratio: np.ndarray) -> dict[str, float]:
    """The information measure of ``model`` on held-out real [n, T] and fresh generated [n, T] sequences, from
    its logits (a dense or ratio discriminator's own, whose probabilities saturate; the CNN's from its
    probabilities), as ``DiscriminatorActor.logits`` gives them to a run."""
    tokens = torch.cat([real, fake])
    if hasattr(model, "prefix_logits"):
        logits = model.prefix_logits(tokens)[:, -1].double().numpy()
    else:
        logits = probability_logits(model.score(tokens).double()).numpy()
    is_real = np.arange(len(tokens)) < len(real)
    return discriminator_information(logits, is_real, log_ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator-checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a run's data directory (train/valid.parquet, "
                        "oracle.npz)")
    parser.add_argument("--configs", nargs="*", default=["cnn:lr=1e-4", "dense:lr=1e-4", "dense:lr=1e-3"])
    parser.add_argument("--ideal-noise", default="", help="comma-separated σ (nats) of the ideal discriminator's "
                        "fixed error to measure (reward_model=ideal, ideal_noise)")
    parser.add_argument("--d-steps", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--negatives", type=int, default=5_000)
    parser.add_argument("--batch-size", type=int, default=64, help="d-step minibatch (real and fake together)")
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--info-samples", type=int, default=1_000)
    parser.add_argument("--fresh-real", action="store_true", help="each d-step's real sequences: fresh oracle samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-q", type=Path, help="write the last ratio configuration's q here (.npz, the "
                        "oracle's layout)")
    args = parser.parse_args()
    if args.save_q is not None and not any(parse_config(text)[0] == "ratio" for text in args.configs):
        parser.error("--save-q writes a ratio discriminator's q: give a ratio configuration")

    generator = load_generator(args.generator_checkpoint, "cpu")
    oracle = Oracle.from_npz(args.data / "oracle.npz")
    train = torch.from_numpy(read_token_table(args.data / "train.parquet").tokens.astype(np.int64))
    valid = torch.from_numpy(read_token_table(args.data / "valid.parquet").tokens.astype(np.int64))
    sampling = torch.Generator().manual_seed(args.seed + 1)
    held_real = valid[:args.info_samples]
    held_fake = generator.sample(args.info_samples, generator=sampling)
    with torch.no_grad():
        held = torch.cat([held_real, held_fake])
        log_ratio = (oracle.log_prob(held).sum(1) - generator.log_prob(held).sum(1)).numpy()

    noisy = {}
    for sigma in [float(v) for v in args.ideal_noise.split(",") if v]:
        ideal = IdealDiscriminator(oracle, generator.config, noise=sigma, noise_seed=args.seed)
        ideal.load_generator_weights(module_weights(generator, 1)["state"])
        is_real = np.arange(len(held)) < args.info_samples
        noisy[sigma] = discriminator_information(ideal.logit(held).double().numpy(), is_real, log_ratio)
        print(f"ideal_noise {sigma}: {noisy[sigma]}", flush=True)

    results = {}
    for text in args.configs:
        architecture, options = parse_config(text)
        lr = float(options.pop("lr", 1e-4))
        sizes = {"cnn": dict(CPU_DISCRIMINATOR), "dense": {},
                 "ratio": {"emb_dim": generator.config.emb_dim, "hidden_dim": generator.config.hidden_dim,
                           "start_token": generator.config.start_token}}[architecture]
        sizes.update(options)
        torch.manual_seed(args.seed)
        model = build_discriminator(architecture, generator.config.vocab_size, generator.config.seq_len, **sizes)
        if isinstance(model, RatioDiscriminator):  # q starts as G, which is also its reference throughout
            model.set_reference(module_weights(generator, 1)["state"])
        optimizer = make_discriminator_optimizer(model, lr=lr)
        shuffle = torch.Generator().manual_seed(args.seed)
        negatives = torch.Generator().manual_seed(args.seed + 2)
        positives = torch.Generator().manual_seed(args.seed + 3)
        curve, seconds = [], []
        for step in range(1, args.d_steps + 1):
            fake = generator.sample(args.negatives, generator=negatives)
            if args.fresh_real:
                real = oracle.sample(args.negatives, generator=positives)
            else:
                real = train[torch.randperm(len(train), generator=shuffle)[:args.negatives]]
            started = time.perf_counter()
            stats = train_discriminator(model, optimizer, real, fake, epochs=args.epochs, batch_size=args.batch_size,
                                        generator=shuffle)
            seconds.append(time.perf_counter() - started)
            if step % args.eval_every == 0 or step == args.d_steps:
                model.eval()
                info = measure(model, held_real, held_fake, log_ratio)
                curve.append({"d_step": step, "train_accuracy": stats["accuracy"], "train_loss": stats["loss"],
                              "held_out_accuracy": info["eval/d_accuracy"], "spearman": info["eval/d_spearman"],
                              "spearman_generated": info["eval/d_spearman_generated"], "slope": info["eval/d_slope"],
                              "error_std": info["eval/d_error_std"]})
                print(f"{text} step {step}: {curve[-1]}", flush=True)
        results[text] = {"curve": curve, "seconds_per_d_step": float(np.mean(seconds)),
                         "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
        if args.save_q is not None and isinstance(model, RatioDiscriminator):
            q = Oracle(model.config)
            q.load_state_dict(model.model.state_dict())
            q.save_npz(args.save_q)

    print(json.dumps({
        "setting": {"d_steps": args.d_steps, "epochs": args.epochs, "negatives": args.negatives,
                    "batch_size": args.batch_size,
                    "fresh_real": args.fresh_real, "info_samples": args.info_samples, "seed": args.seed,
                    "threads": torch.get_num_threads(), "generator_checkpoint": str(args.generator_checkpoint)},
        "ideal_accuracy": float(np.mean(np.where(np.arange(len(log_ratio)) < args.info_samples, log_ratio > 0,
                                                 log_ratio < 0))),
        "log_ratio_std": float(np.std(log_ratio)),
        "ideal_noise": noisy,
        "results": results,
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
