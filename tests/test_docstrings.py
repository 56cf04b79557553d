"""Measured numbers live in docs/results.md only: no docstring or comment of the code states one.

A time or a speed-up written into a docstring goes stale the day the code or the
machine changes, and nothing re-measures it. The code states the rule it follows
and links the section of docs/results.md that holds the measurement (e.g.
"docs/results.md, 'The cpu preset in both precision modes'").

Read here: every string statement (module, class and function docstrings, and the
attribute docstrings under constants) found with ``ast``, and every comment found
with ``tokenize``, in every ``.py`` file under ``seqgan_rl/`` and ``envs/``.
Flagged: a number followed by a time unit (``1.47 s``, ``48.5 ms``, ``~21 min``,
``12.4 h``), a speed-up (``1.4×``, ``2x faster``, ``~25 % faster``, ``twice as
fast``) and a measured throughput (``GFLOP/s``). Not flagged: a unit without a
number ("a timeout in seconds"), a product (``512 × 5,000``), a count of work
(``62 GFLOP``); the few settings that do carry a time unit are in ``ALLOWED``.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("seqgan_rl/**/*.py"), *ROOT.glob("envs/**/*.py")])

_NUMBER = r"(?<![\w.])~?\d+(?:[.,]\d+)*(?:\s?[–-]\s?\d+(?:[.,]\d+)*)?"
MEASURED = re.compile(
    "|".join([
        # a time: 1.47 s, 48.5 ms, ~21 min, 12.4 h, 3 seconds, 11.5 days
        _NUMBER + r"\s?(?:ns|µs|us|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?)(?![\w/])",
        # a speed-up: 1.4×, 2x faster, 1.2–1.4x faster, 10× the original, (7.9×)
        _NUMBER + r"\s?[×x]\s*(?:faster|slower|quicker|speed-?up|as fast|the\b|over\b|[),.;:]|$)",
        # a relative time: ~25 % faster, 5 % longer
        _NUMBER + r"\s?%\s+(?:faster|slower|quicker|longer|shorter|less time|more time)",
        r"\b(?:twice|\d+(?:\.\d+)?\s?times)\s+as\s+(?:fast|slow|long)\b",
        # a measured share of the time: ~15 % of a sampling step, ~1% of a d-step
        _NUMBER + r"\s?%\s+of\s+(?:a|an|the|its)\s+(?:[\w'-]+\s+){0,2}?[\w-]*(?:time|step|run|batch|iteration|round)\b",
        # a measured throughput: 186 GFLOP/s
        _NUMBER + r"\s?[GMT]FLOP/s",
    ]),
    re.MULTILINE,
)

ALLOWED: dict[str, str] = {
    # settings, not measurements: each is the value an option or a library default takes
    "RLlib: 60 s": "RLlib's default of delay_between_env_runner_restarts_s, which the pinned 5.0 replaces",
    "at least 10 s": "IMPALA's and APPO's default min_time_s_per_iteration, which build.py sets to 0",
    "~40 s each": "Ray 2.60's retry schedule for a dead address (its timeouts, as Ray's release sets them)",
    "at most 300 s": "the discriminator supervisor's start_timeout_s default",
}


def statements(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of every docstring, attribute docstring and comment of a source file."""
    source = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            found.append((node.value.lineno, node.value.value))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def measured_numbers(text: str, first_line: int = 1) -> list[tuple[int, str]]:
    """(line, phrase) of each measured time or speed-up in ``text``, those in ``ALLOWED`` left out."""
    hits = []
    for match in MEASURED.finditer(text):
        around = text[max(match.start() - 20, 0):match.end() + 20].replace("\n", " ")
        around = re.sub(r"\s+", " ", around)
        if any(phrase in around for phrase in ALLOWED):
            continue
        hits.append((first_line + text.count("\n", 0, match.start()), match.group(0).strip()))
    return hits


@pytest.mark.parametrize("text", [
    "a d-step took 48.5 ms in fp32", "10,000 sequences: 1.47 s", "the cpu preset takes ~21 min",
    "1.2–1.4x faster steps", "about 2x faster on CPU", "forward + backward ~25 % faster",
    "a bfloat16 GEMM is twice as fast", "whole schedule 12.4 h", "GEMMs at 186 GFLOP/s", "(7.9×)",
    "reaches 10× the original", "(~15 % of a sampling step at V = 5,000)", "~5 % of the rollouts' time",
    "costs ~1% of a d-step",
])
def test_a_measured_number_is_flagged(text: str) -> None:
    assert measured_numbers(text), text


@pytest.mark.parametrize("text", [
    "a timeout in seconds", "512 × 5,000 float32 logits are 10 MB", "4 epochs x 4 minibatches",
    "62 GFLOP of output projection", "returns (M, T) int64", "0x7f", "16 rollouts per prefix",
    "max |dp| <= 1.5e-2", "shape [B, T] x H", "RLlib: 60 s, slept by an EnvRunner",
    "usually seconds", "~40% of the FLOPs", "below 1e-10 for 93 % of the MLE generator's samples",
])
def test_a_definition_is_not_flagged(text: str) -> None:
    assert not measured_numbers(text), measured_numbers(text)


def test_the_sources_are_read() -> None:
    assert len(SOURCES) > 30
    texts = [text for path in SOURCES for _, text in statements(path)]
    assert any(text.startswith("#") for text in texts) and any("\n" in text for text in texts)


def test_no_docstring_or_comment_states_a_measured_number() -> None:
    found = []
    for path in SOURCES:
        for line, text in statements(path):
            for number, phrase in measured_numbers(text, line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {phrase!r}")
    assert not found, ("state the rule and link the docs/results.md section instead of these measured "
                       "numbers:\n" + "\n".join(found))
