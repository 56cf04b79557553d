"""Gymnasium environments of seqgan-rl, installed as ``seqgan_rl_envs`` from this source folder.

``TokenGenerationEnv`` is registered with Gymnasium as ``seqgan_rl/TokenGeneration-v0``
on import; ``register_rllib_env()`` registers it with RLlib (Ray Tune's registry)
as ``RLLIB_ENV_NAME``.
"""

import gymnasium

from seqgan_rl_envs.token_env import TokenGenerationEnv

GYMNASIUM_ID = "seqgan_rl/TokenGeneration-v0"
RLLIB_ENV_NAME = "seqgan_rl_token_generation"

if GYMNASIUM_ID not in gymnasium.registry:
    gymnasium.register(id=GYMNASIUM_ID, entry_point="seqgan_rl_envs.token_env:TokenGenerationEnv")


def register_rllib_env() -> str:
    """Register the env with RLlib under ``RLLIB_ENV_NAME`` (imports Ray) and return that name."""
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV_NAME, lambda env_config: TokenGenerationEnv(env_config))
    return RLLIB_ENV_NAME


__all__ = ["GYMNASIUM_ID", "RLLIB_ENV_NAME", "TokenGenerationEnv", "register_rllib_env"]
