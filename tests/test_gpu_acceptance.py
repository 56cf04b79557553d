"""``benchmarks/gpu_acceptance.py``, the run for a GPU machine, exercised on the CPU.

A GPU is lent for minutes with a bare CUDA image (torch, numpy, pyarrow; no
Ray, tqdm or matplotlib): the script must run there on the first try. These
tests run it here the same way, with Ray, tqdm and matplotlib made
unimportable (``sys.modules[name] = None``), and read its one JSON object.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.py"
ABSENT = ("ray", "tqdm", "matplotlib")
"""Not on the GPU image."""

CHECKS = {"sampling_chi_square", "projection", "monte_carlo_q", "discriminator_scores", "discriminator_d_step",
          "generator_mle_loss", "d_round_bf16"}
TIMINGS = {"mle_epoch_measured_s", "nll_oracle_eval_measured_s", "nll_test_eval_measured_s", "sample_measured_s",
           "mc_batch_measured_s", "mc_rollouts_only_measured_s", "mc_batch_cpu_chunk_rows_measured_s",
           "d_round_measured_s", "d_round_bf16_measured_s", "adversarial_g_step_measured_s"}
ESTIMATE = {"mle_phase_estimated_s", "d_pretrain_estimated_s", "adversarial_phase_estimated_s",
            "paper_preset_estimated_s"}
PARTS = {"mle_epoch", "nll_oracle_eval", "nll_test_eval", "sample", "mc_batch", "d_round_fp32", "d_round_bf16",
         "adversarial_g_step", "slice", *(f"check {name}" for name in CHECKS - {"d_round_bf16"})}


def run_without(absent: tuple[str, ...], *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """Run the script as ``__main__`` in a fresh interpreter where ``absent`` cannot be imported."""
    wrapper = (f"import runpy, sys\n"
               f"for name in {absent!r}:\n"
               f"    sys.modules[name] = None  # `import name` raises ImportError\n"
               f"{prelude}"
               f"sys.argv = [{str(SCRIPT)!r}, *{list(args)!r}]\n"
               f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", wrapper], cwd=ROOT, capture_output=True, text=True, timeout=600)


def one_json_object(stdout: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object, got {len(lines)} lines"
    return json.loads(lines[0])


@pytest.mark.slow
def test_cpu_run_reports_every_check_timing_and_estimate() -> None:
    result = run_without(ABSENT, "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    report = one_json_object(result.stdout)
    assert set(report["checks"]) == CHECKS
    assert all(check["passed"] and check["tolerance"] for check in report["checks"].values()), report["checks"]
    assert report["all_checks_passed"] is True and report["failed_checks"] == []
    assert set(report["timings"]) == TIMINGS
    assert all(value > 0 for key, value in report["timings"].items() if key != "mc_batch_cpu_chunk_rows_measured_s")
    assert report["timings"]["mc_batch_cpu_chunk_rows_measured_s"] is None  # measured on a GPU only
    assert set(report["estimate"]) == ESTIMATE
    parts = sum(value for key, value in report["estimate"].items() if key != "paper_preset_estimated_s")
    assert report["estimate"]["paper_preset_estimated_s"] == pytest.approx(parts)
    assert set(report["goals"]) == {"mc_batch_measured_s", "d_round_measured_s"}
    assert all(goal["met"] is None for goal in report["goals"].values())  # the paper setting's goals
    assert "not the paper preset" in report["estimate_basis"]
    assert {"measured_s", "estimated_s", "measured_over_estimated"} <= set(report["slice"])
    assert report["peak_memory_measured_bytes"] == dict.fromkeys(PARTS)  # null on CPU
    assert report["setting"]["name"] == "reduced" and report["environment"]["device"] == "cpu"
    assert report["wall_measured_s"] < 300


@pytest.mark.slow
def test_a_failed_check_is_reported_and_exits_non_zero() -> None:
    """The checks can fail: with the folded projection's logits made 5 % too large (in the sampler's and the
    projection module's namespaces), the sampler and the fused projection no longer match their float64
    references, and the run says so and exits with 1."""
    broken = ("import torch\n"
              "from seqgan_rl.models import categorical, projection\n"
              "def too_large(weight_t, bias, scale=1.0):\n"
              "    return torch.cat([weight_t, bias.unsqueeze(0)]).mul_(scale * 1.05)\n"
              "projection.folded_projection = categorical.folded_projection = too_large\n")
    result = run_without(ABSENT, "--device", "cpu", "--checks-only", prelude=broken)
    assert result.returncode == 1, result.stderr[-3000:]
    report = one_json_object(result.stdout)
    assert {"sampling_chi_square", "projection"} <= set(report["failed_checks"])
    assert report["all_checks_passed"] is False and "timings" not in report


def test_script_imports_only_torch_numpy_and_the_ray_free_core() -> None:
    """Importing the script adds no third-party package to what torch and numpy bring (the image has those),
    only seqgan_rl's core and ``benchmarks/_common.py``; with Ray, tqdm and matplotlib unimportable."""
    probe = (f"import runpy, sys\n"
             f"for name in {ABSENT!r}:\n"
             f"    sys.modules[name] = None\n"
             f"import torch, numpy, pyarrow\n"
             f"def top():\n"
             f"    return {{m.split('.')[0] for m, v in list(sys.modules.items()) if v is not None}}\n"
             f"before = top()\n"
             f"runpy.run_path({str(SCRIPT)!r}, run_name='gpu_acceptance')\n"
             f"new = top() - before - set(sys.stdlib_module_names)\n"
             f"print(sorted(new))\n"
             f"print(sorted(m for m in sys.modules if m.startswith('seqgan_rl')))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    new, core = (ast.literal_eval(line) for line in result.stdout.strip().splitlines())  # two printed lists
    assert set(new) <= {"seqgan_rl", "_common"}, new  # _common: the benchmarks' helpers (torch and the core)
    assert not [m for m in core if m.split(".")[1:2] in (["distributed"], ["rllib"], ["experiment"], ["commands"])]
    assert "seqgan_rl.mle" not in core  # imports tqdm


def test_gpu_chunk_rows_match_the_rollout_workers() -> None:
    """The script times the Monte Carlo batch with the chunking a rollout worker uses on a GPU."""
    import runpy

    import torch

    from seqgan_rl.distributed.devices import sampling_chunk_rows
    from seqgan_rl.models.categorical import SAMPLING_CHUNK_ROWS

    script = runpy.run_path(str(SCRIPT), run_name="gpu_acceptance")
    assert script["GPU_CHUNK_ROWS"] == sampling_chunk_rows(torch.device("cuda"), SAMPLING_CHUNK_ROWS)
    assert sampling_chunk_rows(torch.device("cpu"), SAMPLING_CHUNK_ROWS) == SAMPLING_CHUNK_ROWS
