"""Log-probabilities through the vocabulary projection without the usual full passes.

``log p(y | h) = log_softmax(h Wᵀ + b)[y]`` for R rows and V = 5,000 classes is
where MLE pretraining, NLL evaluation and the policy-gradient loss spend their
time. Written with ``nn.Linear`` + ``F.cross_entropy`` it makes about seven
passes over an [R, V] tensor (logits, log-softmax, a zero-filled gradient,
the scatter, the log-softmax backward, ...). Both functions here work in row
chunks that stay in cache, one GEMM and one fused (log-)softmax per chunk:

- ``linear_log_prob`` returns the [R] log-probabilities. Its backward turns
  the saved probabilities into the gradient of the logits implicitly: they
  are only read by the products that need them, and the one-hot part of the
  gradient is applied to [R, H] terms.
- ``linear_log_prob_sum`` returns the scalar ``Σ_r w_r log p(y_r | h_r)`` for
  row weights known in advance (MLE: ``w = 1 / R``). It computes the
  gradients during the forward pass, chunk by chunk while the chunk's
  probabilities are still in cache, and keeps nothing of size [R, V]; its
  backward only scales them. At the paper's size (1,280 rows, V = 5,000,
  H = 32) its forward + backward, and the whole MLE step, are faster than
  with ``linear_log_prob`` (the measurements: docs/results.md, 'MLE on the
  oracle').
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from seqgan_rl.models import torch_ops

DEFAULT_CHUNK_ROWS = 256
"""Rows per chunk of the projection and of sampling: 256 × 5,000 fp32 values are 5 MB, which stays in
cache (measured best of 128..2048)."""


_SAFE_PROBABILITY = 1e-30
"""Below this a float32 probability's log is recomputed from the logits (float32's normal range ends at 1e-38)."""


def _chunk_probabilities(
    hidden: Tensor, weight_t: Tensor, bias: Tensor, targets: Tensor, block: Tensor
) -> tuple[Tensor, Tensor]:
    """Fill ``block`` [m, V] with the chunk's softmax probabilities.

    Args:
        hidden: [m, H] rows of the chunk.
        weight_t: [H, V] transposed projection.
        bias: [V].
        targets: [m] classes.
        block: [m, V] output buffer.

    Returns:
        [m] probabilities and [m] log-probabilities of the targets.
    """
    chosen_targets = targets.unsqueeze(1)
    torch.addmm(bias, hidden, weight_t, out=block)  # (m, V) logits
    chosen_logits = block.gather(1, chosen_targets).squeeze(1)  # (m,)
    torch_ops.softmax_(block, 1)  # in place: probabilities
    chosen = block.gather(1, chosen_targets).squeeze(1)
    log_chosen = chosen.log()
    # log(p) loses precision only where p is (nearly) subnormal: redo those rows exactly.
    tiny = (chosen < _SAFE_PROBABILITY).nonzero().squeeze(1)
    if tiny.numel():
        rows_logits = torch.addmm(bias, hidden[tiny], weight_t)  # (k, V)
        log_chosen[tiny] = chosen_logits[tiny] - torch.logsumexp(rows_logits, dim=1)
    return chosen, log_chosen


EXP_SAFE_TOTAL = (math.exp(-8.0), math.exp(60.0))
"""Where a row's Σ_j exp(logit_j), taken without subtracting the row maximum, is exact enough to use. Above
e^−8, the terms that underflow float32 (each < e^−87.3, at most V of them) weigh < e^−70 of it; below e^60,
neither the sum nor the products of the weights with the projection (|W| ≪ e^28) can overflow. A trained
generator's rows sum to ~e^5–e^20 (its largest logit is ~17 while its smallest is ~−96, so no bound from the
weights alone would allow skipping the maximum); rows outside the window (inf from an overflow, or nearly 0)
are recomputed with their maximum subtracted (``shifted_exp``)."""


def unsafe_rows(totals: Tensor) -> Tensor:
    """Indices [k] of the rows whose unshifted exp sums ``totals`` [R] lie outside ``EXP_SAFE_TOTAL``."""
    low, high = EXP_SAFE_TOTAL
    return (~((totals >= low) & (totals <= high))).nonzero().squeeze(1)


def shifted_exp(logits: Tensor) -> tuple[Tensor, Tensor]:
    """exp(logits − row max) in place on ``logits`` [k, V], and the row maxima [k]."""
    row_max = logits.amax(1, keepdim=True)  # (k, 1)
    return logits.sub_(row_max).exp_(), row_max.squeeze(1)


def folded_projection(weight_t: Tensor, bias: Tensor, scale: float = 1.0) -> Tensor:
    """[H + 1, V]: ``weight_t`` [H, V] over ``bias`` [V], times ``scale``. With ``with_ones`` it turns
    ``(h Wᵀ + b) · scale`` into one GEMM that writes the logits in one pass (``addmm`` first broadcasts
    the bias into its output, then adds the product: a second pass over [rows, V])."""
    return torch.cat([weight_t, bias.unsqueeze(0)]).mul_(scale)


def with_ones(hidden: Tensor) -> Tensor:
    """[R, H + 1]: ``hidden`` [R, H] with a column of ones (the bias row of ``folded_projection``)."""
    out = hidden.new_ones(hidden.shape[0], hidden.shape[1] + 1)
    out[:, : hidden.shape[1]] = hidden
    return out


def _log_prob_no_grad(hidden: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, chunk_rows: int) -> Tensor:
    """[R] log-probabilities without autograd: logit_y − log Σ_j exp(logit_j), one chunk-sized buffer.

    The chunk is exponentiated in place without its row maximum and summed: two passes over [m, V], where
    a log-softmax makes three and writes the whole block; rows whose sum leaves ``EXP_SAFE_TOTAL`` are
    recomputed with ``logsumexp``.
    """
    rows, vocab = hidden.shape[0], weight.shape[0]
    out = hidden.new_empty(rows)
    store = hidden.new_empty(min(rows, chunk_rows), vocab)
    projection = folded_projection(weight.t(), bias)  # (H + 1, V)
    augmented = with_ones(hidden)  # (R, H + 1)
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        logits = torch.mm(augmented[start:stop], projection, out=store[: stop - start])  # (m, V)
        chosen = logits.gather(1, targets[start:stop].unsqueeze(1)).squeeze(1)  # (m,)
        totals = logits.exp_().sum(1)  # (m,)
        out[start:stop] = chosen - totals.log()
        redo = unsafe_rows(totals)
        if redo.numel():
            exact = augmented[start:stop][redo] @ projection  # (k, V)
            out[start + redo] = exact.gather(1, targets[start + redo].unsqueeze(1)).squeeze(1) - exact.logsumexp(1)
    return out


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
        # The probabilities of every row are kept for backward (as autograd would keep the log-softmax).
        store = hidden.new_empty(rows, vocab)
        out = hidden.new_empty(rows)
        weight_t = weight.t()
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            _, out[start:stop] = _chunk_probabilities(
                hidden[start:stop], weight_t, bias, targets[start:stop], store[start:stop])
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


class _LinearLogProbSum(torch.autograd.Function):
    """Autograd function behind ``linear_log_prob_sum`` (see there)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor,
        targets: Tensor,
        row_weights: Tensor,
        chunk_rows: int,
    ) -> Tensor:
        # Σ_r w_r log p_r with p = E / Z, E = exp(logits − c_r) unnormalised and Z = Σ_j E_j, has (s = −w)
        #   d hidden = s ⊙ (E W / Z − W[y]),  [d W, d b] = Eᵀ [(s / Z) ⊙ h, s / Z] − Σ_r e_(y_r) [s_r h_r, s_r].
        # The normalisation moves onto the [m, H] operands: per chunk, the GEMM writing the logits, exp in
        # place, the row sums and three products reading E ([m, V] by [V, H], [m, H] and [m]; an H + 1
        # column GEMM in place of a GEMM and a GEMV is slower: docs/results.md, 'MLE on the oracle').
        # c_r = 0, unless the row's sum leaves EXP_SAFE_TOTAL: then the row is recomputed with c_r its maximum.
        # log p_y = logit_y − c_r − log Z is exact even where p_y underflows.
        rows, width = hidden.shape
        vocab = weight.shape[0]
        want_hidden, want_weight, want_bias = ctx.needs_input_grad[:3]
        store = hidden.new_empty(min(rows, chunk_rows), vocab)
        projection = folded_projection(weight.t(), bias)  # (H + 1, V)
        augmented = with_ones(hidden)  # (R, H + 1)
        scale = row_weights.neg().unsqueeze(1)  # (R, 1): s
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = weight.new_zeros(vocab, width) if want_weight else None
        grad_bias = bias.new_zeros(vocab) if want_bias else None
        total = hidden.new_zeros(())
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            logits = torch.mm(augmented[start:stop], projection, out=store[: stop - start])  # (m, V)
            chosen = logits.gather(1, targets[start:stop].unsqueeze(1)).squeeze(1)  # (m,): logit_y − c
            weights = logits.exp_()  # (m, V): E
            normaliser = weights.sum(1, keepdim=True)  # (m, 1): Z
            redo = unsafe_rows(normaliser.squeeze(1))
            if redo.numel():
                weights[redo], row_max = shifted_exp(augmented[start:stop][redo] @ projection)
                chosen[redo] -= row_max
                normaliser[redo] = weights[redo].sum(1, keepdim=True)
            total += torch.dot(row_weights[start:stop], chosen - normaliser.squeeze(1).log())
            chunk_scale = scale[start:stop] / normaliser  # (m, 1): s / Z
            if grad_hidden is not None:
                torch.mm(weights, weight, out=grad_hidden[start:stop])  # (m, H): E W
                grad_hidden[start:stop].mul_(chunk_scale)
            if grad_weight is not None:
                grad_weight.addmm_(weights.t(), hidden[start:stop] * chunk_scale)
            if grad_bias is not None:
                grad_bias.addmv_(weights.t(), chunk_scale.squeeze(1))
        # the one-hot part, −Σ_r e_(y_r) [s_r h_r, s_r], and −s ⊙ W[y]
        if grad_hidden is not None:
            grad_hidden -= weight[targets] * scale
        if grad_weight is not None:
            grad_weight.index_add_(0, targets, hidden * scale, alpha=-1.0)
        if grad_bias is not None:
            grad_bias.index_add_(0, targets, scale.squeeze(1), alpha=-1.0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        return total

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_total: Tensor):  # type: ignore[override]
        return *(None if grad is None else grad * grad_total for grad in ctx.saved_tensors), None, None, None


def _wants_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(tensor.requires_grad for tensor in tensors)


def linear_log_prob(
    hidden: Tensor, weight: Tensor, bias: Tensor, targets: Tensor, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Tensor:
    """``log_softmax(hidden @ weight.T + bias)[r, targets[r]]`` for every row r, differentiable.

    Without autograd (``torch.no_grad()`` or no input requiring grad) it keeps
    one [chunk_rows, V] buffer; with autograd it keeps the [R, V]
    probabilities for backward.

    Args:
        hidden: [R, H] inputs of the projection.
        weight: [V, H] projection (``nn.Linear.weight``).
        bias: [V] projection bias.
        targets: [R] int64 class per row.
        chunk_rows: rows per chunk (memory of the no-grad path, cache locality).

    Returns:
        [R] log-probabilities of the targets.
    """
    if not _wants_grad(hidden, weight, bias):
        return _log_prob_no_grad(hidden, weight, bias, targets, chunk_rows)
    return _LinearLogProb.apply(hidden, weight, bias, targets, chunk_rows)


def linear_log_prob_sum(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor,
    targets: Tensor,
    row_weights: Tensor,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Tensor:
    """``Σ_r row_weights[r] · log_softmax(hidden @ weight.T + bias)[r, targets[r]]``, differentiable.

    Equal to ``(row_weights * linear_log_prob(...)).sum()`` for weights known
    before the forward pass, but faster and smaller: the gradients with
    respect to ``hidden``, ``weight`` and ``bias`` are computed in the forward
    pass while each chunk is in cache, and only they are kept ([R, H], [V, H],
    [V]; no [R, V] tensor).

    Args:
        hidden: [R, H] inputs of the projection.
        weight: [V, H] projection (``nn.Linear.weight``).
        bias: [V] projection bias.
        targets: [R] int64 class per row.
        row_weights: [R] constant weight per row (no gradient flows to it),
            e.g. ``1 / R`` for a mean.
        chunk_rows: rows per chunk.

    Returns:
        The weighted sum, a 0-dim tensor.
    """
    if row_weights.shape != targets.shape:
        raise ValueError(
            f"row_weights has shape {tuple(row_weights.shape)}, expected {tuple(targets.shape)} (one per row)")
    if row_weights.requires_grad:
        raise ValueError("row_weights must be a constant (no gradient flows to it); pass row_weights.detach()")
    row_weights = row_weights.to(hidden.dtype)
    if not _wants_grad(hidden, weight, bias):
        return torch.dot(row_weights, _log_prob_no_grad(hidden, weight, bias, targets, chunk_rows))
    return _LinearLogProbSum.apply(hidden, weight, bias, targets, row_weights, chunk_rows)
