"""Generator: shapes, O(1) stepping agrees with teacher forcing, seeded sampling, bad input."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL

from seqgan_rl.models.generator import Generator, GeneratorConfig


@pytest.fixture()
def generator() -> Generator:
    return Generator(SMALL)


def test_forward_shapes_and_loss(generator: Generator) -> None:
    tokens = torch.randint(0, SMALL.vocab_size, (5, SMALL.seq_len))
    logits, loss = generator(tokens, tokens)
    assert logits.shape == (5, SMALL.seq_len, SMALL.vocab_size)
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, SMALL.vocab_size), tokens.reshape(-1))
    assert torch.allclose(loss, expected)
    assert generator(tokens)[1] is None


def test_step_by_step_equals_teacher_forcing(generator: Generator) -> None:
    tokens = torch.randint(0, SMALL.vocab_size, (4, SMALL.seq_len))
    logits, _ = generator(tokens)
    state = generator.initial_state(4)
    previous = generator.start_tokens(4)
    for t in range(SMALL.seq_len):
        step_logits, state = generator.step(previous, state)
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5)
        previous = tokens[:, t]


def test_prefix_states_match_stepping(generator: Generator) -> None:
    tokens = torch.randint(0, SMALL.vocab_size, (3, SMALL.seq_len))
    h, c = generator.prefix_states(tokens)
    assert h.shape == c.shape == (3, SMALL.seq_len, SMALL.hidden_dim)
    state = generator.step(generator.start_tokens(3), generator.initial_state(3))[1]
    for t in range(SMALL.seq_len):
        state = generator.step(tokens[:, t], state)[1]
        assert torch.allclose(state[0], h[:, t], atol=1e-6) and torch.allclose(state[1], c[:, t], atol=1e-6)


def test_log_prob_and_nll(generator: Generator) -> None:
    tokens = torch.randint(0, SMALL.vocab_size, (6, SMALL.seq_len))
    logits, loss = generator(tokens, tokens)
    expected = torch.log_softmax(logits, -1).gather(2, tokens.unsqueeze(2)).squeeze(2)
    assert torch.allclose(generator.log_prob(tokens, chunk_size=4), expected, atol=1e-5)
    assert generator.nll(tokens) == pytest.approx(loss.item(), rel=1e-5)



def test_mle_loss_equals_mean_negative_log_prob_with_the_same_gradient(generator: Generator) -> None:
    tokens = torch.randint(0, SMALL.vocab_size, (6, SMALL.seq_len))
    loss = generator.mle_loss(tokens)
    fast = torch.autograd.grad(loss, list(generator.parameters()))
    reference = -generator.log_prob(tokens).mean()
    slow = torch.autograd.grad(reference, list(generator.parameters()))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for got, want in zip(fast, slow):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)

def test_sampling_is_seeded_and_in_range(generator: Generator) -> None:
    a = generator.sample(50, generator=torch.Generator().manual_seed(1))
    b = generator.sample(50, generator=torch.Generator().manual_seed(1))
    c = generator.sample(50, generator=torch.Generator().manual_seed(2))
    assert a.shape == (50, SMALL.seq_len) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < SMALL.vocab_size
    # batches of 3 rows: the same distribution (test_samples_follow_the_model), seeded, in range
    batched = generator.sample(7, batch_size=3, generator=torch.Generator().manual_seed(1))
    assert batched.shape == (7, SMALL.seq_len)
    assert torch.equal(batched, generator.sample(7, batch_size=3, generator=torch.Generator().manual_seed(1)))
    assert int(batched.min()) >= 0 and int(batched.max()) < SMALL.vocab_size


@pytest.mark.parametrize("batch_size", [16384, 999])
def test_samples_follow_the_model(batch_size: int) -> None:
    """A model whose distribution is known: empirical frequencies of the first token and of the second
    token after a given first match it, in one batch and in batches of 999 rows."""
    model = Generator(GeneratorConfig(vocab_size=5, seq_len=2, emb_dim=4, hidden_dim=4))
    samples = model.sample(40_000, generator=torch.Generator().manual_seed(0), batch_size=batch_size)
    first_logits, state = model.step(model.start_tokens(1), model.initial_state(1))
    probs = torch.softmax(first_logits[0], 0)
    freq = torch.bincount(samples[:, 0], minlength=5).double() / len(samples)
    assert torch.allclose(freq, probs.double(), atol=0.01)
    second_logits, _ = model.step(torch.tensor([0]), state)  # after first token 0
    after_zero = samples[samples[:, 0] == 0, 1]
    freq = torch.bincount(after_zero, minlength=5).double() / len(after_zero)
    assert torch.allclose(freq, torch.softmax(second_logits[0], 0).double(), atol=0.025)


def test_continue_sequences_keeps_prefixes(generator: Generator) -> None:
    """Rows joining at different columns keep their prefix and get valid completions."""
    prefix = torch.randint(0, SMALL.vocab_size, (1, SMALL.seq_len))
    rows = SMALL.seq_len - 1
    buffer = prefix.repeat(rows, 1)  # row r holds prefix length r + 1
    h, c = generator.prefix_states(prefix)
    state = (h[0, :rows].clone(), c[0, :rows].clone())
    generator.continue_sequences(buffer, state, active_rows=list(range(1, rows + 1)))
    for r in range(rows):
        assert torch.equal(buffer[r, : r + 1], prefix[0, : r + 1])
    assert not torch.equal(buffer, prefix.repeat(rows, 1))  # something was sampled
    with pytest.raises(ValueError, match="non-decreasing"):
        generator.continue_sequences(buffer, state, active_rows=[2, 1] + [2] * (SMALL.seq_len - 3))


def test_rows_joining_in_groups_draw_the_tokens_of_rows_joining_alone(generator: Generator) -> None:
    """group_size: groups of rows with one state draw their first token from one distribution with each
    row's uniform, which gives the tokens every row would draw on its own."""
    prefixes, copies = 3, 4
    sequences = torch.randint(0, SMALL.vocab_size, (2, SMALL.seq_len), generator=torch.Generator().manual_seed(1))
    h, c = generator.prefix_states(sequences)  # (2, T, H)
    # rows ordered (prefix length t, sequence b, copy n); prefix t joins at column t
    order = [(t, b) for t in range(1, prefixes + 1) for b in range(2) for _ in range(copies)]
    buffer = torch.stack([sequences[b] for _, b in order])  # (R, T)
    states = [torch.stack([x[b, t - 1] for t, b in order]) for x in (h, c)]
    uniforms = torch.rand(len(order), SMALL.seq_len, generator=torch.Generator().manual_seed(2))
    active = [min(column, prefixes) * 2 * copies for column in range(1, SMALL.seq_len)]
    alone, grouped = buffer.clone(), buffer.clone()
    generator.continue_sequences(alone, tuple(x.clone() for x in states), active_rows=active, uniforms=uniforms)
    generator.continue_sequences(grouped, tuple(x.clone() for x in states), active_rows=active, uniforms=uniforms,
                                 group_size=copies)
    assert torch.equal(grouped, alone)
    with pytest.raises(ValueError, match="only with uniforms"):
        generator.continue_sequences(buffer.clone(), states, active_rows=active, group_size=copies)
    with pytest.raises(ValueError, match="join in groups of 3, but 8 join at column 1"):
        generator.continue_sequences(buffer.clone(), states, active_rows=active, uniforms=uniforms, group_size=3)


def test_bad_tokens_are_rejected(generator: Generator) -> None:
    with pytest.raises(ValueError, match=r"token id 97 in row 1 is outside the vocabulary \[0, 97\)"):
        generator.log_prob(torch.tensor([[0] * SMALL.seq_len, [97] + [0] * (SMALL.seq_len - 1)]))
    with pytest.raises(ValueError, match="shape"):
        generator(torch.zeros(SMALL.seq_len, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        generator(torch.zeros(2, SMALL.seq_len))


@pytest.mark.parametrize("field", ["vocab_size", "seq_len", "emb_dim", "hidden_dim"])
def test_config_rejects_non_positive_sizes(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: 0})


def test_log_prob_at_a_temperature_is_the_tempered_softmax() -> None:
    generator = Generator(SMALL)
    tokens = generator.sample(5)
    logits, _ = generator(tokens)  # (5, T, V)
    for temperature in (0.5, 1.0, 3.0):
        expected = torch.log_softmax(logits / temperature, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(generator.log_prob(tokens, temperature=temperature), expected)
    with pytest.raises(ValueError, match="temperature"):
        generator.log_prob(tokens, temperature=0.0)
