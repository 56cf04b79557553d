"""The generator as an RLlib RLModule: same distribution as the core model, O(1) state, real EnvRunner."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

from seqgan_rl.errors import ConfigError
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.checkpoint import save_checkpoint

CONFIG = GeneratorConfig(vocab_size=50, seq_len=6, emb_dim=8, hidden_dim=8)


def build(checkpoint: str | None = None):
    from seqgan_rl.rllib import generator_module_spec

    spec = generator_module_spec(CONFIG, checkpoint)
    spec.observation_space = gymnasium.spaces.Dict({
        "prefix": gymnasium.spaces.Box(0, CONFIG.vocab_size - 1, (CONFIG.seq_len,), np.int64),
        "length": gymnasium.spaces.Discrete(CONFIG.seq_len + 1),
    })
    spec.action_space = gymnasium.spaces.Discrete(CONFIG.vocab_size)
    return spec.build()


def observations(tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """The env's observations before each token of ``tokens`` [B, T]: [B, T, T] prefixes and [B, T] lengths."""
    batch, length = tokens.shape
    prefix = torch.zeros(batch, length, length, dtype=torch.long)
    for t in range(length):
        prefix[:, t, :t] = tokens[:, :t]
    return {"prefix": prefix, "length": torch.arange(length).expand(batch, length)}


def test_step_by_step_logits_equal_the_core_generator(tmp_path: Path) -> None:
    from ray.rllib.core.columns import Columns

    torch.manual_seed(0)
    pretrained = Generator(CONFIG)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": pretrained.state_dict(),
                                                  "generator_config": CONFIG.__dict__})
    module = build(str(tmp_path / "mle.pt"))
    tokens = pretrained.sample(3)
    expected, _ = pretrained(tokens)  # (B, T, V) teacher-forced
    obs = observations(tokens)
    state = {k: torch.from_numpy(v).expand(3, -1) for k, v in module.get_initial_state().items()}
    # one time step per call, carrying the state: the EnvRunner's O(1) path
    for t in range(CONFIG.seq_len):
        out = module.forward_inference({Columns.OBS: {k: v[:, t : t + 1] for k, v in obs.items()},
                                        Columns.STATE_IN: state})
        assert torch.allclose(out[Columns.ACTION_DIST_INPUTS][:, 0], expected[:, t], atol=1e-5)
        state = out[Columns.STATE_OUT]
    # and the whole sequence at once (the Learner's path)
    whole = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: {
        k: torch.from_numpy(v).expand(3, -1) for k, v in module.get_initial_state().items()}})
    assert torch.allclose(whole[Columns.ACTION_DIST_INPUTS], expected, atol=1e-5)


def test_checkpoint_must_match_the_model_config(tmp_path: Path) -> None:
    other = GeneratorConfig(vocab_size=50, seq_len=6, emb_dim=4, hidden_dim=8)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(other).state_dict(),
                                                  "generator_config": other.__dict__})
    with pytest.raises(ConfigError, match="does not match"):
        build(str(tmp_path / "mle.pt"))


def test_env_runner_samples_complete_episodes() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from seqgan_rl.rllib import generator_module_spec
    from seqgan_rl_envs import register_rllib_env

    config = (PPOConfig()
              .environment(register_rllib_env(), env_config={
                  "vocab_size": CONFIG.vocab_size, "seq_len": CONFIG.seq_len,
                  "scorer": lambda tokens: (tokens < 25).mean(axis=1)})
              .rl_module(rl_module_spec=generator_module_spec(CONFIG))
              .env_runners(num_envs_per_env_runner=4))
    runner = SingleAgentEnvRunner(config=config)
    episodes = runner.sample(num_episodes=8)
    assert len(episodes) >= 8
    for episode in episodes:
        actions = np.asarray(episode.get_actions())
        rewards = np.asarray(episode.get_rewards())
        assert len(episode) == CONFIG.seq_len and episode.is_terminated
        assert rewards[:-1].tolist() == [0.0] * (CONFIG.seq_len - 1)
        assert rewards[-1] == pytest.approx((actions < 25).mean())
        assert episode.get_observations(-1)["prefix"].tolist() == actions.tolist()
    runner.stop()
