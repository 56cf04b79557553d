"""Log-probabilities through the vocabulary projection without the usual full passes.

``log p(y | h) = log_softmax(h Wᵀ + b)[y]`` for R rows and V = 5,000 classes is
where MLE pretraining, NLL evaluation and the policy-gradient loss spend their
time. Written with ``nn.Linear`` + ``F.cross_entropy`` it makes about seven
passes over an [R, V] tensor (logits, log-softmax, a zero-filled gradient,
the scatter, the log-softmax backward, ...). ``linear_log_prob`` computes it in
row chunks that stay in cache: one GEMM and one fused log-softmax per chunk
forward; backward turns the saved probabilities into the gradient of the
logits implicitly: the saved probabilities are only read by the products that
need them, and the one-hot part of the gradient is applied to [R, H] terms.
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_CHUNK_ROWS = 256
"""Rows per chunk: 256 × 5,000 fp32 values are 5 MB, which stays in cache."""


_SAFE_PROBABILITY = 1e-30
"""Below this a float32 probability's log is recomputed from the logits (float32's normal range ends at 1e-38)."""


class _LinearLogProb(torch.autograd.Function):
    """Autograd function behind ``linear_log_prob`` (see there)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor,
        targets: Tensor,
        chunk_rows: int,
    ) -> Tensor:
        rows, vocab = hidden.shape[0], weight.shape[0]
        needs_grad = any(ctx.needs_input_grad[:3])
        # With gradients the probabilities of every row are kept for backward
        # (as autograd would keep the log-softmax); without, one chunk is reused.
        store = hidden.new_empty(rows if needs_grad else min(rows, chunk_rows), vocab)
        out = hidden.new_empty(rows)
        weight_t = weight.t()
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            block = store[start:stop] if needs_grad else store[: stop - start]
            chosen_targets = targets[start:stop].unsqueeze(1)
            torch.addmm(bias, hidden[start:stop], weight_t, out=block)  # (m, V) logits
            if not needs_grad:
                torch._log_softmax(block, 1, False, out=block)  # in place: log-probabilities
                out[start:stop] = block.gather(1, chosen_targets).squeeze(1)
                continue
            chosen_logits = block.gather(1, chosen_targets).squeeze(1)  # (m,)
            torch._softmax(block, 1, False, out=block)  # in place: probabilities, kept for backward
            chosen = block.gather(1, chosen_targets).squeeze(1)
            out[start:stop] = chosen.log()
            # log(p) loses precision only where p is (nearly) subnormal: redo those rows exactly.
            tiny = (chosen < _SAFE_PROBABILITY).nonzero().squeeze(1)
            if tiny.numel():
                rows_logits = torch.addmm(bias, hidden[start:stop][tiny], weight_t)  # (k, V)
                out[start + tiny] = chosen_logits[tiny] - torch.logsumexp(rows_logits, dim=1)
        if needs_grad:
            ctx.save_for_backward(hidden, weight, targets, store)
            ctx.chunk_rows = chunk_rows
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor):  # type: ignore[override]
        # With g the incoming gradient per row and s = −g:
        #   dL/dlogits = g·(onehot(y) − p) = s·(p − onehot(y)), so
        #   d hidden = s ⊙ (P W − W[y]),  d W = Pᵀ (s ⊙ h) − Σ_r e_{y_r} (s_r h_r),  d b = Pᵀ s − Σ_r e_{y_r} s_r.
        # The [m, V] probabilities are only read (by three GEMM-like products),
        # never scaled or copied; the one-hot part touches H values per row.
        hidden, weight, targets, probs = ctx.saved_tensors
        rows, width = hidden.shape
        scale = grad_out.neg().unsqueeze(1)  # (R, 1)
        # [s ⊙ h, s]: d W and d b come out of one product Pᵀ [s ⊙ h, s] of shape (V, H + 1)
        scaled = torch.cat([hidden * scale, scale], dim=1)  # (R, H + 1)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        need_parameters = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        grad_parameters = weight.new_zeros(weight.shape[0], width + 1) if need_parameters else None
        for start in range(0, rows, ctx.chunk_rows):
            stop = min(start + ctx.chunk_rows, rows)
            block = probs[start:stop]  # (m, V)
            if grad_hidden is not None:
                expected = torch.mm(block, weight)  # (m, H): E_p[W]
                grad_hidden[start:stop] = (expected - weight[targets[start:stop]]) * scale[start:stop]
            if grad_parameters is not None:
                grad_parameters.addmm_(block.t(), scaled[start:stop])
        grad_weight = grad_bias = None
        if grad_parameters is not None:
            grad_parameters.index_add_(0, targets, scaled, alpha=-1.0)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_parameters[:, :width].contiguous()
            if ctx.needs_input_grad[2]:
                grad_bias = grad_parameters[:, width].contiguous()
        return grad_hidden, grad_weight, grad_bias, None, None


def linear_log_prob(
    hidden: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Tensor:
    """``log_softmax(hidden @ weight.T + bias)[r, targets[r]]`` for every row r, differentiable.

    Args:
        hidden: [R, H] inputs of the projection.
        weight: [V, H] projection (``nn.Linear.weight``).
        bias: [V] projection bias.
        targets: [R] int64 class per row.
        chunk_rows: rows per chunk (memory of the no-grad path, cache locality).

    Returns:
        [R] log-probabilities of the targets.
    """
    return _LinearLogProb.apply(hidden, weight, bias, targets, chunk_rows)
