"""SeqGAN's pieces under any RLlib algorithm: ``with_seqgan(PPOConfig(), ...)`` and friends.

What changes is only the optimiser of the generator: the token env with the
discriminator actor's terminal reward, the generator RLModule (with a value
head, and for APPO a target copy), the MLE weights, the Monte Carlo reward step
and the discriminator schedule are the same pieces SeqGAN uses:

* the algorithm class is the RLlib one with ``AdversarialMixin`` in front
  (``SeqGANPPO``, ``SeqGANAPPO``, ``SeqGANIMPALA``): discriminator actor,
  pretraining, d-steps and rollout-policy sync after every iteration;
* the Learner class is RLlib's with ``MonteCarloLearnerMixin`` in front: the
  Monte Carlo piece at the head of its connector pipeline.

How Monte Carlo values enter an algorithm that computes its own advantages
(``reward``): ``"shaped"`` (default) rewrites each episode's rewards to
r_t = Q_t − Q_{t−1}, which sum to the terminal reward D(y), so PPO's GAE or
IMPALA's V-trace see per-token credit; ``"terminal"`` skips the rollouts and
keeps only the discriminator's reward at the last token. Another algorithm
plugs in the same way: put the two mixins in front of its Algorithm and
Learner classes and pass them to ``with_seqgan``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPO, APPOConfig
from ray.rllib.algorithms.appo.torch.appo_torch_learner import APPOTorchLearner
from ray.rllib.algorithms.impala import IMPALA, IMPALAConfig
from ray.rllib.algorithms.impala.torch.impala_torch_learner import IMPALATorchLearner
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

from seqgan_rl.errors import ConfigError
from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.rllib.adversarial import ENV_RUNNER_FAULT_TOLERANCE, SEQGAN_SETTINGS_KEY, AdversarialMixin
from seqgan_rl.rllib.generator_module import generator_module_spec
from seqgan_rl.rllib.learner import MonteCarloLearnerMixin
from seqgan_rl.rllib.settings import SeqGANSettings, apply_rllib_options
from seqgan_rl_envs import RLLIB_ENV_NAME


class SeqGANPPOTorchLearner(MonteCarloLearnerMixin, PPOTorchLearner):
    """PPO's Learner with the Monte Carlo reward step."""


class SeqGANAPPOTorchLearner(MonteCarloLearnerMixin, APPOTorchLearner):
    """APPO's Learner with the Monte Carlo reward step."""


class SeqGANIMPALATorchLearner(MonteCarloLearnerMixin, IMPALATorchLearner):
    """IMPALA's Learner with the Monte Carlo reward step."""


class SeqGANPPO(AdversarialMixin, PPO):
    """PPO training the generator against the discriminator."""


class SeqGANAPPO(AdversarialMixin, APPO):
    """APPO training the generator against the discriminator."""


class SeqGANIMPALA(AdversarialMixin, IMPALA):
    """IMPALA training the generator against the discriminator."""


KNOWN: list[tuple[type, type, type]] = [  # most specific config class first (APPOConfig is an IMPALAConfig)
    (APPOConfig, SeqGANAPPO, SeqGANAPPOTorchLearner),
    (IMPALAConfig, SeqGANIMPALA, SeqGANIMPALATorchLearner),
    (PPOConfig, SeqGANPPO, SeqGANPPOTorchLearner),
]
CONFIG_CLASSES: dict[str, type] = {"ppo": PPOConfig, "appo": APPOConfig, "impala": IMPALAConfig}
"""``--algo`` names of the RLlib algorithms ``with_seqgan`` knows (besides ``seqgan`` itself)."""


def with_seqgan(
    config: AlgorithmConfig,
    settings: SeqGANSettings,
    generator_config: GeneratorConfig,
    generator_checkpoint: str | None = None,
    *,
    algo_class: type | None = None,
    learner_class: type | None = None,
) -> AlgorithmConfig:
    """Add SeqGAN's env, generator module, MLE weights, Monte Carlo rewards and discriminator to ``config``.

    Args:
        config: any RLlib ``AlgorithmConfig`` (PPO, APPO, IMPALA known; others need the classes).
        settings: the run's options and facts (``SeqGANSettings``); ``settings.options.algorithm.algo`` names an
            RLlib algorithm here, so its reward is "shaped" or "terminal" (the "q" column is read only
            by SeqGAN's own loss). Its RLlib-named options (``lr``, ``grad_clip``, ``seed``) are applied
            to ``config``.
        generator_config, generator_checkpoint: the generator's sizes and MLE weights.
        algo_class, learner_class: for another algorithm, its Algorithm and Learner classes
            with ``AdversarialMixin`` / ``MonteCarloLearnerMixin`` in front.

    Returns:
        ``config``, changed in place (like RLlib's builder methods).
    """
    if settings.reward == "q":
        raise ConfigError("reward='q' feeds SeqGAN's own policy-gradient loss; other algorithms take 'shaped' "
                          "(per-token Monte Carlo credit as rewards) or 'terminal'")
    settings.validate()
    if algo_class is None or learner_class is None:
        for config_class, known_algo, known_learner in KNOWN:
            if isinstance(config, config_class):
                algo_class, learner_class = algo_class or known_algo, learner_class or known_learner
                break
        else:
            raise ConfigError(f"with_seqgan does not know {type(config).__name__}: pass algo_class and "
                              "learner_class with AdversarialMixin / MonteCarloLearnerMixin in front")
    if asdict(generator_config) != settings.generator_config:
        raise ConfigError("settings.generator_config differs from generator_config")
    apply_rllib_options(config, settings.options)
    config.algo_class = algo_class
    config.environment(RLLIB_ENV_NAME, env_config=settings.env_config())
    config.rl_module(rl_module_spec=generator_module_spec(generator_config, generator_checkpoint, value_head=True))
    config.learners(learner_class=learner_class,
                    learner_config_dict={**(config.learner_config_dict or {}), SEQGAN_SETTINGS_KEY: settings})
    config.env_runners(batch_mode="complete_episodes")
    return config


def build_config(name: str, **training: Any) -> AlgorithmConfig:
    """A fresh RLlib config of a known algorithm (``ppo``, ``appo``, ``impala``) with ``training`` options
    and SeqGAN's EnvRunner fault tolerance (``ENV_RUNNER_FAULT_TOLERANCE``, as ``SeqGANConfig``)."""
    try:
        config_class = CONFIG_CLASSES[name]
    except KeyError:
        raise ConfigError(f"unknown algorithm {name!r}; known: seqgan, {', '.join(sorted(CONFIG_CLASSES))}") from None
    return config_class().training(**training).fault_tolerance(**ENV_RUNNER_FAULT_TOLERANCE)
