"""Helpers shared by the benchmark scripts: timing and a description of the machine."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gemm_gflops(device: str, seconds: float = 0.5) -> float:
    """The device's fp32 GEMM throughput right now, in GFLOP/s, on the vocabulary projection's shape.

    [256, 32] × [32, 5,000] products (what MLE, evaluation and sampling spend
    most of their time in) are repeated for about ``seconds``. On a shared VM
    the same code runs up to ~1.8× slower while neighbours load the host;
    this figure, printed with every benchmark, says in which state it ran.
    """
    left = torch.randn(256, 32, device=device)
    right = torch.randn(32, 5000, device=device)
    out = torch.empty(256, 5000, device=device)
    torch.mm(left, right, out=out)
    synchronize(device)
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            torch.mm(left, right, out=out)
        synchronize(device)
        repeats += 10
    elapsed = time.perf_counter() - start
    return 2 * 256 * 32 * 5000 * repeats / elapsed / 1e9


def machine(device: str) -> dict[str, Any]:
    """What the numbers were measured on, and how fast the device's GEMMs ran at the end (see ``gemm_gflops``)."""
    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "gemm_gflops_at_end": round(gemm_gflops(device), 1),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
