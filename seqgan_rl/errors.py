"""User-facing exceptions of seqgan-rl.

Every error a user can fix (bad input file, impossible option) derives from
:class:`SeqGANError`, so the command line catches that one class and prints the
message without a traceback (exit code 2), while genuine bugs still surface as
ordinary tracebacks. The concrete classes also derive from :class:`ValueError`
so library callers that already catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "SeqGANError"]


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
