"""The one place that calls private PyTorch operators, each checked at import with a public fallback.

Two hot paths want kernels that PyTorch only exposes under private names:

* ``softmax_``: ``torch._softmax`` with ``out=`` set to its own input normalises a [rows, V] block
  in place, one fused pass per row and no second [rows, V] buffer (``projection.linear_log_prob``
  and the MLE loss).
* ``int8_matmul``: ``torch._int_mm`` is the int8 x int8 -> int32 GEMM behind the discriminator's
  ``precision="int8"`` highway layer.

Private operators may change or vanish between releases without notice. At import each one is run
on a tiny input and compared with public operations; one that raises or answers wrongly is replaced
by its public equivalent (same values, one extra temporary or a float64 GEMM), and the module-level
booleans ``PRIVATE_SOFTMAX`` and ``PRIVATE_INT_MM`` say which path is in use.
``public_ops()`` forces the public paths for the duration of a ``with`` block, so tests can compare
both in one process. This module imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

__all__ = [
    "PRIVATE_INT_MM",
    "PRIVATE_SOFTMAX",
    "int8_matmul",
    "public_ops",
    "softmax_",
]


def _private_softmax_(x: Tensor, dim: int) -> Tensor:
    return torch._softmax(x, dim, False, out=x)


def _public_softmax_(x: Tensor, dim: int) -> Tensor:
    return x.copy_(torch.softmax(x, dim))


def _private_int8_matmul(a: Tensor, b: Tensor) -> Tensor:
    return torch._int_mm(a, b)


def _public_int8_matmul(a: Tensor, b: Tensor) -> Tensor:
    # Every partial sum is an integer of magnitude <= K * 128 * 128 = K * 2^14, which float64 holds
    # exactly up to K = 2^39 (float32 only up to K = 2^10, fewer than the discriminator's 1,720).
    return torch.mm(a.double(), b.double()).to(torch.int32)


def _normalises_in_place(op: Callable[[Tensor, int], Tensor], reference: Callable[[Tensor, int], Tensor]) -> bool:
    """Whether ``op(x, 1)`` writes ``reference(x, 1)`` into ``x`` and returns it, for float32 and float64."""
    for dtype in (torch.float32, torch.float64):
        x = torch.linspace(-4.0, 4.0, 24, dtype=dtype).view(4, 6) ** 2  # (4, 6), rows of different spread
        expected = reference(x, 1)
        result = op(x, 1)
        if result.data_ptr() != x.data_ptr() or not torch.allclose(x, expected, rtol=1e-6, atol=1e-7):
            return False
    return True


def _multiplies_int8_exactly(op: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """Whether ``op`` returns the exact int32 product of int8 matrices, including the -128 and 127 extremes.

    The shapes, (32, 16) @ (16, 8), also meet ``torch._int_mm``'s CUDA rules (rows > 16, K and N multiples
    of 8); on CPU it accepts any shape. The reference sums int64 products elementwise (public, exact).
    """
    a = (torch.arange(32 * 16) * 37 % 256 - 128).to(torch.int8).view(32, 16)  # (32, 16) over the int8 range
    b = (torch.arange(16 * 8) * 91 % 256 - 128).to(torch.int8).view(16, 8)  # (16, 8)
    a[0], b[:, 0] = -128, -128  # the largest product sum, 16 * 2^14
    expected = (a.long().unsqueeze(2) * b.long().unsqueeze(0)).sum(dim=1)  # (32, 8)
    result = op(a, b)
    return result.dtype == torch.int32 and torch.equal(result.long(), expected)


def _works(check: Callable[[], bool]) -> bool:
    """Run a probe; a probe that raises means the private operator is missing or broken."""
    try:
        return check()
    except Exception:  # any failure of a private operator selects the public path
        return False


PRIVATE_SOFTMAX: bool = _works(lambda: _normalises_in_place(_private_softmax_, torch.softmax))
"""True when ``softmax_`` runs ``torch._softmax`` in place (the import probe passed and no ``public_ops()``)."""

PRIVATE_INT_MM: bool = _works(lambda: _multiplies_int8_exactly(_private_int8_matmul))
"""True when ``int8_matmul`` runs ``torch._int_mm`` (probed on CPU, where the discriminator calls it)."""

_softmax_impl = _private_softmax_ if PRIVATE_SOFTMAX else _public_softmax_
_int8_matmul_impl = _private_int8_matmul if PRIVATE_INT_MM else _public_int8_matmul


def softmax_(x: Tensor, dim: int) -> Tensor:
    """Softmax of ``x`` along ``dim``, written into ``x`` (any floating shape, e.g. [rows, V] logits).

    In place so a chunk of logits becomes its probabilities without a second [rows, V] buffer
    competing for the cache. Returns ``x``.
    """
    return _softmax_impl(x, dim)


def int8_matmul(a: Tensor, b: Tensor) -> Tensor:
    """Exact ``a @ b`` of int8 matrices a [M, K] and b [K, N] as an int32 [M, N] tensor.

    The int8 GEMM that makes the discriminator's quantised highway layer cheap. Results are exact
    while they fit int32 (K <= 2^17 for any int8 values). On CUDA the private kernel additionally
    needs M > 16 and K, N multiples of 8; the discriminator only calls this on CPU.
    """
    return _int8_matmul_impl(a, b)


@contextmanager
def public_ops() -> Iterator[None]:
    """Use the public fallbacks inside the ``with`` block (and report them via the ``PRIVATE_*`` flags).

    For tests that compare the private and public paths in one process; not thread-safe.
    """
    global PRIVATE_SOFTMAX, PRIVATE_INT_MM, _softmax_impl, _int8_matmul_impl
    saved = PRIVATE_SOFTMAX, PRIVATE_INT_MM, _softmax_impl, _int8_matmul_impl
    PRIVATE_SOFTMAX = PRIVATE_INT_MM = False
    _softmax_impl, _int8_matmul_impl = _public_softmax_, _public_int8_matmul
    try:
        yield
    finally:
        PRIVATE_SOFTMAX, PRIVATE_INT_MM, _softmax_impl, _int8_matmul_impl = saved
