"""Sampling throughput of the generator at the paper's size (vocabulary 5,000, length 20).

Prints a JSON object as its last line: sequences/s when sampling at batch 64
and 10,000 sequences at once, and the naive loop (softmax + torch.multinomial
per step) for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_seconds, pick_device  # noqa: E402

from seqgan_rl.models.generator import Generator, GeneratorConfig  # noqa: E402


@torch.no_grad()
def naive_sample(model: Generator, num: int) -> torch.Tensor:
    """The straightforward loop: logits, softmax, multinomial, one step at a time."""
    state = model.initial_state(num)
    previous = model.start_tokens(num)
    out = []
    for _ in range(model.seq_len):
        logits, state = model.step(previous, state)
        previous = torch.multinomial(torch.softmax(logits, dim=1), 1).squeeze(1)
        out.append(previous)
    return torch.stack(out, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = Generator(GeneratorConfig()).to(device)
    result: dict = {"setting": {"vocab_size": 5000, "seq_len": 20, "emb_dim": 32, "hidden_dim": 32}}
    batch64 = median_seconds(lambda: model.sample(64), repeats=10 * args.repeats, device=device)
    sample10k = median_seconds(lambda: model.sample(10_000), repeats=args.repeats, device=device)
    naive10k = median_seconds(lambda: naive_sample(model, 10_000), repeats=1, warmup=0, device=device)
    result.update({
        "batch64_s": batch64,
        "batch64_sequences_per_s": 64 / batch64,
        "sample_10k_s": sample10k,
        "sample_10k_sequences_per_s": 10_000 / sample10k,
        "naive_multinomial_10k_s": naive10k,
        "speedup_vs_naive_10k": naive10k / sample10k,
        "tokens_per_s_10k": 10_000 * 20 / sample10k,
        "machine": machine(device),
    })
    print(json.dumps(result))


if __name__ == "__main__":
    main()
