"""The frontier benchmark's comparison: a run's gain over the control at matched NLL-test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from algorithms import control_at, control_path, gains_over_control, markdown_table  # noqa: E402


def run(curve: list[tuple[int, float, float]], final: tuple[float, float] | None = None) -> dict:
    """A run record as ``run_one`` returns it: [iteration, NLL-oracle, NLL-test] per evaluation."""
    oracle, test = final if final is not None else curve[-1][1:]
    return {"curve": [list(point) for point in curve], "nll_oracle_final": oracle, "nll_test_final": test}


def test_the_control_path_is_the_mean_over_seeds_at_each_evaluation() -> None:
    seeds = [run([(0, 9.0, 9.0), (10, 8.8, 9.1)]), run([(0, 9.0, 9.0), (10, 8.6, 9.3)])]
    assert control_path(seeds) == [(9.0, 9.0), (pytest.approx(9.2), pytest.approx(8.7))]


def test_the_gain_is_the_controls_nll_oracle_at_the_runs_nll_test_minus_the_runs() -> None:
    path = [(9.0, 9.0), (9.2, 8.6)]  # (NLL-test, NLL-oracle): the control loses 2 nats of NLL-oracle per nat
    assert control_at(path, 9.1) == (pytest.approx(8.8), False)
    assert control_at(path, 9.3) == (pytest.approx(8.4), True)  # beyond the control's end: its last segment
    gains = gains_over_control([run([(20, 8.7, 9.1)]), run([(20, 8.5, 9.1)]), run([(20, 8.5, 9.3)])], path)
    assert gains["mean"] == pytest.approx((0.1 + 0.3 - 0.1) / 3)
    assert gains["extrapolated_runs"] == 1


def test_the_markdown_table_shows_mean_and_sd_and_a_dash_where_nothing_was_measured() -> None:
    entry = {"seeds": 3, "nll_oracle_final": {"mean": 8.7, "std": 0.01}, "nll_oracle_gain": {"mean": 0.3, "std": 0.0},
             "nll_test_final": {"mean": 9.1, "std": 0.02}, "gain_over_control": {"mean": 0.12, "std": 0.03},
             "d_spearman": {"mean": float("nan"), "std": float("nan")}, "seconds_per_batch": {"mean": 5.0, "std": 1.0},
             "reward_s_per_batch": {"mean": 2.0, "std": 0.5}, "d_steps_s_per_batch": {"mean": 0.0, "std": 0.0},
             "d_slope": {"mean": 0.42, "std": 0.05}, "d_error_std": {"mean": 12.34, "std": 1.0}}
    row = markdown_table({"control": entry}).splitlines()[-1]
    assert row == ("| control | 3 | 8.700 ± 0.010 | 0.300 ± 0.000 | 9.100 ± 0.020 | 0.120 ± 0.030 | – | – | "
                   "0.42 ± 0.05 | 12.3 ± 1.0 | 5.0 ± 1.0 | 2.0 ± 0.5 | 0.0 ± 0.0 |")
