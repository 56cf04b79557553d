"""TokenGenerationEnv follows the Gymnasium contract and rewards only the finished sequence."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from seqgan_rl_envs import GYMNASIUM_ID, TokenGenerationEnv


def share_of_low_tokens(tokens: np.ndarray) -> np.ndarray:
    return (tokens < 5).mean(axis=1)


def make(**overrides) -> TokenGenerationEnv:
    return TokenGenerationEnv({"vocab_size": 10, "seq_len": 4, "scorer": share_of_low_tokens, **overrides})


def test_passes_the_gymnasium_checker() -> None:
    check_env(make(), skip_render_check=True)
    check_env(make(end_token=2), skip_render_check=True)


def test_episode_rewards_only_at_the_end() -> None:
    env = make()
    obs, info = env.reset(seed=0)
    assert obs["length"] == 0 and obs["prefix"].tolist() == [0, 0, 0, 0]
    rewards = []
    for token in (1, 7, 3, 9):
        obs, reward, terminated, truncated, _ = env.step(token)
        rewards.append(reward)
    assert terminated and not truncated
    assert obs["prefix"].tolist() == [1, 7, 3, 9] and obs["length"] == 4
    assert rewards == [0.0, 0.0, 0.0, 0.5]


def test_end_token_stops_early_and_pads() -> None:
    seen = []
    env = make(end_token=2, scorer=lambda tokens: seen.append(tokens.copy()) or np.array([0.25]))
    env.reset()
    env.step(6)
    obs, reward, terminated, _, _ = env.step(2)
    assert terminated and reward == 0.25 and obs["length"] == 2
    assert seen[0].tolist() == [[6, 2, 0, 0]]


def test_bad_actions_and_calls_after_the_end() -> None:
    env = make()
    env.reset()
    with pytest.raises(ValueError, match=r"action 10 is not a token id in \[0, 10\)"):
        env.step(10)
    for token in range(4):
        env.step(token)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)


def test_a_bad_scorer_is_an_error_not_a_zero_reward() -> None:
    env = make(scorer=lambda tokens: np.array([np.nan]))
    env.reset()
    for token in range(3):
        env.step(token)
    with pytest.raises(RuntimeError, match="expected one probability"):
        env.step(3)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"vocab_size": 0}, "vocab_size must be a positive int"),
    ({"scorer": None}, "scorer must be"),
    ({"end_token": 10}, "end_token 10 is outside"),
    ({"colour": "red"}, "unknown config key"),
])
def test_bad_configs(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_registered_with_gymnasium() -> None:
    env = gymnasium.make(GYMNASIUM_ID, vocab_size=10, seq_len=4, scorer=share_of_low_tokens)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    env.close()


def test_reward_from_the_discriminator_actor(ray_local) -> None:
    """The scorer given as an actor name: the real DiscriminatorActor on a real local Ray."""
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from seqgan_rl.distributed import start_discriminator_actor
    from seqgan_rl_envs import register_rllib_env

    actor = start_discriminator_actor("disc-env-test", 10, 4, num_cpus=0.5,
                                      discriminator_kwargs={"emb_dim": 4, "filter_sizes": (1, 2),
                                                            "num_filters": (3, 3)})
    creator = _global_registry.get(ENV_CREATOR, register_rllib_env())
    env = creator({"vocab_size": 10, "seq_len": 4, "scorer": "disc-env-test"})
    env.reset()
    for token in (1, 2, 3):
        env.step(token)
    _, reward, terminated, _, _ = env.step(4)
    expected = ray_local.get(actor.score.remote(np.array([[1, 2, 3, 4]])))[0]
    assert terminated and reward == pytest.approx(float(expected)) and 0 < reward < 1
    ray_local.kill(actor)


def test_the_env_package_is_installed_under_the_projects_name(tmp_path) -> None:
    """The source folder ``envs/`` is the installed package ``seqgan_rl_envs``; nothing is installed as the
    generic ``envs`` (asked from a directory that is not the checkout, whose folders would be found first)."""
    import subprocess
    import sys

    script = ("import importlib.util, pathlib\n"
              "spec = importlib.util.find_spec('seqgan_rl_envs')\n"
              "print(pathlib.Path(spec.origin).parent.name, importlib.util.find_spec('envs'))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    folder, generic = result.stdout.split()
    # an editable install maps the package to the source folder, a wheel installs it under its own name
    assert folder in ("envs", "seqgan_rl_envs") and generic == "None"
    assert gymnasium.spec(GYMNASIUM_ID).entry_point == "seqgan_rl_envs.token_env:TokenGenerationEnv"
