"""Helpers shared by the benchmark scripts: timing, a description of the machine, the generator's steps.

Imports only torch and the Ray-free core, so that ``gpu_acceptance.py`` can use it on a bare GPU image.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from seqgan_rl.config import TrainConfig
from seqgan_rl.mc import MonteCarloQ
from seqgan_rl.models.generator import Generator, GeneratorConfig


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU), so that a wall-clock time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def generator_step(generator: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float) -> None:
    """One update of the generator on ``loss`` (0-dim) as training makes it: gradients zeroed, ``loss``'s
    backward, their global norm clipped at ``grad_clip``, the optimizer's step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(generator.parameters(), grad_clip)
    optimizer.step()


def adversarial_g_step(generator: Any, rollout: Any, engine: Any, discriminator: Any,
                       optimizer: torch.optim.Optimizer, batch: int, rng: torch.Generator) -> None:
    """One adversarial generator step of the core loop, without RLlib: ``batch`` sequences sampled from G
    (a ``Generator``), their Monte Carlo Q (``engine``, a ``MonteCarloQ``) by the rollout policy (a
    ``RolloutPolicy``) scored by ``discriminator``, SeqGAN's policy gradient −Σ_(b,t) log G(y_t | y_<t) · Q_t
    (summed, as the original release) clipped at the adversarial phase's default
    (``TrainConfig.algorithm.grad_clip``), then the rollout policy's β update."""
    with torch.no_grad():
        sequences = generator.sample(batch, generator=rng)  # (B, T)
        q = engine(sequences, rollout.model, discriminator, generator=rng)  # (B, T)
    loss = -(generator.log_prob(sequences) * q).sum()
    generator_step(generator, optimizer, loss, TrainConfig().algorithm.grad_clip)
    rollout.update(generator)


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


def paper_q_setting(device: str, batch: int = 64, num_rollouts: int = 16) -> tuple[GeneratorConfig, Generator,
                                                                                   torch.Tensor, MonteCarloQ]:
    """The paper's Monte Carlo setting, seeded: its generator config, a random generator in eval mode on
    ``device``, ``batch`` sequences (batch, T) sampled from it and an engine of ``num_rollouts`` completions."""
    torch.manual_seed(0)
    config = GeneratorConfig()
    policy = Generator(config).to(device).eval()
    return config, policy, policy.sample(batch), MonteCarloQ(num_rollouts=num_rollouts)
