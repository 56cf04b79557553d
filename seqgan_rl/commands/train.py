"""The ``seqgan-rl train`` command: its flags (every ``TrainConfig`` option one) and the run they start or
resume (``seqgan_rl.experiment.run``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from seqgan_rl.commands.common import default_run_dir, device_flag, refuse_options_on_resume
from seqgan_rl.config import TRAIN_PRESETS, TrainConfig, get_train_preset, refuse_monte_carlo_options
from seqgan_rl.config.options import add_option_flags, option_overrides
from seqgan_rl.errors import ConfigError

RESUME_OPTIONS = frozenset({"resume", "adversarial_batches", "address", "num_cpus", "device", "no_progress",
                            "verbose"})
"""``train`` options that may go with ``--resume``: a resumed run keeps its own configuration and data."""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``train`` (also those of the cluster entry point ``train.py``)."""
    parser.add_argument("--preset", choices=["auto", *sorted(TRAIN_PRESETS)], default="auto",
                        help="named configuration; auto = paper with a GPU, cpu without")
    parser.add_argument("--data", type=Path, help="directory from prepare-data (default: sample the oracle)")
    parser.add_argument("--oracle-params", type=Path, help="oracle .npz (default: the original file if present)")
    parser.add_argument("--generator-checkpoint", type=Path, help="start from this MLE checkpoint (skips MLE)")
    parser.add_argument("--run-dir", type=Path, help="where everything goes (default: runs/seqgan-<preset>-<time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its "
                        "latest checkpoint (with its own configuration; --batches may raise its length)")
    parser.add_argument("--resume-existing", action="store_true",
                        help="with --run-dir: continue the run it holds if there is one (its options must be these, "
                        "--batches may be higher), else start it; a retried job or a resubmitted command picks "
                        "up where it stopped")
    parser.add_argument("--address", help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (MLE phase, evaluation)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Ray's and RLlib's known notices on the terminal (always in the run's log)")
    add_option_flags(parser, TrainConfig, title="training options (default: the --preset's value, in brackets)",
                     presets=TRAIN_PRESETS)


def train(args: argparse.Namespace) -> dict[str, Any]:
    from seqgan_rl.experiment.notices import run_notices
    from seqgan_rl.experiment.run import check_same_options, holds_run, run_training

    if args.resume:
        refuse_options_on_resume(args, add_train_arguments, RESUME_OPTIONS, "only --batches may be raised")
    device = device_flag(args.device)
    preset = args.preset
    if preset == "auto":
        preset = "paper" if device.startswith("cuda") else "cpu"
    overrides = option_overrides(args, TrainConfig)
    config = get_train_preset(preset).with_overrides(**overrides)
    refuse_monte_carlo_options(config.reward.reward_model, overrides)
    if args.resume_existing:
        if args.resume or args.run_dir is None:
            raise ConfigError("--resume-existing goes with --run-dir (the run to continue or start), not --resume")
        if holds_run(args.run_dir):
            check_same_options(args.run_dir, config)
            args.resume = args.run_dir
    run_dir = args.resume or args.run_dir or default_run_dir("seqgan", preset)
    with run_notices(Path(run_dir), verbose=args.verbose):
        summary = run_training(
            config, run_dir, data_dir=args.data, oracle_params=args.oracle_params,
            generator_checkpoint=args.generator_checkpoint, address=args.address, num_cpus=args.num_cpus,
            device=device, resume=args.resume is not None,
            resume_batches=args.adversarial_batches if args.resume else None, progress=not args.no_progress,
        )
    return summary if args.resume else {"preset": preset, **summary}  # a resumed run's preset is not known


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("train", help="SeqGAN training on Ray: MLE, discriminator pretraining, adversarial",
                            description="SeqGAN training on Ray: MLE pretraining, discriminator pretraining, "
                                        "adversarial batches, into one resumable run directory.")
    add_train_arguments(parser)
    parser.set_defaults(handler=train)
