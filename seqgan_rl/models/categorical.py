"""Exact categorical sampling over a large vocabulary, fast on CPU and GPU.

Sampling the next token of B sequences from a V-way softmax is the hot path of
every part of SeqGAN that generates text: MLE evaluation (10,000 samples),
the EnvRunners, and above all the Monte Carlo rollouts (B·N·(T−1) rows per
step). With V = 5,000 the work per step is dominated by memory passes over the
[rows, V] logits, so the method here is chosen to make as few of them as
possible and to keep each one inside the cache:

* rows are processed in chunks (``chunk_rows``) so that the logits of a chunk
  stay in L2/L3 between the passes that touch them;
* the bias and the temperature are folded into the output projection: one
  GEMM of [m, H + 1] (the hidden state and a column of ones) by [H + 1, V]
  (Wᵀ over bᵀ, both divided by the temperature) writes the logits in one pass,
  where ``addmm`` first broadcasts the bias into the output and then adds the
  product (a second pass over the [m, V] output);
* the logits become unnormalised weights exp(logit) in place: one pass, where
  a softmax makes three. The search below works on unnormalised weights, so no
  normalisation is needed, and no row maximum either: the search sums every
  row anyway, and a row whose sum shows that exp overflowed or left too little
  (``projection.EXP_SAFE_TOTAL``) is drawn again from exp(logit − row max);
* the draw is an inverse-CDF search with ONE uniform number per row, done in
  two levels: a vectorised sum over blocks of ``BLOCK`` columns (one read of
  the probabilities), a cumulative sum over the few block totals, then a
  cumulative sum inside the single chosen block. ``torch.multinomial``
  instead draws V exponential variates per row (``argmax(p / q)``), and the
  Gumbel-max trick V Gumbel variates: both cost a full-vocabulary random
  number pass per step.

The result is an exact draw from the softmax (up to float rounding at block
boundaries, which is clamped so that a zero-probability token can never be
returned); ``tests/test_sampling.py`` compares empirical frequencies with the
softmax probabilities.

The folded bias, the unnormalised weights without the row maximum and chunks
of 512 rows (``SAMPLING_CHUNK_ROWS``) were each kept because they measured
faster than ``addmm``, ``softmax`` and chunks of 256 or 1,024 rows (the
measurements: docs/results.md, 'Sampling').
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqgan_rl.models.projection import folded_projection, shifted_exp, unsafe_rows, with_ones

BLOCK = 64
"""Columns per block of the two-level inverse-CDF search (≈ sqrt(5,000))."""
SAMPLING_CHUNK_ROWS = 512
"""Rows per chunk of the fused projection + draw on a CPU: 512 × 5,000 float32 logits are 10 MB, which
stays in a server CPU's L2 + L3 between the passes (measured against 256 and 1,024: docs/results.md, 'Sampling')."""


def sample_from_probs(probs: Tensor, uniform: Tensor) -> Tensor:
    """Draw indices from each row of ``probs`` by inverse CDF with given uniforms.

    Args:
        probs: [M, V] non-negative weights (need not be normalised), fp32 or fp64.
        uniform: [M] numbers in [0, 1), one draw per row, or [M, K]: K draws from each row (the row's
            cumulative sums are computed once for all K). The only randomness used.

    Returns:
        int64 indices shaped like ``uniform``; a draw from row m returns j with probability
        probs[m, j] / sum(probs[m]).
    """
    return _draw(probs, uniform)[0]


def _draw(probs: Tensor, uniform: Tensor) -> tuple[Tensor, Tensor]:
    """``sample_from_probs``, and each row's sum of ``probs`` [M] (which the search computes anyway)."""
    rows, vocab = probs.shape
    draws = uniform if uniform.dim() == 2 else uniform.unsqueeze(1)  # (M, K)
    full_blocks = vocab // BLOCK
    tail = vocab - full_blocks * BLOCK
    block_sums = probs[:, : full_blocks * BLOCK].unflatten(1, (full_blocks, BLOCK)).sum(2)  # (M, nb)
    if tail:
        block_sums = torch.cat([block_sums, probs[:, full_blocks * BLOCK :].sum(1, keepdim=True)], 1)
    cumulative = block_sums.cumsum(1)  # (M, nb)
    total = cumulative[:, -1:]  # (M, 1)
    zero = torch.zeros((), dtype=probs.dtype, device=probs.device)
    # u < total strictly, so the search lands on a block whose sum is > 0.
    target = torch.minimum(draws.to(probs.dtype) * total, torch.nextafter(total, zero))  # (M, K)
    block = torch.searchsorted(cumulative, target, right=True).clamp_(max=block_sums.shape[1] - 1)  # (M, K)
    offset = target - (cumulative.gather(1, block) - block_sums.gather(1, block))  # (M, K)

    columns = block.unsqueeze(2) * BLOCK + torch.arange(BLOCK, device=probs.device)  # (M, K, BLOCK)
    inside = columns < vocab
    in_block = probs.gather(1, columns.clamp(max=vocab - 1).flatten(1)).view_as(columns) * inside  # (M, K, BLOCK)
    in_block_cumulative = in_block.cumsum(2)
    in_total = in_block_cumulative[..., -1:]  # (M, K, 1)
    # The block total above was summed in another order: clamp the offset below
    # this sum so the search returns a column with positive probability.
    offset = torch.minimum(offset.unsqueeze(2).clamp_(min=0), torch.nextafter(in_total, zero))  # (M, K, 1)
    position = torch.searchsorted(in_block_cumulative, offset, right=True).clamp_(max=BLOCK - 1)  # (M, K, 1)
    drawn = columns.gather(2, position).squeeze(2)  # (M, K)
    return (drawn if uniform.dim() == 2 else drawn.squeeze(1)), total.squeeze(1)


def sample_next_tokens(
    hidden: Tensor,
    weight_t: Tensor,
    bias: Tensor,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    uniform: Tensor | None = None,
    chunk_rows: int = SAMPLING_CHUNK_ROWS,
) -> Tensor:
    """Sample tokens from ``softmax((hidden @ weight_t + bias) / temperature)``.

    Fuses the output projection with the draw so that the [M, V] logits of only
    ``chunk_rows`` rows exist at a time. All uniforms are drawn up front, so the
    result does not depend on ``chunk_rows``.

    Args:
        hidden: [M, H] recurrent outputs.
        weight_t: [H, V] output projection (transposed ``nn.Linear`` weight).
        bias: [V] output bias.
        temperature: softmax temperature (> 0); 1 samples the model itself.
        generator: torch RNG for reproducible draws (on ``hidden``'s device).
        uniform: [M] pre-drawn uniforms in [0, 1) to use instead of ``generator``
            (the Monte Carlo engine draws them per rollout so its results do not
            depend on how it chunks the batch), or [M, K] for K draws from each row.
        chunk_rows: rows per chunk; bounds memory to chunk_rows × V floats.

    Returns:
        int64 token ids shaped like ``uniform``: [M], or [M, K].
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rows = hidden.shape[0]
    if uniform is None:
        uniform = torch.rand(rows, generator=generator, device=hidden.device, dtype=hidden.dtype)
    elif uniform.dim() not in (1, 2) or uniform.shape[0] != rows:
        raise ValueError(f"uniform must have shape ({rows},) or ({rows}, K), got {tuple(uniform.shape)}")
    # [h, 1] @ [Wᵀ; bᵀ] / T: bias and temperature in the one GEMM that writes the logits
    projection = folded_projection(weight_t, bias, 1.0 / temperature)  # (H + 1, V)
    augmented = with_ones(hidden)  # (M, H + 1)
    out = torch.empty(uniform.shape, dtype=torch.long, device=hidden.device)
    # One workspace reused by every chunk (no allocation, no page faults per chunk); the weights
    # overwrite the logits in place, so only one [m, V] block competes for the cache.
    workspace = hidden.new_empty(min(chunk_rows, rows), weight_t.shape[1])
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        logits = torch.mm(augmented[start:stop], projection, out=workspace[: stop - start])  # (m, V)
        out[start:stop], totals = _draw(logits.exp_(), uniform[start:stop])  # exp in place: unnormalised
        redo = unsafe_rows(totals)
        if redo.numel():  # an overflow, or a row of tiny weights: again with the row maximum subtracted
            weights, _ = shifted_exp(augmented[start:stop][redo] @ projection)  # (k, V)
            out[start + redo] = sample_from_probs(weights, uniform[start + redo])
    return out
