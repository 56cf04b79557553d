"""The RLlib config of a training run, built from its ``TrainConfig`` (one place, so a resumed run
builds the same algorithm).

``options.algo == "seqgan"``: a ``SeqGANConfig`` holding the options. Otherwise
the RLlib algorithm (``ppo``, ``appo``, ``impala``) with the same SeqGAN pieces
(``with_seqgan``) and the same budget: one gradient step per iteration on
``episodes_per_batch`` whole sequences (``ALGO_TRAINING``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from seqgan_rl.config import TrainConfig
from seqgan_rl.generator import GeneratorConfig
from seqgan_rl.rllib.seqgan import SeqGANConfig
from seqgan_rl.rllib.settings import SeqGANSettings, new_discriminator_name
from seqgan_rl.rllib.with_seqgan import build_config, with_seqgan

ALGO_TRAINING: dict[str, Callable[[int], dict[str, Any]]] = {
    "ppo": lambda steps: {"minibatch_size": steps, "num_epochs": 1, "lambda_": 0.95, "entropy_coeff": 0.0},
    "appo": lambda steps: {"minibatch_size": steps, "num_epochs": 1, "entropy_coeff": 0.0},
    "impala": lambda steps: {"minibatch_size": steps, "entropy_coeff": 0.0},
}
"""Per-algorithm RLlib options for a batch of ``steps`` timesteps: one gradient step per iteration on the
whole batch, no entropy bonus (SeqGAN has none)."""


def build_algorithm_config(options: TrainConfig, generator_config: GeneratorConfig, mle_checkpoint: str,
                           real_data: str, *, discriminator_threads: int | None) -> Any:
    """The RLlib ``AlgorithmConfig`` of a run: the options, the generator and its MLE weights, the real data.

    ``discriminator_threads``: torch threads of the discriminator actor (``None``: as Ray gives it).
    """
    if options.algo == "seqgan":
        return (SeqGANConfig()
                .generator(generator_config, checkpoint=mle_checkpoint)
                .training(options=options, real_data=real_data, discriminator_num_threads=discriminator_threads))
    batch_steps = options.episodes_per_batch * generator_config.seq_len
    config = build_config(options.algo, train_batch_size_per_learner=batch_steps, gamma=1.0,
                          **ALGO_TRAINING[options.algo](batch_steps))
    # undiscounted returns: a sequence's reward is its whole
    config.env_runners(num_env_runners=0, num_envs_per_env_runner=options.episodes_per_batch,
                       rollout_fragment_length=generator_config.seq_len)
    # one train() = one training_step = one adversarial batch (IMPALA and APPO default to iterations of
    # at least 10 s, i.e. as many batches and d-step rounds as fit in them)
    config.reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0,
                     min_train_timesteps_per_iteration=0)
    settings = SeqGANSettings(options=options, real_data=real_data, generator_config=asdict(generator_config),
                              discriminator_name=new_discriminator_name(),
                              discriminator_num_threads=discriminator_threads)
    return with_seqgan(config, settings, generator_config, mle_checkpoint)
