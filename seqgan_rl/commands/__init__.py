"""The ``seqgan-rl`` command line: one module per sub-command, the parser in ``cli``.

Each module has ``add_parser(subparsers)``, which declares the sub-command's
flags (the option flags generated from ``seqgan_rl.config``) and sets its
handler; handlers import what they need when they run, so ``--help`` is fast.
"""
