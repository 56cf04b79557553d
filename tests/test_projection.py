"""The fused projection + log-softmax equals the plain PyTorch composition, values and gradients."""

from __future__ import annotations

import pytest
import torch

from seqgan_rl.models.projection import linear_log_prob, linear_log_prob_sum


def _plain(hidden, weight, bias, targets):
    return torch.log_softmax(hidden @ weight.t() + bias, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)


def _inputs(rows: int, width: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 hidden [rows, width], weight [vocab, width], bias [vocab] requiring grad, and [rows] targets."""
    hidden = torch.randn(rows, width, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, width, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, dtype=torch.float64, requires_grad=True)
    return hidden, weight, bias, torch.randint(0, vocab, (rows,))


def test_values_and_gradients_match_plain_pytorch() -> None:
    rows, width, vocab = 37, 6, 101
    hidden, weight, bias, targets = _inputs(rows, width, vocab)
    targets[:3] = 5  # repeated targets inside one chunk
    upstream = torch.randn(rows, dtype=torch.float64)

    fused = linear_log_prob(hidden, weight, bias, targets, chunk_rows=8)
    grads = torch.autograd.grad((fused * upstream).sum(), (hidden, weight, bias))
    plain = _plain(hidden, weight, bias, targets)
    expected = torch.autograd.grad((plain * upstream).sum(), (hidden, weight, bias))
    assert torch.allclose(fused, plain, atol=1e-12)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-10)


def test_gradcheck_and_no_grad_path() -> None:
    hidden, weight, bias, targets = _inputs(5, 3, 7)
    assert torch.autograd.gradcheck(lambda h, w, b: linear_log_prob(h, w, b, targets, chunk_rows=2),
                                    (hidden, weight, bias))
    with torch.no_grad():
        no_grad = linear_log_prob(hidden, weight, bias, targets, chunk_rows=2)
    assert torch.allclose(no_grad, _plain(hidden, weight, bias, targets))


def test_backward_twice_with_retained_graph() -> None:
    hidden = torch.randn(4, 3, requires_grad=True)
    weight, bias = torch.randn(9, 3), torch.randn(9)
    out = linear_log_prob(hidden, weight, bias, torch.tensor([0, 1, 2, 8]), chunk_rows=3).sum()
    first = torch.autograd.grad(out, hidden, retain_graph=True)[0]
    second = torch.autograd.grad(out, hidden)[0]
    assert torch.equal(first, second)


def test_tiny_probabilities_keep_exact_log_values() -> None:
    """A target with probability ~e^-200 (0 in float32) still gets its exact log-probability and gradient."""
    hidden = torch.tensor([[1.0], [1.0]], requires_grad=True)
    weight = torch.tensor([[200.0], [0.0], [-1.0]])
    bias = torch.zeros(3)
    targets = torch.tensor([1, 0])
    fused = linear_log_prob(hidden, weight, bias, targets)
    assert torch.allclose(fused, _plain(hidden, weight, bias, targets), atol=1e-4)
    assert torch.isfinite(fused).all() and fused[0] < -199
    fused.sum().backward()
    assert torch.isfinite(hidden.grad).all()


def test_weighted_sum_equals_weighted_log_probs_values_and_gradients() -> None:
    rows, width, vocab = 37, 6, 101
    hidden, weight, bias, targets = _inputs(rows, width, vocab)
    targets[:3] = 5  # repeated targets inside one chunk
    row_weights = torch.randn(rows, dtype=torch.float64)  # signed, like advantages

    total = linear_log_prob_sum(hidden, weight, bias, targets, row_weights, chunk_rows=8)
    grads = torch.autograd.grad(3.0 * total, (hidden, weight, bias))
    plain = (row_weights * _plain(hidden, weight, bias, targets)).sum()
    expected = torch.autograd.grad(3.0 * plain, (hidden, weight, bias))
    assert torch.allclose(total, plain, atol=1e-12)
    for got, want in zip(grads, expected):
        assert torch.allclose(got, want, atol=1e-10)


def test_weighted_sum_gradcheck_partial_inputs_and_no_grad() -> None:
    hidden, weight, bias, targets = _inputs(5, 3, 7)
    row_weights = torch.rand(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda h, w, b: linear_log_prob_sum(h, w, b, targets, row_weights, chunk_rows=2), (hidden, weight, bias))
    # Only the projection trainable (hidden a constant), as for a frozen encoder.
    frozen = hidden.detach()
    grad_weight, = torch.autograd.grad(linear_log_prob_sum(frozen, weight, bias.detach(), targets, row_weights), weight)
    expected, = torch.autograd.grad((row_weights * _plain(frozen, weight, bias.detach(), targets)).sum(), weight)
    assert torch.allclose(grad_weight, expected, atol=1e-10)
    with torch.no_grad():
        no_grad = linear_log_prob_sum(hidden, weight, bias, targets, row_weights, chunk_rows=2)
    assert torch.allclose(no_grad, (row_weights * _plain(hidden, weight, bias, targets)).sum())


def test_weighted_sum_keeps_exact_log_of_tiny_probabilities() -> None:
    hidden = torch.tensor([[1.0], [1.0]], requires_grad=True)
    weight = torch.tensor([[200.0], [0.0], [-1.0]])
    targets = torch.tensor([1, 0])
    total = linear_log_prob_sum(hidden, weight, torch.zeros(3), targets, torch.tensor([1.0, 1.0]))
    assert torch.allclose(total, _plain(hidden, weight, torch.zeros(3), targets).sum(), atol=1e-3)
    total.backward()
    assert torch.isfinite(hidden.grad).all()


def test_no_grad_log_probs_are_exact_beyond_float32_exp_range() -> None:
    """Logits of ±200 (e^200 overflows float32) take the log-sum-exp path without autograd."""
    hidden = torch.tensor([[1.0], [1.0], [-0.5]])
    weight = torch.tensor([[200.0], [0.0], [-1.0]])
    targets = torch.tensor([1, 0, 2])
    with torch.no_grad():
        values = linear_log_prob(hidden, weight, torch.zeros(3), targets)
    assert torch.allclose(values, _plain(hidden, weight, torch.zeros(3), targets), atol=1e-4)
    assert values[0] < -199


def test_rows_whose_exp_overflows_or_vanishes_are_redone_within_a_chunk() -> None:
    """In float32, rows whose logits reach +120 (exp overflows) or stay below −150 (every exp underflows)
    sit in the same chunks as ordinary rows: those rows are recomputed with their maximum subtracted, the
    others are kept, and values and gradients match float64's log-softmax."""
    torch.manual_seed(7)
    rows, width, vocab = 24, 4, 50
    hidden = torch.rand(rows, width) * 2 - 1
    hidden[::5, 0], hidden[2::5, 0] = 1.0, -1.0  # every 5th row pushed up, every 5th from 2 down
    weight = torch.randn(vocab, width)
    weight[:, 0] = 120.0 + torch.rand(vocab)  # column 0: ±120 logits for the pushed rows
    bias, targets = torch.randn(vocab), torch.randint(0, vocab, (rows,))
    row_weights = torch.full((rows,), -1.0 / rows)
    reference = [x.double().requires_grad_() for x in (hidden, weight, bias)]
    expected = _plain(*reference, targets)
    expected_grads = torch.autograd.grad((row_weights.double() * expected).sum(), reference)
    with torch.no_grad():
        values = linear_log_prob(hidden, weight, bias, targets, chunk_rows=8)
    assert torch.allclose(values.double(), expected.detach(), rtol=1e-5, atol=1e-3)
    inputs = [x.clone().requires_grad_() for x in (hidden, weight, bias)]
    total = linear_log_prob_sum(*inputs, targets, row_weights, chunk_rows=8)
    assert torch.allclose(total.double(), (row_weights.double() * expected).sum().detach(), rtol=1e-5)
    for got, want in zip(torch.autograd.grad(total, inputs), expected_grads):
        assert torch.isfinite(got).all()
        assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-5)


def test_weighted_sum_rejects_bad_row_weights() -> None:
    hidden, weight, bias = torch.randn(4, 3), torch.randn(9, 3), torch.randn(9)
    targets = torch.tensor([0, 1, 2, 8])
    with pytest.raises(ValueError, match="one per row"):
        linear_log_prob_sum(hidden, weight, bias, targets, torch.ones(3))
    with pytest.raises(ValueError, match="constant"):
        linear_log_prob_sum(hidden, weight, bias, targets, torch.ones(4, requires_grad=True))


def test_no_grad_mode_with_trainable_inputs_matches_plain() -> None:
    """Under torch.no_grad() trainable inputs take the chunk-buffer path (no graph, same values)."""
    hidden = torch.randn(4096, 8)
    weight = torch.randn(3000, 8, requires_grad=True)
    bias = torch.randn(3000, requires_grad=True)
    targets = torch.randint(0, 3000, (4096,))
    with torch.no_grad():
        out = linear_log_prob(hidden, weight, bias, targets, chunk_rows=64)
    assert out.grad_fn is None
    assert torch.allclose(out, _plain(hidden, weight.detach(), bias.detach(), targets), atol=1e-5)
