"""One name for a run's arithmetic: ``exact`` (float32 everywhere, the default) or ``fast``.

``--precision fast`` asks every part of a run for the cheaper arithmetic it has, each within a
stated tolerance of float32 (``tests/test_precision.py`` holds the tolerances):

* the d-steps run under bfloat16 autocast (``d_precision="bf16"``: parameters, gradients, Adam
  and the loss stay float32);
* the Monte Carlo rollout workers score with the discriminator's int8 highway layer
  (``score_precision="int8"``, an int8 GEMM with float32 accumulation).

Both pay only where the discriminator's GEMMs dominate its many small ops: ``fast`` leaves a
discriminator of fewer than ``FAST_MIN_FEATURES`` (1,024) features in float32 (the ``cpu``
preset's 430: there bf16 d-steps were slower and int8 scoring no faster, docs/results.md, 'The cpu
preset in both precision modes'; ``TrainConfig.precision_parts`` in ``seqgan_rl.config``).

Each part still asks its own device whether it has the hardware (``train_precision_on``,
``score_precision_on`` in ``seqgan_rl.distributed.devices``): bfloat16 on a CPU without
AVX512_BF16/AMX is emulated and slower than float32, so there the d-steps stay float32, with one
warning; the int8 GEMM is a CPU path, so a GPU scores in float32 (with TF32 matmuls, see
``enable_fast_matmul``).

What ``fast`` leaves in float32, and why: the generator's sampling, Monte Carlo rollouts and MLE
step. Their vocabulary projection has K = H = 32: a bfloat16 GEMM there is faster, but the step is
bound by the softmax's passes over [rows, 5,000] values, not by the GEMM, and converting the
bfloat16 logits back to float32 for an exact inverse-CDF draw costs more than the GEMM saves. In
the MLE loss the logits must stay float32 (they are the log-likelihood); running only its three
gradient GEMMs in bfloat16 on the converted weights gained nothing beyond the host's noise for an
error in the gradients, so it is not used (both measurements: docs/results.md, 'Every phase
against the original').

The two options the mode sets, ``d_precision`` and ``score_precision``, can still be given
one by one; left unset they follow ``precision`` (``PRECISION_PARTS`` and ``TrainConfig.resolved``
in ``seqgan_rl.config``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""x86 CPU flags (``/proc/cpuinfo``) of native bfloat16 dot products: oneDNN's bf16 kernels use them."""
_INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
"""x86 CPU flags of int8 dot-product instructions (the int8 GEMM runs without them, more slowly)."""


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux x86); empty where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (AVX512_BF16 or AMX-BF16).

    Where ``/proc/cpuinfo`` is missing (macOS, Windows) oneDNN's own check decides."""
    flags = cpu_flags()
    if flags:
        return bool(flags & _BF16_FLAGS)
    checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(checker()) if checker is not None else False
    except RuntimeError:
        return False


def cpu_has_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI or AMX-INT8)."""
    return bool(cpu_flags() & _INT8_DOT_FLAGS)


def bf16_supported_on(device: torch.device) -> bool:
    """Whether bfloat16 autocast is native (faster than float32) on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def enable_fast_matmul(device: torch.device) -> None:
    """TF32 for the float32 matmuls and convolutions of this process on a CUDA ``device`` (``fast`` only)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def hardware_summary() -> dict[str, object]:
    """What this host offers the fast mode: for logs and the benchmarks' JSON."""
    return {
        "cpu_bf16": cpu_has_bf16(),
        "cpu_int8_dot": cpu_has_int8_dot(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda_bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    }
