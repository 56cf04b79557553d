"""The README and docs/*.md: every relative link resolves, and the README stays a landing page.

A relative markdown link ``[text](target)`` must name a file or folder inside
the repository (nothing a user needs may point outside it); a ``#anchor`` must
name a heading of the target markdown file, slugged as GitHub does. Links in
code blocks and code spans are not links and are skipped, as are
``http(s)://`` and ``mailto:`` links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 200

DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines outside fenced code blocks, code spans removed."""
    lines, in_fence = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            lines.append((number, line))
    return lines


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"<[^>]+>", "", text)
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every markdown link in the prose of a file."""
    found = []
    for number, line in _prose_lines(path):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            target = match.group(1)
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            found.append((number, target))
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if target.lower().startswith(EXTERNAL):
            continue
        where = f"{path.relative_to(ROOT)}:{number}: ({target})"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} points outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where} names a path that does not exist")
            continue
        if anchor:
            if resolved.is_dir() or resolved.suffix.lower() != ".md":
                problems.append(f"{where} has an anchor but does not name a markdown file")
            elif unquote(anchor) not in anchors(resolved):
                problems.append(f"{where} names no heading of {resolved.relative_to(ROOT)}")
    return problems


def test_github_slug_matches_githubs_rules():
    assert github_slug("Monte Carlo Q") == "monte-carlo-q"
    assert github_slug("SeqGAN on the oracle, `cpu` preset") == "seqgan-on-the-oracle-cpu-preset"
    assert github_slug("One d-round (3 epochs × 20,000)") == "one-d-round-3-epochs--20000"
    assert github_slug("Bad input: what `seqgan-rl` says") == "bad-input-what-seqgan-rl-says"


def test_docs_exist():
    assert README.is_file()
    assert len(DOC_FILES) > 1, "docs/*.md not found"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path):
    assert links(path), f"{path.relative_to(ROOT)} has no links at all: is the link pattern broken?"
    problems = broken_links(path)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_a_landing_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines, at most {MAX_README_LINES}"
