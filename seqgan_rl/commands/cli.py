"""The ``seqgan-rl`` command: its sub-commands and the one-line error convention.

Every user-facing error (bad data, impossible config) is printed as one line
naming the file / row / field, with exit status 2 and no traceback; a
command's summary is printed as JSON on its last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from seqgan_rl.commands import evaluate, prepare_data, pretrain, sample, train, tune
from seqgan_rl.errors import SeqGANError

DESCRIPTION = """\
SeqGAN (sequence GANs trained with policy gradient and Monte Carlo search) on
Ray RLlib and PyTorch: MLE-pretrain a generator, pretrain a CNN discriminator,
then train the generator against it with Monte Carlo rewards, on one machine
or a Ray cluster."""

EPILOG = """\
a first run (about a minute, on a CPU):
  seqgan-rl train --preset smoke

the paper's experiment (synthetic oracle; `cpu` preset without a GPU):
  seqgan-rl train --preset auto
then:
  seqgan-rl sample --checkpoint runs/<run> --n 10 --out samples.txt
  seqgan-rl evaluate --checkpoint runs/<run> --json

`seqgan-rl COMMAND --help` lists a command's options."""

COMMANDS = (prepare_data, pretrain, train, sample, evaluate, tune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan-rl", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; prints the command's summary as JSON on its last line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        summary = args.handler(args)
    except SeqGANError as error:
        print(f"seqgan-rl {args.command}: error: {error}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
