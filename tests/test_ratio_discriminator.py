"""The ratio discriminator: logit log q − log p_G of every prefix, its reference, its objectives, its path.

Each is checked against its formula computed directly:

* the logit of every prefix is the float64 sum of the two language models' per-token log-probabilities, and
  no position reads a later token;
* the first ``set_reference`` starts q from the generator (every logit 0), later ones move only the reference;
* ``mle``'s gradient is that of q's negative log-likelihood on the real rows; ``nce`` is the cross-entropy at
  every prefix;
* a d-step of the actor sets the reference to the generator it samples from and trains q alone;
* q started from the oracle (``ratio_start=oracle``) gives D*'s logit;
* the Learner's reward step reads SeqGAN's Q from it, with no rollout pool;
* its options are refused where they cannot work, before any work.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_learning import TINY, episodes_of, q_column, tiny_learner, tiny_run  # noqa: F401

from seqgan_rl.config import TrainConfig, refuse_monte_carlo_options
from seqgan_rl.distributed.discriminator_actor import DiscriminatorActor
from seqgan_rl.distributed.weights import module_weights
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.models.discriminator import make_discriminator_optimizer, train_discriminator
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.models.ratio_discriminator import RatioDiscriminator
from seqgan_rl.rewards import dense_values

CONFIG = GeneratorConfig(vocab_size=11, seq_len=7, emb_dim=5, hidden_dim=6)


def generator_state(seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    return {name: value.numpy() for name, value in Generator(CONFIG).state_dict().items()}


def started_ratio(objective: str = "mle") -> RatioDiscriminator:
    """A ratio discriminator whose q started from generator 1 and then moved to generator 2's weights."""
    model = RatioDiscriminator(CONFIG.vocab_size, CONFIG.seq_len, CONFIG.emb_dim, CONFIG.hidden_dim,
                               objective=objective)
    model.set_reference(generator_state(1))
    model.model.load_state_dict({k: torch.as_tensor(v) for k, v in generator_state(2).items()})
    return model


def test_every_prefix_logit_is_the_float64_difference_of_the_two_log_likelihoods() -> None:
    model = started_ratio()
    tokens = torch.randint(0, CONFIG.vocab_size, (5, CONFIG.seq_len), generator=torch.Generator().manual_seed(3))
    q, reference = Generator(CONFIG).double(), Generator(CONFIG).double()
    q.load_state_dict(model.model.state_dict())
    reference.load_state_dict(model.reference.state_dict())
    with torch.no_grad():
        expected = torch.cumsum(q.log_prob(tokens) - reference.log_prob(tokens), dim=1)  # (5, T) float64
    logits = model.prefix_logits(tokens)
    assert logits.shape == (5, CONFIG.seq_len) and logits.dtype == torch.float32
    torch.testing.assert_close(logits.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.score(tokens).double(), torch.sigmoid(expected[:, -1]), rtol=0, atol=1e-6)
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % CONFIG.vocab_size  # later tokens do not move an earlier prefix
    torch.testing.assert_close(model.prefix_logits(changed)[:, :4], logits[:, :4], rtol=0, atol=0)


def test_the_first_reference_starts_q_and_later_ones_move_only_the_reference() -> None:
    model = RatioDiscriminator(CONFIG.vocab_size, CONFIG.seq_len, CONFIG.emb_dim, CONFIG.hidden_dim)
    tokens = torch.randint(0, CONFIG.vocab_size, (4, CONFIG.seq_len), generator=torch.Generator().manual_seed(4))
    model.set_reference(generator_state(1))
    assert bool(model.started)
    assert torch.equal(model.prefix_logits(tokens), torch.zeros(4, CONFIG.seq_len))  # D = 1/2: no information yet
    model.set_reference(generator_state(2))
    for name, value in generator_state(1).items():
        assert np.array_equal(model.model.state_dict()[name].numpy(), value), name  # q kept
    for name, value in generator_state(2).items():
        assert np.array_equal(model.reference.state_dict()[name].numpy(), value), name
    copy = RatioDiscriminator(CONFIG.vocab_size, CONFIG.seq_len, CONFIG.emb_dim, CONFIG.hidden_dim)
    copy.load_state_dict(model.state_dict())  # the weights a copy is sent carry q, the reference and the flag
    assert bool(copy.started) and torch.equal(copy.prefix_logits(tokens), model.prefix_logits(tokens))


def test_mle_has_the_gradient_of_qs_likelihood_on_the_real_rows_and_nce_is_the_prefix_cross_entropy() -> None:
    tokens = torch.randint(0, CONFIG.vocab_size, (6, CONFIG.seq_len), generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([1, 0, 1, 1, 0, 0])
    model = started_ratio("mle")
    model.objective(model(tokens), labels).backward()
    got = {name: p.grad.clone() for name, p in model.model.named_parameters()}
    assert all(p.grad is None for p in model.reference.parameters())
    q = Generator(CONFIG)
    q.load_state_dict(model.model.state_dict())
    (-q.log_prob(tokens[labels == 1]).mean()).backward()
    for name, p in q.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6)
    nce = started_ratio("nce")
    logits = nce(tokens)
    expected = F.binary_cross_entropy_with_logits(logits, labels[:, None].float().expand_as(logits))
    torch.testing.assert_close(nce.objective(logits, labels), expected)
    with pytest.raises(ConfigError, match="objective must be one of mle, nce"):
        RatioDiscriminator(11, 7, objective="kl")
    with pytest.raises(DataError, match=r"expected token ids \(M, 7\)"):
        nce(tokens[:, :3])


def test_a_d_step_trains_q_alone_against_the_generator_it_samples_from() -> None:
    """The actor's ``train_on_generator`` makes its generator the reference (and, the first time, q's start); the
    optimiser moves q only, and the step equals one taken by hand from that start."""
    sizes = {"emb_dim": CONFIG.emb_dim, "hidden_dim": CONFIG.hidden_dim}
    real = np.random.default_rng(6).integers(0, CONFIG.vocab_size // 2, (64, CONFIG.seq_len))
    actor = DiscriminatorActor(CONFIG.vocab_size, CONFIG.seq_len, architecture="ratio", discriminator_kwargs=sizes,
                               lr=1e-2, device="cpu", seed=7, real_data=real)
    state = generator_state(3)
    stats = actor.train_on_generator(asdict(CONFIG), state, 64, 1, batch_size=32)
    for name, value in state.items():
        assert np.array_equal(actor.model.reference.state_dict()[name].numpy(), value), name
    assert not all(np.array_equal(actor.model.model.state_dict()[name].numpy(), value) for name, value in state.items())
    by_hand = RatioDiscriminator(CONFIG.vocab_size, CONFIG.seq_len, **sizes)
    by_hand.set_reference(state)
    generator = Generator(CONFIG, init_std=None)
    generator.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
    fake = generator.sample(64, generator=torch.Generator().manual_seed(7 + 1))
    hand_stats = train_discriminator(by_hand, make_discriminator_optimizer(by_hand, lr=1e-2), torch.as_tensor(real),
                                     fake, epochs=1, batch_size=32, generator=torch.Generator().manual_seed(7))
    assert stats["loss"] == pytest.approx(hand_stats["loss"], rel=1e-6)
    for name, value in by_hand.state_dict().items():
        torch.testing.assert_close(actor.model.state_dict()[name], value, rtol=0, atol=0)


@pytest.mark.parametrize(("kind", "gamma"), [("prefix", 0.0), ("increment", 1.0)])
def test_the_learners_reward_step_reads_q_from_the_ratio_discriminator(tiny_run, kind: str,  # noqa: F811
                                                                       gamma: float) -> None:
    """SeqGAN's MC_Q is ``dense_values`` of the ratio discriminator's prefix logits, without a rollout pool."""
    model = RatioDiscriminator(TINY.vocab_size, TINY.seq_len, TINY.emb_dim, TINY.hidden_dim)
    torch.manual_seed(8)
    model.set_reference(Generator(TINY).state_dict())
    model.model.load_state_dict(Generator(TINY).state_dict())
    tokens = torch.randint(0, TINY.vocab_size, (6, TINY.seq_len), generator=torch.Generator().manual_seed(9))
    logits = model.prefix_logits(tokens).double()
    options = TrainConfig().with_overrides(reward_model="ratio", reward_transform="log_d", baseline="none",
                                           value_warmup_steps=0, dense_rewards=kind, dense_gamma=gamma)
    learner, _ = tiny_learner(options, tiny_run)
    piece = learner.monte_carlo_connector()
    piece.update_rollout_policy(learner.module)
    piece.set_discriminator_weights(module_weights(model, version=1))
    batch: dict = {}
    piece(rl_module=learner.module, batch=batch, episodes=episodes_of(tokens, torch.zeros(tokens.shape)))
    q, _ = dense_values(logits, np.ones(tokens.shape, dtype=bool), "log_d", gamma, kind)
    np.testing.assert_allclose(q_column(batch), q, rtol=1e-5, atol=1e-5)
    assert piece._pool is None


def test_an_oracle_start_gives_the_ideal_discriminators_logit_through_the_actors_d_steps() -> None:
    """``q_start``: q is the oracle, and the first d-step sets only the reference, so with a step too small to
    move q the logit is D*'s, log p_oracle(y) − log p_G(y), computed directly in float64."""
    sizes = {"emb_dim": CONFIG.emb_dim, "hidden_dim": CONFIG.hidden_dim}
    oracle = Oracle.random(CONFIG, seed=11)
    real = oracle.sample(64, generator=torch.Generator().manual_seed(12)).numpy()
    actor = DiscriminatorActor(CONFIG.vocab_size, CONFIG.seq_len, architecture="ratio", discriminator_kwargs=sizes,
                               lr=1e-12, device="cpu", seed=7, real_data=real, q_start=oracle.to_arrays())
    assert bool(actor.model.started)
    state = generator_state(3)
    actor.train_on_generator(asdict(CONFIG), state, 64, 1, batch_size=32)
    tokens = np.random.default_rng(13).integers(0, CONFIG.vocab_size, (16, CONFIG.seq_len))
    generator = Generator(CONFIG).double()
    generator.load_state_dict({name: torch.as_tensor(value) for name, value in state.items()})
    with torch.no_grad():
        ideal = (oracle.double().log_prob(torch.from_numpy(tokens)).sum(dim=1)
                 - generator.log_prob(torch.from_numpy(tokens)).sum(dim=1))  # (16,) float64
    np.testing.assert_allclose(actor.logits(tokens), ideal.numpy(), rtol=0, atol=1e-4)
    with pytest.raises(ConfigError, match="the 'cnn' discriminator has no q"):
        DiscriminatorActor(CONFIG.vocab_size, CONFIG.seq_len, device="cpu", q_start=oracle.to_arrays(),
                           discriminator_kwargs={"emb_dim": 4, "filter_sizes": (1, 2), "num_filters": (3, 3)})


def test_options_the_ratio_discriminator_cannot_use_are_refused() -> None:
    with pytest.raises(ConfigError, match="generator of the latest d-step; d_steps=0"):
        TrainConfig().with_overrides(reward_model="ratio", d_steps=0).validate()
    with pytest.raises(ConfigError, match="reference generator from a d-step; d_pretrain_rounds=0"):
        TrainConfig().with_overrides(reward_model="ratio", d_pretrain_rounds=0).validate()
    with pytest.raises(ConfigError, match="ratio_start='oracle'.*reward_model='ideal' has no q"):
        TrainConfig().with_overrides(reward_model="ideal", ratio_start="oracle").validate()
    with pytest.raises(ConfigError, match="reward_model='ratio' scores every prefix in the Learner"):
        TrainConfig().with_overrides(reward_model="ratio", num_mc_workers=1).validate()
    with pytest.raises(ConfigError, match="--dense-discriminator would do nothing.*the generator's sizes"):
        refuse_monte_carlo_options("ratio", {"dense_discriminator"})
    refuse_monte_carlo_options("dense", {"dense_discriminator"})  # the dense one's own sizes


def test_the_actor_gives_the_information_measure_the_logit_itself_where_its_probability_saturates() -> None:
    """A ratio discriminator's logit is a log-likelihood ratio of tens of nats; its probability is 0 or 1 in
    float32 and would rank nothing. ``DiscriminatorActor.logits`` returns the last prefix's logit in float64."""
    sizes = {"emb_dim": CONFIG.emb_dim, "hidden_dim": CONFIG.hidden_dim}
    actor = DiscriminatorActor(CONFIG.vocab_size, CONFIG.seq_len, architecture="ratio", discriminator_kwargs=sizes,
                               device="cpu", seed=7)
    actor.model.set_reference(generator_state(1))
    with torch.no_grad():
        for parameter in actor.model.model.parameters():
            parameter.mul_(30.0)  # q far from the reference: logits of many nats
    tokens = np.random.default_rng(8).integers(0, CONFIG.vocab_size, (16, CONFIG.seq_len))
    logits = actor.logits(tokens)
    expected = actor.model.prefix_logits(torch.from_numpy(tokens))[:, -1].double().numpy()
    assert logits.dtype == np.float64 and np.abs(logits).max() > 30
    np.testing.assert_array_equal(logits, expected)
    assert len(np.unique(logits)) == 16  # every sequence ranked; the clipped probabilities would tie
