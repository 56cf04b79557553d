"""Known-benign notices of Ray and RLlib go to the run's log file, not the terminal.

A first run's terminal should show progress, results and real problems. At
start-up Ray 2.60 and RLlib log a few notices that say nothing about this run's
health. All of them are Python ``logging`` records of the driver process (the
process that runs ``train``): actors' output is not forwarded
(``ray.init(log_to_driver=False)``), and none of them is printed by a C++
component or raised with ``warnings.warn``. They reach the terminal through the
``PlainRayHandler`` that ``import ray`` puts on the ``ray`` logger
(``ray/_private/log.py``). ``KNOWN_NOTICES`` lists each one by the logger that
emits it and a pattern of its message:

* token authentication (``ray/_private/authentication/authentication_token_setup.py:85``,
  ``_warn_token_auth_enabled``, called by ``ray.init`` for a new local Ray);
* "You are running SeqGAN on the new API stack!"
  (``ray/rllib/algorithms/algorithm_config.py:5160``, ``AlgorithmConfig.validate``);
* "DeprecationWarning: `RLModule(config=[RLModuleConfig object])` has been
  deprecated" (logged by ``ray/_common/deprecation.py:61``, a ``logger.warning``
  attributed with ``stacklevel=3`` to ``ray/rllib/core/rl_module/rl_module.py:463``):
  RLlib's own ``RLModule.__init__`` builds an ``RLModuleConfig`` for every
  module, also when the module is built the supported way, with keyword
  arguments (``RLModuleSpec.build``); only that record (from that file and
  function) is known, the same deprecation caused anywhere else still shows;
* "Started a local Ray instance." (``ray/_private/worker.py:2038``, INFO) and
  "Install gputil for GPU system monitoring." (``ray/tune/utils/util.py:62``,
  Tune's utilisation monitor, which this project does not use).

``run_notices`` puts a filter on exactly those loggers (not on their handlers:
Ray adds its handler only when ``ray`` is first imported, possibly inside the
block). A matching record at WARNING or below is written to
``<run_dir>/notices.log`` and, unless ``verbose``, goes no further; every other
record, and every error, reaches the terminal as before. Records that arrive
before ``run_dir`` exists are kept in memory until it does: ``run_notices``
never creates the directory (a run refused for bad input leaves none), and if
the block ends before the directory exists they are dropped (with ``verbose``
they were shown). No level, handler or ``warnings`` filter is changed; the
loggers' filters are removed when the block ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

NOTICES_FILE = "notices.log"


@dataclass(frozen=True)
class KnownNotice:
    """One benign notice: a record of ``logger`` whose message matches ``pattern`` (``re.match``)."""

    logger: str
    """The exact name of the logger that emits it (its module's ``__name__``)."""
    pattern: str
    source: str = ""
    """If set, the record must be attributed to a file whose path ends with this (``/``-separated)."""
    function: str = ""
    """If set, the record must also be attributed to this function."""

    def matches(self, record: logging.LogRecord) -> bool:
        if record.name != self.logger or record.levelno > logging.WARNING:
            return False
        if self.source and not Path(os.path.normpath(record.pathname)).as_posix().endswith(self.source):
            return False
        if self.function and record.funcName != self.function:
            return False
        return re.match(self.pattern, record.getMessage()) is not None


KNOWN_NOTICES: tuple[KnownNotice, ...] = (
    KnownNotice("ray._private.authentication.authentication_token_setup",
                r"Token authentication is enabled for this Ray cluster\. Set RAY_AUTH_MODE=disabled to opt out\."),
    KnownNotice("ray._private.worker", r"Started a local Ray instance\.$"),
    KnownNotice("ray.rllib.algorithms.algorithm_config",
                r"You are running \w+ on the new API stack! This is the new default behavior for this algorithm\."),
    KnownNotice("ray._common.deprecation",
                r"DeprecationWarning: `RLModule\(config=\[RLModuleConfig object\]\)` has been deprecated\.",
                source="ray/rllib/core/rl_module/rl_module.py", function="__init__"),
    KnownNotice("ray.tune.utils.util", r"Install gputil for GPU system monitoring\.$"),
)
"""Ray's and RLlib's notices that are benign for a run (warnings and info only; errors always show)."""


class _NoticeFile:
    """``run_dir/notices.log``, opened (for appending) at the first notice once ``run_dir`` exists."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / NOTICES_FILE
        self.pending: list[str] = []
        self.file: TextIO | None = None
        self.lock = threading.Lock()
        self.formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s (%(filename)s:%(lineno)d): "
                                           "%(message)s")

    def write(self, record: logging.LogRecord) -> None:
        line = self.formatter.format(record) + "\n"
        with self.lock:
            self.pending.append(line)
            self._flush()

    def _flush(self) -> None:
        if self.file is None:
            if not self.path.parent.is_dir():
                return
            self.file = self.path.open("a", encoding="utf-8")
        self.file.writelines(self.pending)
        self.file.flush()
        self.pending.clear()

    def close(self) -> None:
        with self.lock:
            if self.pending:
                self._flush()
            self.pending.clear()
            if self.file is not None:
                self.file.close()
                self.file = None


class _NoticeFilter(logging.Filter):
    """On a notice's logger: known notices go to the file and, unless ``verbose``, no further."""

    def __init__(self, notices: tuple[KnownNotice, ...], sink: _NoticeFile, verbose: bool) -> None:
        super().__init__()
        self.notices, self.sink, self.verbose = notices, sink, verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if not any(notice.matches(record) for notice in self.notices):
            return True
        try:
            self.sink.write(record)
        except OSError:  # the log file cannot be written: show the notice rather than lose it
            return True
        return self.verbose


@contextlib.contextmanager
def run_notices(run_dir: Path, *, verbose: bool = False) -> Iterator[Path]:
    """Within the block, ``KNOWN_NOTICES`` go to ``run_dir/notices.log`` (also to the terminal with
    ``verbose``); everything else is untouched. Yields the log's path; creates neither it nor ``run_dir``."""
    sink = _NoticeFile(Path(run_dir).absolute())
    installed: list[tuple[logging.Logger, _NoticeFilter]] = []
    for name in dict.fromkeys(notice.logger for notice in KNOWN_NOTICES):
        logger = logging.getLogger(name)
        notice_filter = _NoticeFilter(tuple(n for n in KNOWN_NOTICES if n.logger == name), sink, verbose)
        logger.addFilter(notice_filter)
        installed.append((logger, notice_filter))
    try:
        yield sink.path
    finally:
        for logger, notice_filter in installed:
            logger.removeFilter(notice_filter)
        sink.close()
