"""The sampler is exact: empirical frequencies match the softmax probabilities."""

from __future__ import annotations

import math

import pytest
import torch

from seqgan_rl.models.categorical import BLOCK, sample_from_probs, sample_next_tokens


def _chi_square(counts: torch.Tensor, probs: torch.Tensor) -> tuple[float, int]:
    """Pearson statistic over cells with expected count >= 5 (plus one pooled cell for the rest)."""
    n = counts.sum()
    expected = probs.double() * n
    big = expected >= 5
    stat = (((counts[big].double() - expected[big]) ** 2) / expected[big]).sum()
    rest_expected, rest_count = expected[~big].sum(), counts[~big].double().sum()
    cells = int(big.sum())
    if rest_expected > 5:
        stat += (rest_count - rest_expected) ** 2 / rest_expected
        cells += 1
    return float(stat), cells - 1


@pytest.mark.parametrize("vocab", [50, 3 * BLOCK, 1000])
@pytest.mark.parametrize("temperature", [1.0, 0.6])
@pytest.mark.parametrize("offset", [0.0, 1000.0])  # 1000: logits beyond exp's float32 range (row max subtracted)
def test_empirical_frequencies_match_softmax(vocab: int, temperature: float, offset: float) -> None:
    rng = torch.Generator().manual_seed(vocab)
    hidden = torch.randn(1, 8, generator=rng)
    weight_t = torch.randn(8, vocab, generator=rng)
    bias = torch.randn(vocab, generator=rng) + offset  # the same softmax
    draws = 200_000
    tokens = sample_next_tokens(hidden.expand(draws, 8), weight_t, bias, temperature=temperature, generator=rng,
                                chunk_rows=4096)
    counts = torch.bincount(tokens, minlength=vocab)
    probs = torch.softmax((hidden @ weight_t + bias)[0].double() / temperature, dim=0)
    stat, dof = _chi_square(counts, probs)
    # mean dof, sd sqrt(2 dof): 6 sd is a false alarm rate far below 1e-6
    assert stat < dof + 6 * math.sqrt(2 * dof), (stat, dof)


def test_zero_probability_tokens_are_never_drawn() -> None:
    vocab = 2 * BLOCK + 5
    logits = torch.full((vocab,), -float("inf"))
    allowed = torch.tensor([0, BLOCK - 1, BLOCK + 3, vocab - 1])
    logits[allowed] = torch.tensor([0.0, 2.0, -1.0, 1.0])
    probs = torch.softmax(logits, 0).expand(50_000, vocab)
    uniform = torch.rand(50_000)
    uniform[:3] = torch.tensor([0.0, 1.0 - 2**-24, 0.5])
    drawn = sample_from_probs(probs, uniform)
    assert set(drawn.unique().tolist()) <= set(allowed.tolist())
    assert set(drawn.unique().tolist()) == set(allowed.tolist())


def test_result_does_not_depend_on_chunking() -> None:
    hidden, weight_t, bias = torch.randn(300, 8), torch.randn(8, 200), torch.randn(200)
    a = sample_next_tokens(hidden, weight_t, bias, generator=torch.Generator().manual_seed(5), chunk_rows=7)
    b = sample_next_tokens(hidden, weight_t, bias, generator=torch.Generator().manual_seed(5), chunk_rows=512)
    assert torch.equal(a, b)


def test_k_draws_per_row_equal_one_draw_from_each_copy_of_the_row() -> None:
    """uniform [M, K] draws K tokens from each row: the same tokens as the row repeated K times with one
    uniform each (the Monte Carlo engine's N completions of one prefix share their first distribution)."""
    probs = torch.softmax(torch.randn(6, 3 * BLOCK + 7) * 3, 1)  # (6, V), a tail block
    uniform = torch.rand(6, 5, generator=torch.Generator().manual_seed(3))
    uniform[0, :2] = torch.tensor([0.0, 1.0 - 2**-24])
    drawn = sample_from_probs(probs, uniform)
    assert drawn.shape == (6, 5)
    assert torch.equal(drawn.flatten(), sample_from_probs(probs.repeat_interleave(5, 0), uniform.flatten()))
    hidden, weight_t, bias = torch.randn(40, 8), torch.randn(8, 300), torch.randn(300)
    grouped = sample_next_tokens(hidden, weight_t, bias, uniform=uniform.new_ones(40, 4) * 0.37, chunk_rows=16)
    single = sample_next_tokens(hidden.repeat_interleave(4, 0), weight_t, bias, uniform=torch.full((160,), 0.37))
    assert torch.equal(grouped.flatten(), single)
    with pytest.raises(ValueError, match=r"uniform must have shape \(40,\) or \(40, K\)"):
        sample_next_tokens(hidden, weight_t, bias, uniform=torch.rand(39))


def test_weights_beyond_float32_exp_range_still_sample_exactly() -> None:
    """Logits of ±~10^4 (exp overflows float32 without the row maximum subtracted) draw only the
    top token, as the softmax says."""
    hidden = torch.ones(1000, 2)
    weight_t = torch.tensor([[5000.0, 4990.0, -5000.0], [5000.0, 0.0, 0.0]])
    tokens = sample_next_tokens(hidden, weight_t, torch.zeros(3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(tokens, torch.zeros(1000, dtype=torch.long))


def test_rows_whose_exp_overflows_are_drawn_from_the_softmax_beside_ordinary_rows() -> None:
    """One chunk holding ordinary rows and rows with logits near +300 (exp overflows float32): each kind
    is drawn from its own softmax (chi-square against float64), the same draws as each row alone."""
    vocab, rows = 40, 40_000
    weight_t = torch.randn(1, vocab, generator=torch.Generator().manual_seed(4))  # (1, V)
    bias = torch.randn(vocab, generator=torch.Generator().manual_seed(5))
    hidden = torch.ones(rows, 1)
    hidden[1::2] = 300.0 / float(weight_t.abs().max())  # odd rows: logits up to ±300
    uniform = torch.rand(rows, generator=torch.Generator().manual_seed(6))
    drawn = sample_next_tokens(hidden, weight_t, bias, uniform=uniform, chunk_rows=64)
    for part in (slice(0, None, 2), slice(1, None, 2)):
        probs = torch.softmax((hidden[part][:1].double() @ weight_t.double() + bias.double())[0], 0)
        counts = torch.bincount(drawn[part], minlength=vocab).double()
        stat, dof = _chi_square(counts, probs)
        assert stat < dof + 6 * math.sqrt(2 * dof), (part, stat, dof)
    alone = sample_next_tokens(hidden[1:64:2], weight_t, bias, uniform=uniform[1:64:2])
    assert torch.equal(drawn[1:64:2], alone)


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ValueError, match="temperature"):
        sample_next_tokens(torch.zeros(1, 2), torch.zeros(2, 3), torch.zeros(3), temperature=0.0)
