"""Tests of the SeqGAN discriminator: shapes, fast paths vs forward, precision, learning, errors."""

from __future__ import annotations

import pytest
import torch

from seqgan_rl.discriminator import (
    PAPER_FILTER_SIZES,
    PAPER_NUM_FILTERS,
    Discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)

VOCAB = 40


def small(seq_len: int = 8, filter_sizes=(1, 3, 8), num_filters=(4, 5, 6), **kwargs) -> Discriminator:
    return Discriminator(VOCAB, seq_len, emb_dim=6, filter_sizes=filter_sizes, num_filters=num_filters, **kwargs)


def forward_probs(disc: Discriminator, tokens: torch.Tensor) -> torch.Tensor:
    was_training = disc.training
    disc.eval()
    with torch.no_grad():
        probs = disc(tokens).softmax(dim=1)[:, 1]
    disc.train(was_training)
    return probs


def rollouts_of(sequences: torch.Tensor, num_rollouts: int, vocab: int) -> torch.Tensor:
    """Random completions of every prefix: (T-1, B, N, T) sharing sequences[:, :t]."""
    batch, seq_len = sequences.shape
    rollouts = torch.randint(0, vocab, (seq_len - 1, batch, num_rollouts, seq_len))
    for t in range(1, seq_len):
        rollouts[t - 1, :, :, :t] = sequences[:, None, :t]
    return rollouts


def test_shapes_and_loss() -> None:
    torch.manual_seed(0)
    disc = small()
    tokens = torch.randint(0, VOCAB, (5, 8))
    assert disc(tokens).shape == (5, 2)
    loss = disc.loss(tokens, torch.tensor([0, 1, 1, 0, 1]))
    assert loss.dim() == 0 and loss.requires_grad
    probs = disc.score(tokens)
    assert probs.shape == (5,) and probs.dtype == torch.float32
    assert ((probs > 0) & (probs < 1)).all()


def test_paper_defaults() -> None:
    disc = Discriminator(5000, 20)
    assert disc.filter_sizes == PAPER_FILTER_SIZES and disc.num_filters == PAPER_NUM_FILTERS
    assert disc.num_features == 1720
    assert disc.highway.weight.shape == (3440, 1720)


def test_loss_l2_term_matches_tf_l2_loss() -> None:
    torch.manual_seed(0)
    disc = small(l2_reg=0.5).eval()
    tokens, labels = torch.randint(0, VOCAB, (6, 8)), torch.randint(0, 2, (6,))
    cross_entropy = torch.nn.functional.cross_entropy(disc(tokens), labels)
    l2 = 0.5 * (disc.output.weight.pow(2).sum() + disc.output.bias.pow(2).sum()) / 2
    torch.testing.assert_close(disc.loss(tokens, labels), cross_entropy + l2)


@pytest.mark.parametrize(
    ("seq_len", "filter_sizes", "num_filters"),
    [(8, (1, 3, 8), (4, 5, 6)), (5, (2, 5), (3, 7)), (12, (1, 2, 4, 12), (3, 3, 2, 5))],
)
def test_score_matches_forward_and_keeps_training_flag(seq_len, filter_sizes, num_filters) -> None:
    torch.manual_seed(1)
    disc = small(seq_len, filter_sizes, num_filters).train()
    tokens = torch.randint(0, VOCAB, (50, seq_len))
    probs = disc.score(tokens)
    assert disc.training
    torch.testing.assert_close(probs, forward_probs(disc, tokens), atol=1e-5, rtol=0)


def test_score_matches_forward_at_paper_size() -> None:
    torch.manual_seed(2)
    disc = Discriminator(5000, 20)
    tokens = torch.randint(0, 5000, (256, 20))
    torch.testing.assert_close(disc.score(tokens), forward_probs(disc, tokens), atol=1e-5, rtol=0)


def test_score_is_chunking_invariant() -> None:
    torch.manual_seed(3)
    disc = small()
    tokens = torch.randint(0, VOCAB, (37, 8))
    full = disc.score(tokens)
    for max_batch in (1, 7, 36):
        torch.testing.assert_close(disc.score(tokens, max_batch=max_batch), full, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("seq_len", "filter_sizes", "num_filters"),
    [(8, (1, 3, 8), (4, 5, 6)), (5, (2, 5), (3, 7)), (6, (1, 2, 3, 4, 5, 6), (2, 3, 2, 3, 2, 3)), (2, (1, 2), (3, 4))],
)
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_prefix_rollouts_match_plain_scoring(seq_len, filter_sizes, num_filters, precision) -> None:
    torch.manual_seed(4)
    disc = small(seq_len, filter_sizes, num_filters)
    sequences = torch.randint(0, VOCAB, (3, seq_len))
    rollouts = rollouts_of(sequences, 4, VOCAB)
    shared = disc.score_prefix_rollouts(sequences, rollouts, precision=precision, max_batch=5)
    plain = disc.score(rollouts.reshape(-1, seq_len), precision=precision).view(seq_len - 1, 3, 4)
    assert shared.shape == (seq_len - 1, 3, 4)
    # int8 quantises activations per row, so both paths see the same rows and agree as closely as fp32.
    torch.testing.assert_close(shared, plain, atol=1e-5, rtol=0)


def test_int8_precision_stays_close_to_fp32_at_paper_size() -> None:
    """Stated tolerance of precision="int8" (fp16 token tables + int8 highway GEMM):
    max |dp| <= 1.5e-2 and mean |dp| <= 2e-3 on a freshly initialised paper-size model,
    whose logits (std ~3) are sharper than a trained discriminator's."""
    torch.manual_seed(5)
    disc = Discriminator(5000, 20)
    tokens = torch.randint(0, 5000, (2048, 20))
    delta = (disc.score(tokens, precision="int8") - disc.score(tokens)).abs()
    assert delta.max() <= 1.5e-2
    assert delta.mean() <= 2e-3


@pytest.mark.slow
def test_learns_to_separate_low_and_high_tokens() -> None:
    torch.manual_seed(6)
    generator = torch.Generator().manual_seed(6)
    disc = small(seq_len=10, filter_sizes=(2, 3), num_filters=(8, 8))
    real = torch.randint(0, VOCAB // 2, (256, 10))
    fake = torch.randint(VOCAB // 2, VOCAB, (256, 10))
    stats = train_discriminator(
        disc, make_discriminator_optimizer(disc, lr=1e-2), real, fake, epochs=3, generator=generator
    )
    assert set(stats) == {"loss", "accuracy"} and stats["accuracy"] > 0.9
    assert disc.score(real).mean() > 0.9 and disc.score(fake).mean() < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filter_sizes": (1, 9), "num_filters": (2, 2)}, "exceeds seq_len"),
        ({"filter_sizes": (1, 2), "num_filters": (2,)}, "same length"),
        ({"filter_sizes": (0, 2), "num_filters": (2, 2)}, "positive"),
        ({"filter_sizes": (1, 2), "num_filters": (2, 0)}, "positive"),
        ({"filter_sizes": (), "num_filters": ()}, "empty"),
        ({"dropout_keep": 0.0}, "dropout_keep"),
        ({"l2_reg": -1.0}, "l2_reg"),
    ],
)
def test_config_errors(kwargs, message) -> None:
    base = {"filter_sizes": (1, 2), "num_filters": (2, 2)} | kwargs
    with pytest.raises(ValueError, match=message):
        Discriminator(VOCAB, 8, emb_dim=4, **base)


@pytest.mark.parametrize("name", ["vocab_size", "seq_len", "emb_dim"])
def test_non_positive_sizes(name) -> None:
    sizes = {"vocab_size": VOCAB, "seq_len": 8, "emb_dim": 4} | {name: 0}
    with pytest.raises(ValueError, match=name):
        Discriminator(**sizes, filter_sizes=(1,), num_filters=(2,))


def test_input_errors() -> None:
    disc = small()
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 40\)"):
        disc.score(torch.full((2, 8), VOCAB))
    with pytest.raises(ValueError, match="token ids"):
        disc.score(torch.full((2, 8), -1))
    with pytest.raises(ValueError, match="shape"):
        disc.score(torch.zeros(2, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        disc.score(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="precision"):
        disc.score(torch.zeros(2, 8, dtype=torch.long), precision="fp8")
    sequences = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="rollouts must have shape"):
        disc.score_prefix_rollouts(sequences, torch.zeros(8, 2, 3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        disc.loss(sequences, torch.zeros(3, dtype=torch.long))
