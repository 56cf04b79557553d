"""User-facing exceptions of seqgan-rl.

Every error a user can fix (bad input file, impossible option) derives from
:class:`SeqGANError`, so the command line catches that one class and prints the
message without a traceback (exit code 2), while genuine bugs still surface as
ordinary tracebacks. The concrete classes also derive from :class:`ValueError`
so library callers that already catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "RunInUseError", "ScorerError", "SeqGANError", "TrainingError"]


class SeqGANError(Exception):
    """Base class of every user-facing error raised by seqgan-rl."""


class DataError(SeqGANError, ValueError):
    """Input data is malformed or inconsistent with what the caller expects.

    Messages name the offending file and, where it applies, the row (0-based,
    stated as such in the message) and the field or column, so a user can find
    the problem without a debugger.
    """


class ConfigError(SeqGANError, ValueError):
    """A configuration value or option combination is impossible."""


class TrainingError(SeqGANError, RuntimeError):
    """Training cannot go on: a Ray actor it needs died and could not be brought back, or the
    discriminator produced scores that are not finite. The message names the actor or the place."""


class ScorerError(TrainingError):
    """The scorer gave no usable reward for a finished episode (training must not go on without it)."""


class RunInUseError(SeqGANError, RuntimeError):
    """Another live process is writing this run directory (``seqgan_rl.storage.files.run_dir_lock``)."""
