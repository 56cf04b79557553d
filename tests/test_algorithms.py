"""PPO, APPO and IMPALA on SeqGAN's pieces (``with_seqgan``) on a real local Ray: they train the generator."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
from conftest import SMALL
from test_seqgan_algorithm import generator_state, small_config

from seqgan_rl.errors import ConfigError


def seqgan_pieces(inputs, name: str, reward: str = "shaped"):
    from seqgan_rl.rllib.with_seqgan import build_config, with_seqgan

    steps = 12 * SMALL.seq_len
    options = {"ppo": {"minibatch_size": steps, "num_epochs": 1}, "appo": {"minibatch_size": steps},
               "impala": {"minibatch_size": steps}}[name]
    config = build_config(name, train_batch_size_per_learner=steps, gamma=1.0, **options)
    config.env_runners(num_env_runners=0, num_envs_per_env_runner=12, rollout_fragment_length=SMALL.seq_len)
    settings = small_config(inputs, algo=name, reward=reward).seqgan_settings()  # lr 0.01, seed 5
    return with_seqgan(config, settings, SMALL, inputs[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ppo", "appo", "impala"])
def test_each_algorithm_trains_the_generator_against_the_discriminator(ray_local, inputs, name) -> None:
    import ray

    algo = seqgan_pieces(inputs, name).build_algo()
    try:
        before = generator_state(algo)
        result = {}
        for _ in range(4):  # IMPALA / APPO update asynchronously: give them a few iterations
            result = algo.train()
            after = generator_state(algo)
            if any(not np.array_equal(before[k], after[k]) for k in before if k.startswith("generator.")):
                break
        else:
            pytest.fail(f"{name}: the generator's weights did not change in 4 iterations")
        # the discriminator schedule ran after the iterations, and the Learner (local for PPO, a Ray actor
        # for APPO / IMPALA) computed Monte Carlo rewards
        assert ray.get(algo.discriminator_actor.get_weights.remote())["version"] >= 2
        assert 0.0 <= result["learners"]["mean_q"] <= 1.0
    finally:
        algo.stop()


def test_shaped_rewards_sum_to_the_terminal_reward(ray_local, inputs) -> None:
    """Q_t − Q_{t−1} rewards keep the return: their sum is Q_T = D(y), the env's terminal reward."""
    algo = seqgan_pieces(inputs, "ppo").build_algo()
    try:
        algo.pretrain_discriminator()
        episodes = algo.env_runner.sample(num_episodes=4)
        terminal = [float(e.get_rewards()[-1]) for e in episodes]
        learner = algo.learner_group._learner
        learner.monte_carlo_connector()(rl_module=learner.module, batch={}, episodes=episodes,
                                        metrics=learner.metrics)
        for episode, reward in zip(episodes, terminal):
            shaped = np.asarray(episode.get_rewards())
            assert len(shaped) == SMALL.seq_len and np.count_nonzero(shaped) > 1  # credit on many tokens
            assert shaped.sum() == pytest.approx(reward, abs=1e-5)
    finally:
        algo.stop()


def test_with_seqgan_refuses_what_cannot_work(inputs) -> None:
    from ray.rllib.algorithms.dqn import DQNConfig

    from seqgan_rl.rllib.with_seqgan import build_config, with_seqgan

    settings = small_config(inputs).seqgan_settings()
    with pytest.raises(ConfigError, match="reward='q'"):
        with_seqgan(build_config("ppo"), settings, SMALL, inputs[1])
    shaped = replace(settings, options=settings.options.with_overrides(algo="ppo", reward="shaped").resolved())
    with pytest.raises(ConfigError, match="DQNConfig"):
        with_seqgan(DQNConfig(), shaped, SMALL, inputs[1])
    with pytest.raises(ConfigError, match="unknown algorithm 'sac'"):
        build_config("sac")
    other = replace(SMALL, hidden_dim=SMALL.hidden_dim + 1)
    with pytest.raises(ConfigError, match="differs"):
        with_seqgan(build_config("ppo"), shaped, other, inputs[1])
    assert asdict(SMALL) == shaped.generator_config
