"""The SeqGAN algorithm on RLlib's new API stack (``SeqGANConfig`` → ``SeqGAN``).

One ``training_step`` is one adversarial batch of the paper:

1. ``g_steps`` times: send the generator's current weights to the EnvRunners,
   sample ``episodes_per_batch`` complete episodes (one generated sequence
   each) from them, and update the generator in the Learner with
   −Σ log G(y_t | y_<t)·Q_t, where the Learner's ``MonteCarloQConnector`` gets
   Q for every token from the rollout pool;
2. move the rollout policy towards the new generator (β);
3. ``d_steps`` times: train the discriminator actor for ``d_epochs`` on
   ``d_num_negatives`` fresh generator samples vs the real data, then send its
   weights to the rollout pool.

Before the first batch the discriminator is pretrained (``d_pretrain_rounds``
d-steps against the MLE generator) unless ``pretrain_discriminator`` already ran.
The discriminator is a named Ray actor started by the algorithm; the token env
scores finished episodes with it (its terminal reward is the EnvRunner metric
``episode_return_mean``, the mean D(fake)). Every stage is timed under
``timers`` in the results.

EnvRunners that die are restarted (``ENV_RUNNER_FAULT_TOLERANCE``, set by
``SeqGANConfig``): the episodes they owed are sampled again, from the
surviving EnvRunners or the restarted ones once they have the generator's
weights, so every g-step still trains on exactly ``episodes_per_batch``
complete episodes of the current generator. (The weights go out before each
sampling, not after each update: an EnvRunner that Ray restarted between two
iterations, unnoticed, would otherwise sample with its constructor's weights.)

Checkpoints (``save_to_path`` / ``restore_from_path`` / ``from_checkpoint``)
hold RLlib's state (generator, its optimiser, counters), the Learner's Monte
Carlo state (rollout policy, RNG) and the discriminator actor's state (weights,
optimiser, RNGs): a restored run continues where it stopped.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
)

from envs import RLLIB_ENV_NAME
from seqgan_rl.errors import ConfigError, SeqGANError, TrainingError
from seqgan_rl.generator import GeneratorConfig
from seqgan_rl.rllib.adversarial import (
    ENV_RUNNER_FAULT_TOLERANCE,
    AdversarialMixin,
    AdversarialSettings,
    SeqGANSettings,
    timed,
)
from seqgan_rl.rllib.generator_module import generator_module_spec
from seqgan_rl.rllib.monte_carlo import MonteCarloSettings


class SeqGANConfig(AlgorithmConfig):
    """Configuration of ``SeqGAN``: RLlib's options plus the SeqGAN schedule (see ``training``).

    Defaults are the original release's: Adam lr 0.01 with gradient-norm clip 5
    for G, 64 sequences per batch, N = 16, β = 0.8, 1 g-step, 5 d-steps × 3
    epochs on 10,000 negatives, 50 pretraining d-steps, D's Adam lr 1e-4.

    Example::

        config = (SeqGANConfig()
                  .generator(GeneratorConfig(vocab_size=5000, seq_len=20), checkpoint="mle/checkpoint.pt")
                  .training(real_data="data/train.parquet", num_rollouts=16, rollout_beta=0.8))
        algo = config.build_algo()
        algo.train()
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or SeqGAN)
        # the generator and its data
        self.generator_config: dict[str, Any] | None = None
        self.generator_checkpoint: str | None = None
        self.real_data: str | None = None
        self.end_token: int | None = None
        self.pad_token = 0
        # the adversarial schedule
        self.episodes_per_batch = 64
        self.g_steps = 1
        self.d_steps = 5
        self.d_epochs = 3
        self.d_batch_size = 64
        self.d_num_negatives = 10_000
        self.d_pretrain_rounds = 50
        self.d_lr = 1e-4
        self.d_precision = "fp32"
        # Monte Carlo rollouts
        self.num_rollouts = 16
        self.rollout_beta = 0.8
        self.rollout_mix_embedding = False
        self.num_mc_workers = 0
        self.mc_worker_num_cpus = 1.0
        self.mc_worker_num_gpus = 0.0
        self.mc_max_batch = 1 << 16
        self.score_precision = "fp32"
        # the discriminator actor
        self.discriminator: dict[str, Any] = {}
        self.discriminator_name = f"seqgan_rl_discriminator_{uuid.uuid4().hex[:8]}"
        self.discriminator_num_cpus = 1.0
        self.discriminator_num_gpus = 0.0
        self.discriminator_num_threads: int | None = None
        # RLlib settings SeqGAN relies on
        self.lr = 0.01
        self.grad_clip = 5.0
        self.grad_clip_by = "global_norm"
        self.batch_mode = "complete_episodes"
        self.num_env_runners = 0
        self.num_envs_per_env_runner = 64
        self.env = RLLIB_ENV_NAME
        self.fault_tolerance(**ENV_RUNNER_FAULT_TOLERANCE)

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        real_data: str | None = NotProvided,
        episodes_per_batch: int = NotProvided,
        g_steps: int = NotProvided,
        d_steps: int = NotProvided,
        d_epochs: int = NotProvided,
        d_batch_size: int = NotProvided,
        d_num_negatives: int = NotProvided,
        d_pretrain_rounds: int = NotProvided,
        d_lr: float = NotProvided,
        d_precision: str = NotProvided,
        num_rollouts: int = NotProvided,
        rollout_beta: float = NotProvided,
        rollout_mix_embedding: bool = NotProvided,
        num_mc_workers: int = NotProvided,
        mc_worker_num_cpus: float = NotProvided,
        mc_worker_num_gpus: float = NotProvided,
        mc_max_batch: int = NotProvided,
        score_precision: str = NotProvided,
        discriminator: dict[str, Any] = NotProvided,
        discriminator_num_cpus: float = NotProvided,
        discriminator_num_gpus: float = NotProvided,
        discriminator_num_threads: int | None = NotProvided,
        **kwargs: Any,
    ) -> SeqGANConfig:
        """SeqGAN's options (RLlib's own, e.g. ``lr``, ``grad_clip``, pass through).

        Args:
            real_data: Parquet token table of real sequences (``prepare-data``): the
                discriminator's positives.
            episodes_per_batch: sequences per generator update (paper: 64).
            g_steps: generator updates per adversarial batch, each on fresh episodes (paper: 1).
            d_steps: discriminator steps per adversarial batch, each on fresh negatives (paper: 5).
            d_epochs: passes over real + negatives per d-step (paper: 3).
            d_batch_size: discriminator minibatch (paper: 64).
            d_num_negatives: generated sequences per d-step (paper: 10,000).
            d_pretrain_rounds: d-steps against the MLE generator before the first batch (paper: 50).
            d_lr: discriminator Adam learning rate (paper: 1e-4).
            d_precision: "fp32" or "bf16" (autocast) for the d-steps.
            num_rollouts: N, Monte Carlo completions per prefix (paper: 16).
            rollout_beta: β, weight kept on the old rollout parameters per update (paper: 0.8).
            rollout_mix_embedding: also mix the embedding table (the original copies it).
            num_mc_workers: K rollout actors; 0 computes Q in the Learner's process.
            mc_worker_num_cpus, mc_worker_num_gpus: resources of each rollout actor
                (``mc_worker_num_gpus=0.25``: four share a GPU).
            mc_max_batch: rollout rows advanced and scored together (memory bound).
            score_precision: the rollout workers' discriminator precision, "fp32" or "int8".
            discriminator: ``Discriminator`` sizes (emb_dim, filter_sizes, num_filters,
                dropout_keep, l2_reg); the paper's when empty.
            discriminator_num_cpus, discriminator_num_gpus: the discriminator actor's resources.
            discriminator_num_threads: its torch CPU threads (default: as Ray gives it).
        """
        super().training(**kwargs)
        for name, value in locals().items():
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)
        return self

    def generator(
        self,
        config: GeneratorConfig,
        *,
        checkpoint: str | None = None,
        end_token: int | None = None,
        pad_token: int = 0,
    ) -> SeqGANConfig:
        """The generator's sizes, its MLE checkpoint and the token env that goes with it."""
        self.generator_config = asdict(config)
        self.generator_checkpoint = None if checkpoint is None else str(checkpoint)
        self.end_token = end_token
        self.pad_token = pad_token
        # the token env scores finished episodes with this run's discriminator actor (by name)
        self.environment(RLLIB_ENV_NAME, env_config={
            "vocab_size": config.vocab_size, "seq_len": config.seq_len, "scorer": self.discriminator_name,
            "end_token": end_token, "pad_token": pad_token})
        return self

    def seqgan_settings(self) -> SeqGANSettings:
        """This config's SeqGAN options as the settings ``AdversarialMixin`` and the Learner read."""
        adversarial = AdversarialSettings(
            real_data=self.real_data, generator_config=dict(self.generator_config or {}),
            discriminator=dict(self.discriminator), discriminator_name=self.discriminator_name,
            d_steps=self.d_steps, d_epochs=self.d_epochs, d_batch_size=self.d_batch_size,
            d_num_negatives=self.d_num_negatives, d_pretrain_rounds=self.d_pretrain_rounds, d_lr=self.d_lr,
            num_cpus=self.discriminator_num_cpus, num_gpus=self.discriminator_num_gpus,
            num_threads=self.discriminator_num_threads, precision=self.d_precision, seed=self.seed or 0,
        )
        return SeqGANSettings(adversarial=adversarial, monte_carlo=self.monte_carlo_settings(), reward="q")

    def discriminator_kwargs(self) -> dict[str, Any]:
        g = self.generator_config or {}
        return {"vocab_size": g.get("vocab_size"), "seq_len": g.get("seq_len"), **self.discriminator}

    def monte_carlo_settings(self) -> MonteCarloSettings:
        """What the Learner's ``MonteCarloQConnector`` needs (see ``seqgan_rl.rllib.monte_carlo``)."""
        return MonteCarloSettings(
            discriminator_kwargs=self.discriminator_kwargs(), num_rollouts=self.num_rollouts,
            beta=self.rollout_beta, mix_embedding=self.rollout_mix_embedding,
            num_workers=self.num_mc_workers, worker_num_cpus=self.mc_worker_num_cpus,
            worker_num_gpus=self.mc_worker_num_gpus, max_batch=self.mc_max_batch,
            score_precision=self.score_precision, pad_token=self.pad_token, seed=self.seed or 0,
        )

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> Any:
        """The generator RLModule (``GeneratorRLModule``) with the MLE checkpoint's weights."""
        if self.generator_config is None:
            raise ConfigError("SeqGANConfig: call .generator(GeneratorConfig(...)) to set the generator")
        return generator_module_spec(GeneratorConfig(**self.generator_config), self.generator_checkpoint)

    @override(AlgorithmConfig)
    def get_default_learner_class(self) -> type:
        from seqgan_rl.rllib.learner import SeqGANTorchLearner

        return SeqGANTorchLearner

    @override(AlgorithmConfig)
    def validate(self) -> None:
        super().validate()
        if self.generator_config is None:
            raise ConfigError("SeqGANConfig: call .generator(GeneratorConfig(...)) to set the generator")
        if self.real_data is None:
            raise ConfigError("SeqGANConfig: training(real_data=...) must name a Parquet token table")
        for name in ("episodes_per_batch", "g_steps"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"SeqGANConfig: {name} must be > 0, got {getattr(self, name)}")
        for name in ("mc_worker_num_cpus", "mc_worker_num_gpus"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SeqGANConfig: {name} must be >= 0, got {getattr(self, name)}")
        if self.score_precision not in ("fp32", "int8"):
            raise ConfigError(f"SeqGANConfig: score_precision must be 'fp32' or 'int8', got {self.score_precision!r}")
        if self.batch_mode != "complete_episodes":
            raise ConfigError("SeqGANConfig: batch_mode must be 'complete_episodes' (Monte Carlo Q needs whole "
                              "sequences)")
        if self.num_learners != 0:
            raise ConfigError("SeqGANConfig: num_learners must be 0: the generator is one small LSTM updated "
                              "once per batch, and the Monte Carlo rollout pool is owned by the local Learner "
                              "(scale the rollouts with num_mc_workers instead)")
        self.seqgan_settings().validate()


class SeqGANPolicyGradient(Algorithm):
    """SeqGAN's generator half: ``g_steps`` × (weight sync, sample complete episodes, one Learner update)."""

    @override(Algorithm)
    def training_step(self) -> None:
        for _ in range(self.config.g_steps):
            with timed(self.metrics, SYNCH_WORKER_WEIGHTS_TIMER):
                self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                                   inference_only=True)
            with timed(self.metrics, ENV_RUNNER_SAMPLING_TIMER):
                episodes, runner_metrics = self._sample_episodes()
            self.metrics.aggregate(runner_metrics, key=ENV_RUNNER_RESULTS)
            with timed(self.metrics, LEARNER_UPDATE_TIMER):
                learner_results = self.learner_group.update(
                    episodes=episodes,
                    timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)},
                )
            self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)

    def _sample_episodes(self) -> tuple[list[Any], list[dict[str, Any]]]:
        """Exactly ``episodes_per_batch`` complete episodes, split evenly over the healthy EnvRunners.

        EnvRunners that die while sampling give nothing (RLlib marks them
        unhealthy); their share is sampled again from the surviving ones, or,
        when none is left, from the restarted ones once ``restore_env_runners``
        finds them back (waiting at most ``env_runner_health_probe_timeout_s``)
        and has given them the current weights. ``SAMPLE_ATTEMPTS`` rounds at most.
        """
        wanted = self.config.episodes_per_batch
        group = self.env_runner_group
        remote = group.num_remote_env_runners()
        episodes: list[Any] = []
        runner_metrics: list[dict[str, Any]] = []
        for _ in range(SAMPLE_ATTEMPTS):
            if remote:
                self._wait_for_healthy_env_runner()
            per_runner = -(-(wanted - len(episodes)) // max(1, group.num_healthy_remote_env_runners()))
            results = group.foreach_env_runner(lambda runner: _sample(runner, per_runner),
                                               local_env_runner=remote == 0)
            for sampled, sampled_metrics in results:
                if isinstance(sampled, SeqGANError):
                    raise sampled
                episodes.extend(sampled)
                runner_metrics.append(sampled_metrics)
            if len(episodes) >= wanted:
                return episodes[:wanted], runner_metrics
        raise TrainingError(f"EnvRunners returned {len(episodes)} episodes, {wanted} needed, in {SAMPLE_ATTEMPTS} "
                           f"rounds: {remote - group.num_healthy_remote_env_runners()} of {remote} remote EnvRunners "
                           "kept failing (see their logs for the cause)")

    def _wait_for_healthy_env_runner(self) -> None:
        """Return once a remote EnvRunner is healthy, restoring restarted ones; raise if none is in time."""
        group = self.env_runner_group
        deadline = time.monotonic() + self.config.env_runner_health_probe_timeout_s
        pause = 0.1
        while not group.num_healthy_remote_env_runners():
            self.restore_env_runners(group)  # pings the failed ones; syncs those that answer
            if group.num_healthy_remote_env_runners():
                return
            if time.monotonic() >= deadline:
                raise TrainingError(
                    f"none of the {group.num_remote_env_runners()} remote EnvRunners came back within "
                    f"env_runner_health_probe_timeout_s={self.config.env_runner_health_probe_timeout_s:g} "
                    "(restart_failed_env_runners must be on for them to be restarted; see their logs for the cause)")
            time.sleep(pause)
            pause = min(2 * pause, 2.0)


SAMPLE_ATTEMPTS = 3
"""Sampling rounds of one g-step before a lack of healthy EnvRunners is an error."""


def _sample(runner: Any, num_episodes: int) -> tuple[Any, dict[str, Any] | None]:
    """Run on an EnvRunner: its episodes and metrics, or the ``SeqGANError`` its envs raised.

    Returned, not raised: RLlib restarts an EnvRunner whose call raised, but a
    SeqGANError (a discriminator returning NaN, one that could not be brought
    back) would recur on the restarted one; the driver raises it instead.
    """
    try:
        return runner.sample(num_episodes=num_episodes), runner.get_metrics()
    except SeqGANError as error:
        return error, None


class SeqGAN(AdversarialMixin, SeqGANPolicyGradient):
    """SeqGAN (Yu et al., 2017) on RLlib: see the module docstring for one ``training_step``."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> SeqGANConfig:
        return SeqGANConfig()
