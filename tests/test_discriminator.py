"""Tests of the SeqGAN discriminator: shapes, fast paths vs forward, precision, learning, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqgan_rl.models import torch_ops
from seqgan_rl.models.discriminator import (
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


def reference_logits(disc: Discriminator, tokens: torch.Tensor) -> torch.Tensor:
    """The architecture written out plainly with F.conv1d: relu(conv + bias), max over time,
    highway, dropout (when disc is training), output layer. tokens: (M, T). Returns (M, 2)."""
    emb = F.embedding(tokens, disc.embedding.weight).transpose(1, 2)  # (M, E, T)
    pooled = torch.cat([F.conv1d(emb, c.weight, c.bias).relu().amax(dim=2) for c in disc.convs], dim=1)
    transform, gate = F.linear(pooled, disc.highway.weight, disc.highway.bias).chunk(2, dim=1)
    gate = gate.sigmoid()
    mixed = gate * transform.relu() + (1 - gate) * pooled
    return F.linear(F.dropout(mixed, disc.dropout.p, disc.training), disc.output.weight, disc.output.bias)


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


@pytest.mark.parametrize(
    ("seq_len", "filter_sizes", "num_filters", "vocab"),
    [
        (8, (1, 3, 8), (4, 5, 6), VOCAB),
        (12, (1, 2, 2, 4, 12), (3, 3, 4, 2, 5), 5),  # a repeated width; tiny vocab: many tied windows
        (20, PAPER_FILTER_SIZES, PAPER_NUM_FILTERS, 5000),
    ],
)
@pytest.mark.parametrize("training", [False, True])
def test_forward_and_gradients_match_conv1d_reference(seq_len, filter_sizes, num_filters, vocab, training) -> None:
    """The GEMM-on-unfolded-windows forward, with the max over time before bias + ReLU, gives the
    logits and parameter gradients of the plain nn.Conv1d formulation (float64, same dropout mask)."""
    torch.manual_seed(7)
    disc = Discriminator(vocab, seq_len, emb_dim=6 if vocab < 5000 else 64, filter_sizes=filter_sizes,
                         num_filters=num_filters).double().train(training)  # fmt: skip
    tokens, labels = torch.randint(0, vocab, (16, seq_len)), torch.randint(0, 2, (16,))
    grads = []
    for logits_of in (disc, lambda x: reference_logits(disc, x)):
        torch.manual_seed(8)  # the same dropout mask on both paths
        disc.zero_grad(set_to_none=True)
        logits = logits_of(tokens)
        disc.objective(logits, labels).backward()
        grads.append((logits.detach(), {name: p.grad.clone() for name, p in disc.named_parameters()}))
    (fast, fast_grads), (reference, reference_grads) = grads
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    assert fast_grads.keys() == reference_grads.keys()
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], reference_grads[name], rtol=1e-10, atol=1e-12, msg=name)


def test_parameters_and_state_dict_layout() -> None:
    """The scoring path and checkpoints read these parameters; the fast forward must not move them."""
    disc = small()
    keys = set(disc.state_dict())
    assert {"embedding.weight", "highway.weight", "highway.bias", "output.weight", "output.bias"} <= keys
    for i, (k, f) in enumerate(zip(disc.filter_sizes, disc.num_filters)):
        assert disc.state_dict()[f"convs.{i}.weight"].shape == (f, disc.emb_dim, k)
        assert disc.state_dict()[f"convs.{i}.bias"].shape == (f,)


def test_fused_adam_matches_the_per_op_loop() -> None:
    data = torch.Generator().manual_seed(9)
    real = torch.randint(0, VOCAB // 2, (40, 8), generator=data)
    fake = torch.randint(VOCAB // 2, VOCAB, (40, 8), generator=data)
    models = []
    for fused in (True, False):
        torch.manual_seed(10)
        disc = small()
        if fused:
            optimizer = make_discriminator_optimizer(disc, lr=1e-2)
            assert optimizer.defaults["fused"]
        else:
            optimizer = torch.optim.Adam(disc.parameters(), lr=1e-2)
        shuffle = torch.Generator().manual_seed(11)
        train_discriminator(disc, optimizer, real, fake, epochs=2, batch_size=16, generator=shuffle)
        models.append(disc.state_dict())
    for name, value in models[0].items():
        torch.testing.assert_close(value, models[1][name], rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_training_tracks_fp32() -> None:
    """precision="bf16" (autocast) learns like fp32 from the same initialisation and seed."""
    real = torch.randint(0, VOCAB // 2, (256, 10), generator=torch.Generator().manual_seed(12))
    fake = torch.randint(VOCAB // 2, VOCAB, (256, 10), generator=torch.Generator().manual_seed(13))
    results = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(14)
        disc = small(seq_len=10, filter_sizes=(2, 3), num_filters=(8, 8))
        stats = train_discriminator(
            disc, make_discriminator_optimizer(disc, lr=1e-2), real, fake, epochs=3,
            generator=torch.Generator().manual_seed(15), precision=precision,
        )  # fmt: skip
        assert all(p.dtype == torch.float32 for p in disc.parameters())
        results[precision] = stats, disc.score(torch.cat([real, fake]))
    (stats32, probs32), (stats16, probs16) = results["fp32"], results["bf16"]
    assert stats16["accuracy"] > 0.9 and abs(stats16["loss"] - stats32["loss"]) < 0.02
    assert (probs16 - probs32).abs().mean() < 0.01
    # and bf16 really ran: its rounding moved the weights, so the scores are not fp32's
    assert (probs16 - probs32).abs().max() > 0 and stats16["loss"] != stats32["loss"]


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
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        int8 = disc.score(tokens, precision="int8")
    delta = (int8 - disc.score(tokens)).abs()
    assert delta.max() <= 1.5e-2
    assert delta.mean() <= 2e-3
    # and the int8 path really ran: an integer GEMM was executed and its rounding shows
    ops = {event.key for event in profile.key_averages()}
    assert ("aten::_int_mm" in ops) if torch_ops.PRIVATE_INT_MM else ("aten::matmul" in ops)
    assert delta.max() > 0


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
    with pytest.raises(ValueError, match="precision"):
        train_discriminator(disc, make_discriminator_optimizer(disc), sequences, sequences, epochs=1, precision="fp16")
