"""SeqGAN's policy gradient with the discriminator taken away: how much of its NLL-oracle gain needs D?

SeqGAN's loss −Σ_t log G(y_t | y_<t)·Q_t has no baseline and Q ∈ [0, 1], so
every sampled token's probability is pushed up, more or less. With a constant
Q = q the expected gradient is zero, but each finite-sample step is a step of
MLE on the generator's own samples, which sharpens it (lowers its entropy):
NLL-oracle falls and NLL-test rises without any information about the data.
This script applies exactly SeqGAN's update (the original release's Adam,
lr 0.01, global-norm clip 5, summed loss, 64 fresh samples per step) with
Q_t = q for every token and no discriminator, for as many steps as an
adversarial run has batches, and reports NLL-oracle and NLL-test along the way:
the share of an adversarial run's gain that this reproduces is not the
discriminator's doing. JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.config import PRESETS  # noqa: E402
from seqgan_rl.metrics import nll_oracle, nll_test  # noqa: E402
from seqgan_rl.mle import load_dataset  # noqa: E402
from seqgan_rl.runs import load_generator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator-checkpoint", type=Path, required=True, help="the MLE checkpoint to start from")
    parser.add_argument("--data", type=Path, required=True,
                        help="a run's data directory (oracle.npz, valid.parquet), e.g. RUN/data")
    parser.add_argument("--steps", type=int, default=40, help="updates (an adversarial run's batches)")
    parser.add_argument("--q", type=float, default=0.45, help="the constant Q (a run's mean Q is ~0.45 at first)")
    parser.add_argument("--batch", type=int, default=64, help="sampled sequences per update")
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    data = load_dataset(PRESETS["paper"], args.data, None)
    runs = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        torch.manual_seed(seed)
        generator = load_generator(args.generator_checkpoint, "cpu").train()
        optimizer = torch.optim.Adam(generator.parameters(), lr=0.01)
        rng = torch.Generator().manual_seed(seed)
        curve = []
        for step in range(args.steps + 1):
            if step % args.eval_every == 0:
                generator.eval()
                with torch.no_grad():
                    curve.append({
                        "step": step,
                        "nll_oracle": nll_oracle(generator, data.oracle, 10_000,
                                                 rng=torch.Generator().manual_seed(1000 + step)),
                        "nll_test": nll_test(generator, data.valid)})
                generator.train()
                print(json.dumps({"seed": seed, **curve[-1]}), flush=True)
            if step == args.steps:
                break
            with torch.no_grad():
                tokens = generator.sample(args.batch, generator=rng)  # (B, T)
            loss = -(generator.log_prob(tokens) * args.q).sum()  # SeqGAN's loss with Q_t = q
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), 5.0)
            optimizer.step()
        runs[seed] = curve
    print(json.dumps({"benchmark": "constant_reward", "setting": vars(args) | {
        "generator_checkpoint": str(args.generator_checkpoint), "data": str(args.data)},
        "runs": runs, "machine": machine("cpu")}))


if __name__ == "__main__":
    main()
