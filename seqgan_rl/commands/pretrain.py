"""``seqgan-rl pretrain``: MLE pretraining of the generator (every ``PretrainConfig`` option a flag)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.commands.common import default_run_dir, device_flag, refuse_options_on_resume
from seqgan_rl.config import PRESETS, PretrainConfig, get_preset
from seqgan_rl.config.options import add_option_flags, option_overrides

RESUME_OPTIONS = frozenset({"resume", "device", "no_progress"})
"""``pretrain`` options that may go with ``--resume``: a resumed run keeps its own configuration and data."""


def pretrain(args: argparse.Namespace) -> dict[str, Any]:
    """MLE pretraining into a new run directory, or (``--resume``) the rest of the one a run left, once its
    options and data passed the pre-flight checks (``preflight_pretrain``: a directory that is not empty is
    refused for a new run, as ``train`` refuses a run's)."""
    from seqgan_rl.experiment.preflight import preflight_pretrain
    from seqgan_rl.mle import read_pretrain_run, run_pretraining

    device = device_flag(args.device)
    if args.resume:
        refuse_options_on_resume(args, add_pretrain_arguments, RESUME_OPTIONS,
                                 "only --device and --no-progress may go with it")
        config, data_dir, oracle_params = read_pretrain_run(args.resume)
        run_dir = args.resume
    else:
        config = get_preset(args.preset).with_overrides(**option_overrides(args, PretrainConfig))
        run_dir, data_dir, oracle_params = args.run_dir or default_run_dir("pretrain", args.preset), args.data, \
            args.oracle_params
    preflight_pretrain(config, run_dir, data_dir, oracle_params, resume=args.resume is not None)
    return run_pretraining(config, run_dir, data_dir=data_dir, oracle_params=oracle_params, device=device,
                           progress=not args.no_progress, resume=args.resume is not None)


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``pretrain``."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="named configuration")
    parser.add_argument("--data", type=Path, help="directory from prepare-data (default: sample the oracle)")
    parser.add_argument("--oracle-params", type=Path, help="oracle .npz (default: the original file if present)")
    parser.add_argument("--run-dir", type=Path, help="where metrics, plot and checkpoint go: a new or empty "
                        "directory (default: runs/...)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the pretrain run in RUN_DIR from "
                        "its latest evaluation, with its own configuration and data")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_option_flags(parser, PretrainConfig, title="MLE options", presets=PRESETS)


def add_parser(sub: Any) -> None:
    pre = sub.add_parser("pretrain", help="MLE pretraining of the generator",
                         description="MLE pretraining of the generator. Options default to the --preset's values, "
                                     "shown in brackets.")
    add_pretrain_arguments(pre)
    pre.set_defaults(handler=pretrain)
