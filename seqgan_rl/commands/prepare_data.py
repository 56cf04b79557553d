"""``seqgan-rl prepare-data`` and ``seqgan-rl convert-oracle``: the data a run trains on."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.errors import ConfigError


def prepare_data(args: argparse.Namespace) -> dict[str, Any]:
    if bool(args.text) == bool(args.oracle):
        raise ConfigError("prepare-data needs exactly one of --text FILE or --oracle")
    if args.text:
        from seqgan_rl.data.text import prepare_text_dataset

        return dict(prepare_text_dataset(
            args.text, args.out, level=args.level, max_len=args.max_len, min_freq=args.min_freq,
            valid_fraction=args.valid_fraction, seed=args.seed, lowercase=not args.keep_case,
        ))
    from seqgan_rl.data.oracle_data import load_oracle, write_oracle_dataset

    if args.num_train <= 0 or args.num_valid < 0:
        raise ConfigError(f"--num-train must be > 0 and --num-valid >= 0, got {args.num_train}, {args.num_valid}")
    oracle, source = load_oracle(args.oracle_params)
    return write_oracle_dataset(args.out, oracle, source, args.num_train, args.num_valid, args.seed)


def convert_oracle(args: argparse.Namespace) -> dict[str, Any]:
    from seqgan_rl.models.oracle import convert_oracle_pickle

    oracle = convert_oracle_pickle(args.pickle, args.out)
    return {"out": str(args.out), "vocab_size": oracle.vocab_size, "emb_dim": oracle.config.emb_dim,
            "hidden_dim": oracle.config.hidden_dim}


def add_parser(sub: Any) -> None:
    prep = sub.add_parser("prepare-data", help="tokenise a corpus or sample the oracle into Parquet token tables")
    prep.add_argument("--out", type=Path, required=True, help="output directory")
    prep.add_argument("--text", type=Path, help="UTF-8 text corpus, one sequence per line")
    prep.add_argument("--level", choices=("word", "char"), default="word", help="tokenisation level (text)")
    prep.add_argument("--max-len", type=int, help="sequence length incl. <eos> (text; default: longest line + 1)")
    prep.add_argument("--min-freq", type=int, default=1, help="rarer tokens become <unk> (text)")
    prep.add_argument("--valid-fraction", type=float, default=0.1, help="held-out share (text)")
    prep.add_argument("--keep-case", action="store_true", help="do not lower-case (text)")
    prep.add_argument("--oracle", action="store_true", help="sample the synthetic oracle instead of a corpus")
    prep.add_argument("--oracle-params", type=Path,
                      help="oracle .npz (default: ../shared/data/oracle_lstm_params.npz if present, else a fresh "
                           "N(0,1) oracle whose figures are not the paper's)")
    prep.add_argument("--num-train", type=int, default=10_000, help="oracle training sequences")
    prep.add_argument("--num-valid", type=int, default=10_000, help="held-out oracle sequences (NLL-test)")
    prep.add_argument("--seed", type=int, default=1234, help="split / sampling seed")
    prep.set_defaults(handler=prepare_data)

    conv = sub.add_parser("convert-oracle", help="convert the authors' target_params_py3.pkl into .npz")
    conv.add_argument("pickle", type=Path, help="save/target_params_py3.pkl of the original SeqGAN release")
    conv.add_argument("--out", type=Path, required=True, help="output .npz path")
    conv.set_defaults(handler=convert_oracle)
