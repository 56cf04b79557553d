"""``seqgan-rl sample``: generated sequences from a checkpoint, as text or a Parquet token table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.commands.common import device_flag


def sample(args: argparse.Namespace) -> dict[str, Any]:
    from seqgan_rl.evaluation.generation import write_samples

    return write_samples(args.checkpoint, args.out, args.n, temperature=args.temperature, seed=args.seed,
                         vocab_path=args.vocab, device=device_flag(args.device))


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("sample", help="write generated sequences from a checkpoint")
    parser.add_argument("--checkpoint", type=Path, required=True,
                        help="generator.pt of a train run, checkpoint.pt of a pretrain run, or a run directory")
    parser.add_argument("--out", type=Path, required=True, help="output: .parquet (token table) or text")
    parser.add_argument("--n", type=int, default=1000, help="number of sequences")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=Path, help="vocab.json to decode text (default: found from the run's data)")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(handler=sample)
