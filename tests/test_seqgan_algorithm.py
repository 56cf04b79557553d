"""The SeqGAN RLlib algorithm on a real local Ray: one adversarial batch, its Q, checkpoints, bad configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL

from seqgan_rl.errors import ConfigError
from seqgan_rl.models.generator import Generator

SMALL_D = {"emb_dim": 8, "filter_sizes": (1, 3), "num_filters": (6, 6)}


def small_config(inputs: tuple[str, str], **training):
    from seqgan_rl.rllib import SeqGANConfig

    real, mle = inputs
    options = {"real_data": real, "episodes_per_batch": 12, "num_rollouts": 3, "d_steps": 1, "d_epochs": 1,
               "d_num_negatives": 100, "d_pretrain_rounds": 1, "discriminator": SMALL_D,
               "discriminator_num_cpus": 0.5, "seed": 5, **training}
    return SeqGANConfig().generator(SMALL, checkpoint=mle).training(**options)


def generator_state(algo) -> dict[str, np.ndarray]:
    from ray.rllib.core import DEFAULT_MODULE_ID

    weights = algo.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID]
    return {k: np.array(v) for k, v in weights.items()}


def test_one_adversarial_batch_updates_generator_discriminator_and_rollout_policy(ray_local, inputs) -> None:
    import ray

    algo = small_config(inputs).build_algo()
    try:
        before = generator_state(algo)
        result = algo.train()
        after = generator_state(algo)
        assert any(not np.array_equal(before[k], after[k]) for k in before), "the policy gradient changed nothing"
        assert 0.0 <= result["learners"]["mean_q"] <= 1.0
        assert np.isfinite(result["learners"]["default_policy"]["policy_loss"])
        assert result["learners"]["mc_worker_nodes"] == 1
        # D: one pretraining d-step + one d-step of this batch
        assert result["discriminator"]["version"] == 2
        assert ray.get(algo.discriminator_actor.get_weights.remote())["version"] == 2
        # the env's terminal reward is D(fake) from the same actor
        assert 0.0 < result["env_runners"]["episode_return_mean"] < 1.0
        for stage in ("env_runner_sampling_timer", "learner_update_timer", "discriminator_steps"):
            assert result["timers"][stage] > 0.0
        # the rollout policy moved: β·(MLE copy) + (1 − β)·G after one update, G ≠ MLE
        rollout = algo.learner_group._learner.monte_carlo_connector().get_state()["rollout_policy"]["model"]
        beta = algo.config.options.rollouts.rollout_beta
        for name, value in rollout.items():
            key = f"generator.{name}"
            expected = after[key] if name == "embedding.weight" else beta * before[key] + (1 - beta) * after[key]
            assert np.allclose(value.numpy(), expected, atol=1e-6), name
    finally:
        algo.stop()


def test_q_column_matches_the_rollout_pool(ray_local, inputs) -> None:
    """The learner connector's Q for sampled episodes = the engine's Q with the same weights and uniforms."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from seqgan_rl.mc import MonteCarloQ
    from seqgan_rl.models.discriminator import Discriminator
    from seqgan_rl.rllib.monte_carlo import MC_Q

    algo = small_config(inputs).build_algo()
    try:
        algo.pretrain_discriminator()
        episodes, _ = algo._sample_episodes()
        learner = algo.learner_group._learner
        connector = learner.monte_carlo_connector()
        rng_state = connector.get_state()["rng_state"]
        batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={},
                                           metrics=learner.metrics)
        q = batch[DEFAULT_MODULE_ID][MC_Q].numpy()  # (B, T): one row per episode
        sequences = torch.tensor(np.stack([e.get_actions() for e in episodes]))
        policy = Generator(SMALL, init_std=None)
        policy.load_state_dict(connector.get_state()["rollout_policy"]["model"])
        disc = Discriminator(SMALL.vocab_size, SMALL.seq_len, **SMALL_D)
        disc.load_state_dict({k: torch.tensor(v) for k, v in
                              ray_local.get(algo.discriminator_actor.get_weights.remote())["state"].items()})
        engine = MonteCarloQ(3)
        rng = torch.Generator()
        if rng_state is not None:
            rng.set_state(rng_state)
        else:
            rng.manual_seed(algo.config.seed)
        expected = engine(sequences, policy, disc.eval(),
                          uniforms=engine.draw_uniforms(len(episodes), SMALL.seq_len, generator=rng))
        assert q.shape == (12, SMALL.seq_len)
        assert np.allclose(q, expected.numpy(), atol=1e-5)
    finally:
        algo.stop()


def test_checkpoint_restores_discriminator_rollout_policy_and_generator(ray_local, inputs, tmp_path: Path) -> None:
    import ray

    first = small_config(inputs).build_algo()
    try:
        first.train()
        first.save_to_path(str(tmp_path / "ckpt"))
        saved = {"generator": generator_state(first),
                 "discriminator": ray.get(first.discriminator_actor.get_state.remote()),
                 "rollout": first.learner_group._learner.monte_carlo_connector().get_state()}
        first.train()  # move on, so that restoring has something to undo
    finally:
        first.stop()
    second = small_config(inputs).build_algo()
    try:
        second.restore_from_path(str(tmp_path / "ckpt"))
        restored = generator_state(second)
        assert all(np.array_equal(saved["generator"][k], restored[k]) for k in restored)
        disc = ray.get(second.discriminator_actor.get_state.remote())
        assert disc["weights"]["version"] == saved["discriminator"]["weights"]["version"]
        for name, value in saved["discriminator"]["weights"]["state"].items():
            assert np.array_equal(disc["weights"]["state"][name], value), name
        rollout = second.learner_group._learner.monte_carlo_connector().get_state()
        assert rollout["policy_version"] == saved["rollout"]["policy_version"]
        assert torch.equal(rollout["rng_state"], saved["rollout"]["rng_state"])
        for name, value in saved["rollout"]["rollout_policy"]["model"].items():
            assert torch.equal(rollout["rollout_policy"]["model"][name], value), name
        assert second.training_iteration == 1 and second.discriminator_pretrained
        second.train()  # and training goes on from there
    finally:
        second.stop()


def test_the_weights_only_state_restores_the_run_and_its_restart_counts(ray_local, inputs) -> None:
    """What ``--resume`` does: ``get_state`` stored without pickle, given to a new algorithm's ``set_state``;
    the generator comes back, and so do the counts of replaced actors (they go on counting after a resume)."""
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_LEARNER_GROUP

    from seqgan_rl.rllib.adversarial import SEQGAN_STATE
    from seqgan_rl.rllib.learner import MONTE_CARLO_STATE
    from seqgan_rl.storage.state_tree import decode, encode

    first = small_config(inputs).build_algo()
    try:
        first.train()
        state = first.get_state()
        saved = generator_state(first)
    finally:
        first.stop()
    state[SEQGAN_STATE]["discriminator_restarts"] = 2  # as a run whose actors were replaced before its checkpoint
    state[COMPONENT_LEARNER_GROUP][COMPONENT_LEARNER][MONTE_CARLO_STATE]["worker_restarts"] = 5
    second = small_config(inputs).build_algo()
    try:
        second.set_state(decode(encode(state)))
        restored = generator_state(second)
        assert all(np.array_equal(saved[k], restored[k]) for k in restored)
        result = second.train()
        assert result["discriminator"]["restarts"] == 2
        assert result["learners"]["mc_worker_restarts"] == 5
    finally:
        second.stop()


@pytest.mark.parametrize(("change", "message"), [
    ({"training": {"real_data": None}}, "real_data"),
    ({"training": {"num_rollouts": 0}}, "num_rollouts"),
    ({"training": {"rollout_beta": 1.5}}, "beta"),
    ({"training": {"d_epochs": 0}}, "d_epochs"),
    ({"training": {"score_precision": "fp8"}}, "score_precision"),
    ({"learners": {"num_learners": 2}}, "num_learners"),
    ({"env_runners": {"batch_mode": "truncate_episodes"}}, "complete_episodes"),
])
def test_impossible_configs_are_refused(inputs, change, message) -> None:
    config = small_config(inputs)
    for method, kwargs in change.items():
        getattr(config, method)(**kwargs)
    with pytest.raises(ConfigError, match=message):
        config.validate()
