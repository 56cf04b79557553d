"""``benchmarks/vs_original.py``: the schedule arithmetic and one real phase in both precision modes."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "vs_original.py"


def test_the_original_paper_schedule_is_eleven_and_a_half_days() -> None:
    """The extrapolation counts the paper preset's phases: 120 MLE epochs, 64 evaluations, 1,050 d-rounds and
    200 generator steps of the original release come to 993,622 s (11.5 days), the figure the docs quote."""
    module = runpy.run_path(str(SCRIPT), run_name="vs_original")
    original = module["paper_schedule_s"](module["ORIGINAL_S"])
    assert original == pytest.approx(120 * 16.2 + 64 * 15.9 + 1050 * 940 + 200 * 18.3)
    assert original / 86_400 == pytest.approx(11.5, abs=0.01)
    doubled = module["paper_schedule_s"]({name: 2 * s for name, s in module["ORIGINAL_S"].items()})
    assert doubled == pytest.approx(2 * original)


@pytest.mark.slow
def test_one_phase_in_both_modes_prints_a_table_and_json() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--phases", "sample_10k", "--repeats", "1"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert set(report["results"]) == {"exact", "fast"}
    for mode in ("exact", "fast"):
        sample = report["results"][mode]["sample_10k"]
        assert sample["precision"] == mode and sample["seconds"] > 0
        assert sample["speedup"] == pytest.approx(9.2 / sample["seconds"])
        assert "paper_schedule" not in report["results"][mode]  # needs every phase
    assert report["gemm_gflops_at_start"] > 0 and report["machine"]["gemm_gflops_at_end"] > 0
    assert lines[0].startswith("| phase | original, s | exact, s")
    assert any(line.startswith("| sample_10k | 9.2 |") for line in lines)
