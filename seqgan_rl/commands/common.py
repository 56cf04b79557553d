"""What several sub-commands share: the --device flag's device, run-directory names, ``--resume``'s rule."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from seqgan_rl.errors import ConfigError, SeqGANError


def device_flag(name: str) -> str:
    """``auto`` → ``cuda`` when a GPU is present, else ``cpu``; a CUDA device without CUDA is refused."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqGANError(f"--device {name}: CUDA is not available on this machine")
    return name


def default_run_dir(kind: str, preset: str) -> Path:
    """``runs/<kind>-<preset>-<date-time>``: where a run goes when no ``--run-dir`` is given."""
    return Path("runs") / f"{kind}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"


def refuse_options_on_resume(args: argparse.Namespace, add_arguments: Callable[[argparse.ArgumentParser], None],
                             allowed: frozenset[str], rule: str) -> None:
    """Raise if ``--resume`` comes with an option it would ignore: the run's ``config.json`` decides them.

    ``add_arguments`` declares the command's flags (their defaults tell what was given); ``allowed`` are
    the options a resume may take, ``rule`` says which in the message.
    """
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = vars(parser.parse_args([]))
    given = [f"--{name.replace('_', '-')}" for name, value in vars(args).items()
             if name in defaults and name not in allowed and value != defaults[name]]
    if given:
        raise ConfigError(f"--resume continues {args.resume} with its own configuration and data; "
                          f"{', '.join(given)} cannot change them ({rule})")
