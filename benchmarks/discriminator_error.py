"""A finished run's discriminator against the ideal one: how much of D*'s logit it follows, and its error.

A learned discriminator's logit is D*'s logit log p_oracle(y) − log p_G(y) plus an error. For the ratio
discriminator the error is q's, log q(y) − log p_oracle(y), and q starts as the generator: if q keeps the
generator's mistakes, its logit follows only part of D*'s. For each run directory (a learned reward model on
synthetic data), the discriminator of the latest checkpoint and the run's final generator score
``--samples`` fresh samples of that generator and as many held-out real sequences (the run's
``valid.parquet``); printed per run, then over the runs (mean ± sd): the run's information measure
(``seqgan_rl.evaluation.information.discriminator_information``: Spearman with D*, the slope of D's logit on
D*'s over the generated sequences and the error left beside it) and the spread of D*'s own logit over the
generated sequences, the signal that slope scales.

    python benchmarks/discriminator_error.py runs/study/ratio-ppo-inc/seed0 runs/study/ratio-ppo-inc/seed1

Prints one JSON line per run, then a JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

from seqgan_rl.config import TrainConfig  # noqa: E402
from seqgan_rl.data.tables import read_token_table  # noqa: E402
from seqgan_rl.distributed.discriminator_actor import DiscriminatorActor  # noqa: E402
from seqgan_rl.errors import DataError  # noqa: E402
from seqgan_rl.evaluation.information import discriminator_information  # noqa: E402
from seqgan_rl.experiment.run import CONFIG_FILE  # noqa: E402
from seqgan_rl.experiment.run_checkpoints import ALGORITHM_FILE, latest_checkpoint  # noqa: E402
from seqgan_rl.models.oracle import Oracle  # noqa: E402
from seqgan_rl.rllib.settings import SeqGANSettings  # noqa: E402
from seqgan_rl.runs import load_generator  # noqa: E402
from seqgan_rl.storage.checkpoint import load_checkpoint  # noqa: E402
from seqgan_rl.storage.state_tree import decode  # noqa: E402


def measure_run(run_dir: Path, samples: int, seed: int) -> dict[str, Any]:
    """The discriminator of ``run_dir``'s latest checkpoint against D*, on its final generator's samples."""
    options = TrainConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text())["config"])
    checkpoint, _ = latest_checkpoint(run_dir)
    state = decode(load_checkpoint(checkpoint / ALGORITHM_FILE, "algorithm")["state"])["seqgan"]
    if "discriminator" not in state:
        raise DataError(f"{run_dir}: reward_model={options.reward.reward_model!r} has no learned discriminator")
    generator = load_generator(checkpoint / "generator.pt", "cpu")
    settings = SeqGANSettings(options, str(run_dir / "data" / "train.parquet"), asdict(generator.config))
    actor = DiscriminatorActor(generator.vocab_size, generator.seq_len, device="cpu", state=state["discriminator"],
                               architecture=settings.discriminator_architecture,
                               discriminator_kwargs=settings.discriminator_sizes())
    oracle = Oracle.from_npz(run_dir / "data" / "oracle.npz")
    real = torch.from_numpy(read_token_table(run_dir / "data" / "valid.parquet").tokens[:samples].astype(np.int64))
    with torch.no_grad():
        tokens = torch.cat([real, generator.sample(samples, generator=torch.Generator().manual_seed(seed))])
        log_ratio = (oracle.log_prob(tokens).sum(1) - generator.log_prob(tokens).sum(1)).double().numpy()
    logits = actor.logits(tokens.numpy())
    is_real = np.arange(len(tokens)) < len(real)
    return {"run_dir": str(run_dir), "checkpoint": checkpoint.name,
            "architecture": settings.discriminator_architecture,
            **{key.removeprefix("eval/"): value
               for key, value in discriminator_information(logits, is_real, log_ratio).items()},
            "ideal_logit_std_generated": float(np.std(log_ratio[~is_real]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=1_000, help="generated and held-out real sequences each")
    parser.add_argument("--seed", type=int, default=0, help="seeds the generated sequences")
    args = parser.parse_args()
    runs = []
    for run_dir in args.run_dirs:
        runs.append(measure_run(run_dir, args.samples, args.seed))
        print(json.dumps(runs[-1]), flush=True)
    keys = [key for key, value in runs[0].items() if isinstance(value, float)]
    summary = {key: {"mean": statistics.fmean(run[key] for run in runs),
                     "std": statistics.stdev(run[key] for run in runs) if len(runs) > 1 else 0.0} for key in keys}
    print(json.dumps({"runs": len(runs), "samples": args.samples, "summary": summary, "machine": machine("cpu")}))


if __name__ == "__main__":
    main()
