"""torch_ops: private and public paths agree, in place; the import probe falls back when an op breaks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import nullcontext

import pytest
import torch

from seqgan_rl.models import torch_ops
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.projection import linear_log_prob

PATHS = {"private": nullcontext, "public": torch_ops.public_ops}


@pytest.fixture(params=sorted(PATHS))
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test body on the import-selected (private) path and under ``public_ops()``."""
    with PATHS[request.param]():
        yield request.param


def test_import_probe_selects_private_ops_on_pinned_torch() -> None:
    # torch 2.13 (constraints.txt) has both private operators, and they pass the probes.
    assert torch_ops.PRIVATE_SOFTMAX and torch_ops.PRIVATE_INT_MM


def test_public_ops_reports_and_restores() -> None:
    with torch_ops.public_ops():
        assert not (torch_ops.PRIVATE_SOFTMAX or torch_ops.PRIVATE_INT_MM)
    assert torch_ops.PRIVATE_SOFTMAX and torch_ops.PRIVATE_INT_MM


def test_import_falls_back_when_private_ops_are_missing_or_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        with monkeypatch.context() as patch:
            patch.delattr(torch, "_int_mm")
            patch.setattr(torch, "_softmax", lambda x, dim, half_to_float, out: out.copy_(x))  # wrong values
            importlib.reload(torch_ops)
            assert not (torch_ops.PRIVATE_SOFTMAX or torch_ops.PRIVATE_INT_MM)
            x = torch.randn(5, 9)
            torch.testing.assert_close(torch_ops.softmax_(x.clone(), 1), torch.softmax(x, 1))
            a = torch.randint(-128, 128, (3, 7), dtype=torch.int8)
            b = torch.randint(-128, 128, (7, 4), dtype=torch.int8)
            assert torch.equal(torch_ops.int8_matmul(a, b), (a.long() @ b.long()).int())
    finally:
        importlib.reload(torch_ops)  # the real torch again: callers see the same module object
    assert torch_ops.PRIVATE_SOFTMAX and torch_ops.PRIVATE_INT_MM


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_matches_public_reference_in_place(path: str, dtype: torch.dtype, dim: int) -> None:
    logits = torch.randn(6, 11, dtype=dtype) * 5
    x = logits.clone()
    result = torch_ops.softmax_(x, dim)
    assert result.data_ptr() == x.data_ptr() and result.shape == x.shape
    torch.testing.assert_close(x, torch.softmax(logits, dim))


@pytest.mark.parametrize(("rows", "depth", "cols"), [(1, 3, 5), (17, 16, 8), (40, 1720, 24)])
def test_int8_matmul_is_exact(path: str, rows: int, depth: int, cols: int) -> None:
    a = torch.randint(-128, 128, (rows, depth), dtype=torch.int8)
    b = torch.randint(-127, 128, (depth, cols), dtype=torch.int8)
    a[0], b[:, 0] = -128, -127  # the discriminator's extremes: |sum| = 1720 * 128 * 127 > 2^24 at paper K
    expected = (a.long() @ b.long()).int()
    result = torch_ops.int8_matmul(a, b.t().contiguous().t())  # (rows, cols); b column-major as in the model
    assert result.dtype == torch.int32
    assert torch.equal(result, expected)


def test_projection_is_the_same_on_both_paths() -> None:
    hidden = torch.randn(37, 6, requires_grad=True)
    weight, bias = torch.randn(101, 6, requires_grad=True), torch.randn(101, requires_grad=True)
    targets = torch.randint(0, 101, (37,))
    results = []
    for context in (nullcontext, torch_ops.public_ops):
        with context():
            values = linear_log_prob(hidden, weight, bias, targets, chunk_rows=8)  # softmax_ path
            grads = torch.autograd.grad(values.sum(), (hidden, weight, bias))
        results.append((values, *grads))
    for private, public in zip(*results):
        torch.testing.assert_close(private, public)


def test_discriminator_int8_scoring_is_the_same_on_both_paths() -> None:
    disc = Discriminator(5000, 20).eval()  # paper size: the int8 GEMM sums over K = 1,720 features
    tokens = torch.randint(0, 5000, (64, 20))
    private = disc.score(tokens, precision="int8")
    with torch_ops.public_ops():
        public = disc.score(tokens, precision="int8")
    torch.testing.assert_close(private, public, atol=1e-6, rtol=0)
