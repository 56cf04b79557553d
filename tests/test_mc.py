"""The Monte Carlo Q engine agrees with the original loop structure and is chunking-invariant."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL
from reference_mc import reference_q

from seqgan_rl.errors import TrainingError
from seqgan_rl.mc import MonteCarloQ, RolloutPolicy
from seqgan_rl.models.generator import Generator, GeneratorConfig

LOW = SMALL.vocab_size // 2


def low_token_fraction(tokens: torch.Tensor) -> torch.Tensor:
    """A deterministic scorer that depends on every token: share of ids below V/2."""
    return (tokens < LOW).float().mean(dim=1)


def first_token_score(tokens: torch.Tensor) -> torch.Tensor:
    """A scorer that ignores every completion (all rollouts share y_1)."""
    return torch.sigmoid(tokens[:, 0].float() / SMALL.vocab_size)


@pytest.fixture()
def policy() -> Generator:
    return Generator(SMALL, init_std=0.5)


def test_shapes_and_last_column_is_the_score(policy: Generator) -> None:
    sequences = policy.sample(5)
    q = MonteCarloQ(num_rollouts=3)(sequences, policy, low_token_fraction)
    assert q.shape == (5, SMALL.seq_len) and q.dtype == torch.float32
    assert torch.equal(q[:, -1], low_token_fraction(sequences))
    assert ((q >= 0) & (q <= 1)).all()


def test_rollouts_keep_prefixes(policy: Generator) -> None:
    sequences = policy.sample(4)
    engine = MonteCarloQ(num_rollouts=3)
    uniforms = torch.rand(4, SMALL.seq_len - 1, 3, SMALL.seq_len)
    rollouts = engine.rollouts(sequences, policy, uniforms)
    assert rollouts.shape == (SMALL.seq_len - 1, 4, 3, SMALL.seq_len)
    for t in range(1, SMALL.seq_len):
        assert torch.equal(rollouts[t - 1, :, :, :t], sequences[:, None, :t].expand(4, 3, t))
    # completions differ between rollouts of the same prefix (random, not copies)
    assert not torch.equal(rollouts[0, :, 0], rollouts[0, :, 1])


def test_exact_agreement_when_the_scorer_ignores_completions(policy: Generator) -> None:
    sequences = policy.sample(6)
    fast = MonteCarloQ(num_rollouts=4)(sequences, policy, first_token_score)
    slow = reference_q(sequences, policy, first_token_score, num_rollouts=4)
    assert torch.allclose(fast, slow, atol=1e-6)


def test_agreement_in_distribution_with_the_reference_loop(policy: Generator) -> None:
    sequences = policy.sample(8, generator=torch.Generator().manual_seed(3))
    n = 400
    fast = MonteCarloQ(num_rollouts=n)(sequences, policy, low_token_fraction,
                                       generator=torch.Generator().manual_seed(1))
    slow = reference_q(sequences, policy, low_token_fraction, n, generator=torch.Generator().manual_seed(2))
    # each Q_t is a mean of n scores in [0, 1] whose sd is at most (T−t)/T · 0.5; 5 sd of the difference
    bound = 5 * 0.5 * (2 / n) ** 0.5
    assert (fast - slow).abs().max() < bound
    assert torch.equal(fast[:, -1], slow[:, -1])


def test_q_matches_the_exact_expectation() -> None:
    """Tiny vocabulary: E[Q_t] is computable exactly by enumerating all completions."""
    config = GeneratorConfig(vocab_size=3, seq_len=4, emb_dim=4, hidden_dim=4)
    model = Generator(config, init_std=1.0)
    sequences = torch.tensor([[0, 2, 1, 1], [2, 2, 0, 1]])
    scorer = lambda x: (x == 2).float().mean(1)  # noqa: E731
    q = MonteCarloQ(num_rollouts=20_000)(sequences, model, scorer, generator=torch.Generator().manual_seed(0))
    for b in range(2):
        for t in range(1, config.seq_len):
            rest = config.seq_len - t
            completions = torch.cartesian_prod(*[torch.arange(3)] * rest).reshape(-1, rest)
            full = torch.cat([sequences[b, :t].expand(len(completions), t), completions], 1)
            with torch.no_grad():
                probs = model.log_prob(full)[:, t:].sum(1).exp()
            expected = float((probs * scorer(full)).sum())
            assert q[b, t - 1] == pytest.approx(expected, abs=0.01)


def test_chunking_does_not_change_results(policy: Generator) -> None:
    sequences = policy.sample(7)
    results = [
        MonteCarloQ(num_rollouts=5, max_batch=max_batch, chunk_rows=chunk)(
            sequences, policy, low_token_fraction, generator=torch.Generator().manual_seed(9)
        )
        for max_batch, chunk in [(1, 3), (100, 64), (1 << 20, 4096)]
    ]
    assert torch.equal(results[0], results[1]) and torch.equal(results[1], results[2])


def test_bad_inputs(policy: Generator) -> None:
    with pytest.raises(ValueError, match="num_rollouts"):
        MonteCarloQ(num_rollouts=0)
    with pytest.raises(ValueError, match="length 5"):
        MonteCarloQ(2)(torch.zeros(2, 5, dtype=torch.long), policy, low_token_fraction)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        MonteCarloQ(2)(torch.full((2, SMALL.seq_len), SMALL.vocab_size), policy, low_token_fraction)
    with pytest.raises(TrainingError, match=r"non-finite scores \(NaN or inf\) for 28 of 28"):
        MonteCarloQ(2)(policy.sample(2), policy, lambda x: torch.full((len(x),), float("nan")))
    with pytest.raises(ValueError, match="shape"):
        MonteCarloQ(2)(policy.sample(2), policy, lambda x: torch.zeros(len(x), 2))


def test_rollout_policy_update_direction() -> None:
    generator = Generator(SMALL)
    rollout = RolloutPolicy(generator, beta=0.8)
    before = {k: v.clone() for k, v in rollout.model.state_dict().items()}
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
    rollout.update(generator)
    after = rollout.model.state_dict()
    target = generator.state_dict()
    name = "lstm.weight_hh_l0"
    assert torch.allclose(after[name], 0.8 * before[name] + 0.2 * target[name])
    assert torch.equal(after["embedding.weight"], target["embedding.weight"])  # copied, as the original
    frozen = RolloutPolicy(generator, beta=1.0)
    copy = RolloutPolicy(Generator(SMALL), beta=0.0, mix_embedding=True)
    copy.update(generator)
    assert all(torch.equal(a, b) for a, b in zip(copy.model.state_dict().values(), target.values()))
    frozen_before = {k: v.clone() for k, v in frozen.model.state_dict().items()}
    frozen.update(Generator(SMALL))
    assert torch.equal(frozen.model.state_dict()["output.weight"], frozen_before["output.weight"])
    assert not any(p.requires_grad for p in rollout.model.parameters())
    with pytest.raises(ValueError, match="beta"):
        RolloutPolicy(generator, beta=1.5)


def test_discriminator_prefix_path_equals_plain_scoring(policy: Generator) -> None:
    """The engine uses a Discriminator's shared-prefix scoring; Q equals plain per-sequence scoring."""
    from seqgan_rl.models.discriminator import Discriminator

    disc = Discriminator(SMALL.vocab_size, SMALL.seq_len, emb_dim=8, filter_sizes=(1, 3, SMALL.seq_len),
                         num_filters=(4, 5, 6)).eval()
    sequences = policy.sample(5)
    engine = MonteCarloQ(num_rollouts=4)
    shared = engine(sequences, policy, disc, generator=torch.Generator().manual_seed(0))
    plain = engine(sequences, policy, disc.score, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(shared, plain, atol=1e-5)
    assert torch.allclose(shared[:, -1], disc.score(sequences))
