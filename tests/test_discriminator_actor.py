"""The discriminator actor on a real local Ray: scoring, d-steps, weights and state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqgan_rl.models.discriminator import Discriminator

SMALL_D = {"emb_dim": 8, "filter_sizes": (1, 2, 3), "num_filters": (4, 4, 4)}
VOCAB, LENGTH = 30, 6


@pytest.fixture()
def actor(ray_local):
    from seqgan_rl.distributed import start_discriminator_actor

    handle = start_discriminator_actor("disc-under-test", VOCAB, LENGTH, num_cpus=0.5, seed=3, lr=1e-2,
                                       discriminator_kwargs=SMALL_D)
    yield handle
    ray_local.kill(handle)


def test_named_actor_scores_like_the_local_model(ray_local, actor) -> None:
    tokens = np.random.default_rng(0).integers(0, VOCAB, (40, LENGTH))
    scores = ray_local.get(ray_local.get_actor("disc-under-test").score.remote(tokens))
    local = Discriminator(VOCAB, LENGTH, **SMALL_D)
    local.load_state_dict({k: torch.tensor(v) for k, v in ray_local.get(actor.get_weights.remote())["state"].items()})
    assert scores.shape == (40,) and scores.dtype == np.float32
    assert np.allclose(scores, local.score(torch.from_numpy(tokens)).numpy(), atol=1e-6)


def test_d_steps_learn_and_bump_the_version(ray_local, actor) -> None:
    rng = np.random.default_rng(1)
    real = rng.integers(0, VOCAB // 2, (256, LENGTH))
    fake = rng.integers(VOCAB // 2, VOCAB, (256, LENGTH))
    before = ray_local.get(actor.get_weights.remote())
    stats = None
    for _ in range(3):
        stats = ray_local.get(actor.train.remote(real, fake, epochs=2))
    assert stats["version"] == 3 and stats["accuracy"] > 0.9
    scores = ray_local.get(actor.score.remote(np.concatenate([real[:20], fake[:20]])))
    assert scores[:20].mean() > 0.8 > 0.2 > scores[20:].mean()
    after = ray_local.get(actor.get_weights.remote())
    assert not np.array_equal(before["state"]["highway.weight"], after["state"]["highway.weight"])


def test_state_round_trip_into_a_new_actor(ray_local, actor) -> None:
    from seqgan_rl.distributed import start_discriminator_actor

    rng = np.random.default_rng(2)
    ray_local.get(actor.train.remote(rng.integers(0, VOCAB, (64, LENGTH)), rng.integers(0, VOCAB, (64, LENGTH)), 1))
    state = ray_local.get(actor.get_state.remote())
    clone = start_discriminator_actor("disc-clone", VOCAB, LENGTH, num_cpus=0.5, seed=99, lr=1e-2,
                                      discriminator_kwargs=SMALL_D)
    ray_local.get(clone.set_state.remote(state))
    tokens = rng.integers(0, VOCAB, (16, LENGTH))
    assert np.array_equal(ray_local.get(actor.score.remote(tokens)), ray_local.get(clone.score.remote(tokens)))
    # the same next d-step on both (same optimiser moments and shuffling RNG) gives the same weights
    real, fake = rng.integers(0, VOCAB, (64, LENGTH)), rng.integers(0, VOCAB, (64, LENGTH))
    ray_local.get([actor.train.remote(real, fake, 1), clone.train.remote(real, fake, 1)])
    a, b = ray_local.get([actor.get_weights.remote(), clone.get_weights.remote()])
    assert a["version"] == b["version"]
    assert all(np.allclose(a["state"][k], b["state"][k], atol=1e-7) for k in a["state"])
    ray_local.kill(clone)


def test_bad_batches_get_a_clear_error(ray_local, actor) -> None:
    with pytest.raises(Exception, match=r"expected token ids \[M, T\]"):
        ray_local.get(actor.score.remote(np.zeros(LENGTH, dtype=np.int64)))
    with pytest.raises(Exception, match=r"token ids must be in \[0, 30\)"):
        ray_local.get(actor.score.remote(np.full((2, LENGTH), VOCAB)))


def test_d_step_on_generator_samples_balances_the_classes(ray_local, actor) -> None:
    from dataclasses import asdict

    from seqgan_rl.models.generator import Generator, GeneratorConfig

    config = GeneratorConfig(vocab_size=VOCAB, seq_len=LENGTH, emb_dim=8, hidden_dim=8)
    state = {k: v.numpy() for k, v in Generator(config).state_dict().items()}
    with pytest.raises(Exception, match="set_real_data first"):
        ray_local.get(actor.train_on_generator.remote(asdict(config), state, 10, 1))
    assert ray_local.get(actor.set_real_data.remote(np.random.default_rng(3).integers(0, VOCAB, (100, LENGTH)))) == 100
    fewer = ray_local.get(actor.train_on_generator.remote(asdict(config), state, 40, 1))
    assert (fewer["num_real"], fewer["num_fake"]) == (40, 40)  # a fresh real subset as large as the fakes
    more = ray_local.get(actor.train_on_generator.remote(asdict(config), state, 150, 1))
    assert (more["num_real"], more["num_fake"]) == (100, 150)  # all real sequences when there are fewer
    assert more["version"] == fewer["version"] + 1
    with pytest.raises(Exception, match=r"token ids must be in \[0, 30\)"):
        ray_local.get(actor.set_real_data.remote(np.full((4, LENGTH), VOCAB)))


def test_fresh_positives_are_the_oracles_samples_drawn_for_each_d_step() -> None:
    """``d_fresh_real``: a d-step's real sequences are new oracle samples (as many as its negatives), drawn from
    the actor's own checkpointed RNG, not the fixed real set: the same weights as training by hand on them."""
    from dataclasses import asdict

    from seqgan_rl.distributed.discriminator_actor import DiscriminatorActor
    from seqgan_rl.models.generator import Generator, GeneratorConfig
    from seqgan_rl.models.oracle import Oracle

    config = GeneratorConfig(vocab_size=VOCAB, seq_len=LENGTH, emb_dim=8, hidden_dim=8)
    oracle, generator = Oracle.random(config, seed=1), Generator(config)
    state = {k: v.numpy() for k, v in generator.state_dict().items()}
    fixed = np.random.default_rng(3).integers(0, VOCAB, (10, LENGTH))
    fresh = DiscriminatorActor(VOCAB, LENGTH, discriminator_kwargs=SMALL_D, device="cpu", seed=5, real_data=fixed,
                               oracle=oracle.to_arrays())
    stats = fresh.train_on_generator(asdict(config), state, 150, 1)
    assert (stats["num_real"], stats["num_fake"]) == (150, 150)  # more positives than the fixed set holds
    by_hand = DiscriminatorActor(VOCAB, LENGTH, discriminator_kwargs=SMALL_D, device="cpu", seed=5)
    real = oracle.sample(150, generator=torch.Generator().manual_seed(5 + 2))
    fake = generator.sample(150, generator=torch.Generator().manual_seed(5 + 1))
    by_hand.train(real.numpy(), fake.numpy(), 1)
    for name, value in fresh.model.state_dict().items():
        assert torch.equal(value, by_hand.model.state_dict()[name]), name
    restored = DiscriminatorActor(VOCAB, LENGTH, discriminator_kwargs=SMALL_D, device="cpu", seed=9, real_data=fixed,
                                  oracle=oracle.to_arrays(), state=fresh.get_state())
    assert torch.equal(restored.oracle_sampling.get_state(), fresh.oracle_sampling.get_state())
