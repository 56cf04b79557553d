"""The paper's MLE pretraining on the original oracle: final NLL-oracle / NLL-test and speed.

Setting (the original release): 10,000 oracle sequences, generator emb/hidden
32, batch 64, Adam lr 0.01, gradient clip 5, 120 epochs, NLL-oracle on 10,000
samples every 5 epochs. The original logs NLL-oracle 9.07 after 120 epochs
(paper's table: 9.038); its TensorFlow code on a 2-core machine of this kind
took 16.2 s per MLE epoch, 15.9 s per NLL-oracle evaluation and 9.2 s to
sample 10,000 sequences (``ORIGINAL_*`` below). ``mle_epoch_s`` is the
median, over the run, of the mean epoch time between evaluations; the
evaluation and sampling times are medians of 5 repeats after the run.
A shared VM's speed changes with its neighbours' load (here: fp32 GEMMs at
~150 or ~70 GFLOP/s, for minutes at a time), so the host's GEMM throughput is
probed at the start, at every evaluation and at the end;
``mle_epoch_s_at_full_speed`` is the median over the intervals whose probe
reached 90 % of the run's best. Prints a JSON object as its
last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gemm_gflops, machine, median_seconds, pick_device  # noqa: E402

from seqgan_rl.config import PRESETS  # noqa: E402
from seqgan_rl.data.oracle_data import Dataset, load_oracle, sample_oracle_data  # noqa: E402
from seqgan_rl.evaluation.metrics_log import MetricsLog  # noqa: E402
from seqgan_rl.evaluation.nll import nll_oracle  # noqa: E402
from seqgan_rl.mle import pretrain_mle  # noqa: E402
from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402

ORIGINAL_MLE_EPOCH_S = 16.2
ORIGINAL_NLL_ORACLE_EVAL_S = 15.9
ORIGINAL_SAMPLE_10K_S = 9.2
FULL_SPEED_FRACTION = 0.9
"""An interval counts as run at full speed when the GEMM probe after it reached this fraction of the run's best."""


class ProbingLog(MetricsLog):
    """Metrics log that also measures the host's GEMM throughput at every evaluation (``host/gemm_gflops``)."""

    def __init__(self, run_dir: Path, device: str) -> None:
        super().__init__(run_dir)
        self.device = device

    def log(self, record: dict[str, Any]) -> None:
        record["host/gemm_gflops"] = gemm_gflops(self.device, seconds=0.3)
        super().log(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=PRESETS["paper"].epochs)
    parser.add_argument("--oracle-params", type=Path, help="default: ../shared/data/oracle_lstm_params.npz")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = pick_device(args.device)
    config = PRESETS["paper"].with_overrides(epochs=args.epochs, seed=args.seed)

    oracle, source = load_oracle(args.oracle_params)
    oracle.to(device)
    train, test = sample_oracle_data(oracle, config.num_train, config.num_valid, config.data_seed)
    data = Dataset(train, test, oracle.vocab_size, oracle, source)
    torch.manual_seed(config.seed)
    generator = Generator(GeneratorConfig(vocab_size=oracle.vocab_size, seq_len=oracle.seq_len)).to(device)

    gemm_at_start = gemm_gflops(device)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        records = pretrain_mle(generator, data, config, log=ProbingLog(Path(run_dir), device), progress=False)
    wall_s = time.perf_counter() - started
    # Each record's time/epoch_s is the mean of the epochs since the previous evaluation: the
    # median of those means covers every epoch of the run.
    intervals = [(r["time/epoch_s"], r["host/gemm_gflops"]) for r in records if "time/epoch_s" in r]
    best_gflops = max(gflops for _, gflops in intervals)
    full_speed = [epoch_s for epoch_s, gflops in intervals if gflops >= FULL_SPEED_FRACTION * best_gflops]

    generator.eval()
    rng = torch.Generator(device=device).manual_seed(1)
    mle_epoch_s = statistics.median(epoch_s for epoch_s, _ in intervals)
    eval_s = median_seconds(lambda: nll_oracle(generator, oracle, 10_000, rng=rng), repeats=5, device=device)
    sample_s = median_seconds(lambda: generator.sample(10_000, generator=rng), repeats=5, device=device)
    final = records[-1]
    print(json.dumps({
        "oracle": source,
        "epochs": config.epochs,
        "nll_oracle": final["eval/nll_oracle"],
        "nll_test": final["eval/nll_test"],
        "nll_oracle_curve": {r["epoch"]: round(r["eval/nll_oracle"], 4) for r in records},
        "paper_mle_nll_oracle": 9.038,
        "original_release_nll_oracle_120": 9.07,
        "wall_s": wall_s,
        "mle_epoch_s": mle_epoch_s,
        "mle_epoch_s_at_full_speed": statistics.median(full_speed),
        "intervals_at_full_speed": f"{len(full_speed)}/{len(intervals)}",
        "epoch_s_and_gemm_gflops": {r["epoch"]: [round(r["time/epoch_s"], 3), round(r["host/gemm_gflops"], 1)]
                                    for r in records if "time/epoch_s" in r},
        "nll_oracle_eval_s": eval_s,
        "sample_10k_s": sample_s,
        "speedup_vs_original": {
            "mle_epoch": ORIGINAL_MLE_EPOCH_S / mle_epoch_s,
            "nll_oracle_eval": ORIGINAL_NLL_ORACLE_EVAL_S / eval_s,
            "sample_10k": ORIGINAL_SAMPLE_10K_S / sample_s,
        },
        "gemm_gflops_at_start": round(gemm_at_start, 1),
        "machine": machine(device),
    }))


if __name__ == "__main__":
    main()
