"""The RLlib config of a training run, built from its ``TrainConfig`` (one place, so a resumed run
builds the same algorithm).

``options.algorithm.algo == "seqgan"``: a ``SeqGANConfig`` holding the options. Otherwise
the RLlib algorithm (``ppo``, ``appo``, ``impala``) with the same SeqGAN pieces
(``with_seqgan``), the same number of generated sequences per batch and the same
discriminator schedule; each algorithm's own settings (epochs, minibatches,
clip, GAE, V-trace, learning rate) come from its resolved options
(``seqgan_rl.config.ALGORITHM_DEFAULTS``, ``algorithm_training``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from seqgan_rl.config import DENSE_REWARD_MODELS, TrainConfig
from seqgan_rl.errors import ConfigError
from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.rllib.seqgan import SeqGANConfig
from seqgan_rl.rllib.settings import SeqGANSettings, new_discriminator_name
from seqgan_rl.rllib.with_seqgan import build_config, with_seqgan


def algorithm_training(options: TrainConfig, batch_steps: int, seq_len: int) -> dict[str, Any]:
    """RLlib ``training(...)`` arguments of ``options.algorithm.algo`` (ppo, appo, impala) from its resolved
    options.

    A batch is ``batch_steps`` timesteps (``episodes_per_batch`` whole sequences of ``seq_len``);
    ``minibatches`` splits it into minibatches of whole sequences.
    """
    o = options.check_resolved().algorithm
    sequences = batch_steps // seq_len
    if sequences % o.minibatches:
        raise ConfigError(f"minibatches={o.minibatches} must divide episodes_per_batch={sequences} (a minibatch "
                          "holds whole sequences)")
    training: dict[str, Any] = {"minibatch_size": batch_steps // o.minibatches, "vf_loss_coeff": o.vf_coef,
                                "entropy_coeff": o.entropy_coef}
    if o.algo == "ppo":
        training.update(num_epochs=o.num_epochs, clip_param=o.clip_param, lambda_=o.gae_lambda,
                        use_kl_loss=False)  # the clip alone keeps an update close (PPO-clip)
    else:
        training.update(vtrace_clip_rho_threshold=o.vtrace_rho_clip, vtrace_clip_pg_rho_threshold=o.vtrace_rho_clip)
    if o.algo == "appo":
        # a plain queue: every batch is trained on num_epochs times, then dropped (APPO's circular buffer
        # would replay it, with rewards of an older discriminator); N = K = 1 makes
        # target_network_update_freq count batches
        training.update(num_epochs=o.num_epochs, clip_param=o.clip_param, use_kl_loss=False,
                        use_circular_buffer=False, circular_buffer_num_batches=1,
                        circular_buffer_iterations_per_batch=1, target_network_update_freq=o.target_update_freq)
    return training


def build_algorithm_config(options: TrainConfig, generator_config: GeneratorConfig, mle_checkpoint: str,
                           real_data: str, *, discriminator_threads: int | None) -> Any:
    """The RLlib ``AlgorithmConfig`` of a run: the options (resolved), the generator and its MLE weights, the
    real data.

    ``discriminator_threads``: torch threads of the discriminator actor (``None``: as Ray gives it).
    """
    options.check_resolved()
    if options.algorithm.algo == "seqgan":
        return (SeqGANConfig()
                .generator(generator_config, checkpoint=mle_checkpoint)
                .training(options=options, real_data=real_data, discriminator_num_threads=discriminator_threads))
    batch_steps = options.schedule.episodes_per_batch * generator_config.seq_len
    # undiscounted returns of the Monte Carlo values: a sequence's reward is its whole; the dense
    # discriminator's per-prefix rewards are discounted by dense_gamma (the connector's discount too)
    gamma = options.reward.dense_gamma if options.reward.reward_model in DENSE_REWARD_MODELS else 1.0
    config = build_config(options.algorithm.algo, train_batch_size_per_learner=batch_steps, gamma=gamma,
                          **algorithm_training(options, batch_steps, generator_config.seq_len))
    config.env_runners(num_env_runners=0, num_envs_per_env_runner=options.schedule.episodes_per_batch,
                       rollout_fragment_length=generator_config.seq_len)
    # one train() = one training_step = one adversarial batch (IMPALA and APPO default to iterations of
    # at least 10 s, i.e. as many batches and d-step rounds as fit in them)
    config.reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0,
                     min_train_timesteps_per_iteration=0)
    settings = SeqGANSettings(options=options, real_data=real_data, generator_config=asdict(generator_config),
                              discriminator_name=new_discriminator_name(),
                              discriminator_num_threads=discriminator_threads, reference_checkpoint=mle_checkpoint)
    return with_seqgan(config, settings, generator_config, mle_checkpoint)
