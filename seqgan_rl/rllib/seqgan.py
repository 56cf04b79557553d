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

from seqgan_rl.config import TrainConfig
from seqgan_rl.config.options import flat_names, with_overrides
from seqgan_rl.errors import ConfigError, SeqGANError, TrainingError
from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.rllib.adversarial import ENV_RUNNER_FAULT_TOLERANCE, AdversarialMixin, timed
from seqgan_rl.rllib.generator_module import generator_module_spec
from seqgan_rl.rllib.settings import (
    RLLIB_OPTIONS,
    SeqGANSettings,
    apply_rllib_options,
    check_rllib_options,
    new_discriminator_name,
)
from seqgan_rl_envs import RLLIB_ENV_NAME


class SeqGANConfig(AlgorithmConfig):
    """Configuration of ``SeqGAN``: RLlib's options plus the run's ``TrainConfig`` (see ``training``).

    Every SeqGAN option is a field of ``seqgan_rl.config.TrainConfig`` (declared
    once there, defaults the original release's); this config holds one
    instance as ``options`` and hands it, unchanged, to the discriminator actor,
    the Learner and its Monte Carlo piece (``seqgan_settings``). The RLlib
    attributes that stand for options (``lr``, ``grad_clip``, ``seed``) are set
    from it (``RLLIB_OPTIONS``). A run built with this config starts here, so
    this is where its options are resolved (``resolved_options``).

    Example::

        config = (SeqGANConfig()
                  .generator(GeneratorConfig(vocab_size=5000, seq_len=20), checkpoint="mle/checkpoint.pt")
                  .training(real_data="data/train.parquet", num_rollouts=16, rollout_beta=0.8))
        algo = config.build_algo()
        algo.train()
    """

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or SeqGAN)
        self.options = TrainConfig()
        # the generator and its data (what only the run knows)
        self.generator_config: dict[str, Any] | None = None
        self.generator_checkpoint: str | None = None
        self.real_data: str | None = None
        self.end_token: int | None = None
        self.pad_token = 0
        self.discriminator_name = new_discriminator_name()
        self.discriminator_num_threads: int | None = None
        # RLlib settings SeqGAN relies on
        self.batch_mode = "complete_episodes"
        self.num_env_runners = 0
        self.env = RLLIB_ENV_NAME
        self.fault_tolerance(**ENV_RUNNER_FAULT_TOLERANCE)
        self._apply_options()

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        options: TrainConfig = NotProvided,
        real_data: str | None = NotProvided,
        discriminator_num_threads: int | None = NotProvided,
        **kwargs: Any,
    ) -> SeqGANConfig:
        """Set SeqGAN's options: a whole ``TrainConfig`` (``options``) and/or any of its fields by name.

        Args:
            options: the run's options (``seqgan_rl.config.TrainConfig``); fields given as keyword
                arguments (``num_rollouts=8``) are applied on top of it.
            real_data: Parquet token table of real sequences (``prepare-data``): the
                discriminator's positives.
            discriminator_num_threads: the discriminator actor's torch CPU threads (default: as Ray
                gives it).
            **kwargs: ``TrainConfig`` options by flat name (``d_steps``), or RLlib's own training options.
                RLlib's names of SeqGAN options (``lr``, ``grad_clip``) are refused: set ``adversarial_lr`` /
                ``grad_clip`` as options.
        """
        option_names = flat_names(TrainConfig)
        overrides = {name: kwargs.pop(name) for name in list(kwargs) if name in option_names}
        shadowed = sorted(set(kwargs) & set(RLLIB_OPTIONS.values()))
        if shadowed:
            names = {attribute: name for name, attribute in RLLIB_OPTIONS.items()}
            raise ConfigError(f"SeqGANConfig.training: {', '.join(shadowed)} are the options "
                              f"{', '.join(names[s] for s in shadowed)}; pass those")
        super().training(**kwargs)
        if options is not NotProvided:
            self.options = options
        if overrides:  # checked by validate(), like RLlib's own options
            self.options = with_overrides(self.options, overrides, check=False)
        if real_data is not NotProvided:
            self.real_data = real_data
        if discriminator_num_threads is not NotProvided:
            self.discriminator_num_threads = discriminator_num_threads
        self._apply_options()
        self._apply_env()
        return self

    def _apply_options(self) -> None:
        apply_rllib_options(self, self.resolved_options())
        self.num_envs_per_env_runner = self.options.schedule.episodes_per_batch

    def resolved_options(self) -> TrainConfig:
        """The options as the run uses them: those set here with the algorithm's defaults and the precision's
        parts filled in (``TrainConfig.resolved``; settable until the run is built, so resolved on demand)."""
        return self.options.resolved()

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
        self._apply_env()
        return self

    def _apply_env(self) -> None:
        """The token env of the generator, scoring finished episodes with this run's reward: the
        discriminator actor (by name) or the fixed reward model of ``options.reward.reward_model``."""
        if self.generator_config is None:
            return
        self.environment(RLLIB_ENV_NAME,
                         env_config={**self.seqgan_settings().env_config(), "end_token": self.end_token})

    def seqgan_settings(self) -> SeqGANSettings:
        """The options and the run's facts as the ``AdversarialMixin``, the Learner and its piece read them."""
        return SeqGANSettings(
            options=self.resolved_options(), real_data=self.real_data,
            generator_config=dict(self.generator_config or {}),
            discriminator_name=self.discriminator_name, discriminator_num_threads=self.discriminator_num_threads,
            pad_token=self.pad_token, reference_checkpoint=self.generator_checkpoint)

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
        if self.options.algorithm.algo != "seqgan":
            raise ConfigError(f"SeqGANConfig runs algo='seqgan', not {self.options.algorithm.algo!r}: build other "
                              "algorithms with seqgan_rl.rllib.build.build_algorithm_config")
        check_rllib_options(self, self.resolved_options())
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
        for _ in range(self.config.options.schedule.g_steps):
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
        wanted = self.config.options.schedule.episodes_per_batch
        group = self.env_runner_group
        remote = group.num_remote_env_runners()
        episodes: list[Any] = []
        runner_metrics: list[dict[str, Any]] = []
        for _ in range(SAMPLE_ATTEMPTS):
            if remote:
                self._wait_for_healthy_env_runner()
            per_runner = -(-(wanted - len(episodes)) // max(1, group.num_healthy_remote_env_runners()))
            results = group.foreach_env_runner(lambda runner, count=per_runner: _sample(runner, count),
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
