"""``seqgan-rl pretrain``: MLE pretraining of the generator (every ``PretrainConfig`` option a flag)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.commands.common import default_run_dir, device_flag
from seqgan_rl.config import PRESETS, PretrainConfig, get_preset
from seqgan_rl.config.options import add_option_flags, option_overrides


def pretrain(args: argparse.Namespace) -> dict[str, Any]:
    """MLE pretraining into a new run directory, once its options and data passed the pre-flight checks
    (``preflight_pretrain``: a directory that is not empty is refused, as ``train`` refuses a run's)."""
    from seqgan_rl.experiment.preflight import preflight_pretrain
    from seqgan_rl.mle import run_pretraining

    config = get_preset(args.preset).with_overrides(**option_overrides(args, PretrainConfig))
    run_dir = args.run_dir or default_run_dir("pretrain", args.preset)
    device = device_flag(args.device)
    preflight_pretrain(config, run_dir, args.data, args.oracle_params)
    return run_pretraining(config, run_dir, data_dir=args.data, oracle_params=args.oracle_params, device=device,
                           progress=not args.no_progress)


def add_parser(sub: Any) -> None:
    pre = sub.add_parser("pretrain", help="MLE pretraining of the generator",
                         description="MLE pretraining of the generator. Options default to the --preset's values, "
                                     "shown in brackets.")
    pre.add_argument("--preset", choices=sorted(PRESETS), default="paper", help="named configuration")
    pre.add_argument("--data", type=Path, help="directory from prepare-data (default: sample the oracle)")
    pre.add_argument("--oracle-params", type=Path, help="oracle .npz (default: the original file if present)")
    pre.add_argument("--run-dir", type=Path, help="where metrics, plot and checkpoint go: a new or empty directory "
                     "(default: runs/...)")
    pre.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_option_flags(pre.add_argument_group("MLE options"), PretrainConfig, presets=PRESETS)
    pre.set_defaults(handler=pretrain)
