"""The adversarial half of SeqGAN for any RLlib algorithm: the discriminator actor and its schedule.

``AdversarialMixin`` goes in front of an ``Algorithm`` class (``SeqGAN``, and
``SeqGANPPO``/``SeqGANAPPO``/``SeqGANIMPALA``); it is the one place where, for
every algorithm,

* the named discriminator actor is started (before any EnvRunner samples: the
  token env scores finished episodes with it) and given the real data;
* the Learner's Monte Carlo piece gets its first rollout policy (a copy of G)
  and the discriminator's weights;
* before the first iteration, the discriminator is pretrained
  (``d_pretrain_rounds`` d-steps against the MLE generator), then an
  actor-critic algorithm's value head is fitted (``value_warmup_steps``);
* after every iteration of the wrapped algorithm (its generator updates), the
  rollout policy moves towards G (β) and ``d_steps`` d-steps run, each on
  ``d_num_negatives`` fresh samples of the current G vs the real data; then the
  new discriminator weights go to the Monte Carlo piece;
* the discriminator's state joins the algorithm's checkpoints;
* the discriminator actor is kept alive: a ``DiscriminatorSupervisor`` snapshots
  its state after every d-step (and checkpoint load) and replaces a dead actor
  with one restored from that snapshot (same name, so envs find it again); the
  count is the metric ``discriminator/restarts``.

With a fixed reward model (``reward_model`` ``bleu``, ``constant``, ``ideal`` or
``module:function``, ``seqgan_rl.rewards``) there is no discriminator: no actor,
no pretraining, no d-steps; the envs and the Monte Carlo piece score with the
reward model itself (``ideal``: the piece, against the current generator).

``ENV_RUNNER_FAULT_TOLERANCE`` is RLlib's EnvRunner fault tolerance as every
SeqGAN config sets it (``SeqGANConfig``, and ``build_config`` in ``seqgan_rl.rllib.with_seqgan``
for PPO, APPO and IMPALA; both reached from ``seqgan_rl.rllib.build``, which builds a run's config).

Settings come from ``seqgan_settings(config)`` (a ``SeqGANSettings``: the run's
``TrainConfig`` and what only the run knows), from a ``SeqGANConfig`` or from
what ``with_seqgan`` put into any other ``AlgorithmConfig``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import TIMERS

from seqgan_rl.data.tables import read_token_table
from seqgan_rl.distributed.discriminator_actor import DiscriminatorSupervisor
from seqgan_rl.distributed.weights import Weights
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.models.generator import GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.rewards import IDEAL, ORACLE_FILE, RewardModel, probability_logits
from seqgan_rl.rllib.monte_carlo import MonteCarloQConnector
from seqgan_rl.rllib.settings import SeqGANSettings
from seqgan_rl_envs import register_rllib_env

SEQGAN_SETTINGS_KEY = "seqgan"
"""Key of the ``SeqGANSettings`` in ``AlgorithmConfig.learner_config_dict`` (set by ``with_seqgan``)."""
SEQGAN_STATE = "seqgan"
"""Key of the adversarial state (discriminator actor, pretraining flag) in the algorithm's state."""
DISCRIMINATOR_PRETRAIN_TIMER = "discriminator_pretrain"
DISCRIMINATOR_TIMER = "discriminator_steps"
ROLLOUT_SYNC_TIMER = "rollout_policy_sync"
DISCRIMINATOR_RESULTS = "discriminator"
VALUE_WARMUP_RESULTS = "value_warmup"
VALUE_WARMUP_STREAM = 1
"""Spawn key of the warm-up's sample seed: ``SeedSequence(seed, spawn_key=(1,))``, apart from every other stream."""
ENV_RUNNER_FAULT_TOLERANCE: dict[str, Any] = {
    "restart_failed_env_runners": True,
    "max_num_env_runner_restarts": 1000,
    "delay_between_env_runner_restarts_s": 5.0,
}
"""``AlgorithmConfig.fault_tolerance`` options of every SeqGAN config: a dead EnvRunner is restarted
(Ray brings the actor back, the algorithm re-sends the generator's weights) and the lost sampling is
redone. Pinned here rather than left to RLlib's defaults, which change between releases; the delay
(RLlib: 60 s, slept by an EnvRunner whose env raised before it exits to be restarted) is short because
the one remote dependency of our envs, the discriminator actor, is brought back by the algorithm itself."""


def seqgan_settings(config: Any) -> SeqGANSettings:
    """The ``SeqGANSettings`` of an algorithm config (a ``SeqGANConfig`` or one passed through ``with_seqgan``)."""
    own = getattr(config, "seqgan_settings", None)
    if callable(own):
        return own()
    settings = (config.learner_config_dict or {}).get(SEQGAN_SETTINGS_KEY)
    if settings is None:
        raise ConfigError(f"{type(config).__name__} has no SeqGAN settings: build it with with_seqgan(config, ...)")
    return settings


def run_oracle(settings: SeqGANSettings, option: str) -> dict[str, np.ndarray]:
    """The oracle beside the real data, as arrays for the discriminator actor (any node): ``d_fresh_real``'s
    positives, or ``ratio_start=oracle``'s q."""
    oracle_file = Path(settings.real_data).parent / ORACLE_FILE
    if not oracle_file.is_file():
        raise DataError(f"{option} needs the oracle: {oracle_file} not found (synthetic oracle data only)")
    return Oracle.from_npz(oracle_file).to_arrays()


def timed(metrics: Any, name: str) -> Any:
    """Context manager timing a stage under ``timers/<name>`` (this iteration's seconds, not an average)."""
    return metrics.log_time((TIMERS, name), reduce="mean", window=1)


def monte_carlo_pieces(learner: Any) -> list[MonteCarloQConnector]:
    """The Monte Carlo connector pieces of a Learner's pipeline (none with ``reward="terminal"``)."""
    pipeline = getattr(learner, "_learner_connector", None)
    return [] if pipeline is None else pipeline[MonteCarloQConnector]


class AdversarialMixin:
    """Put in front of an ``Algorithm`` class (see module docstring); the class must use
    a Learner with ``MonteCarloLearnerMixin`` unless the reward is ``"terminal"``."""

    @property
    def _seqgan(self) -> SeqGANSettings:
        return seqgan_settings(self.config)

    def setup(self, config: Any) -> None:
        settings = seqgan_settings(config).validate()
        options = settings.options
        register_rllib_env()
        real = read_token_table(settings.real_data)
        if real.vocab_size != settings.vocab_size or real.seq_len != settings.seq_len:
            raise DataError(f"{settings.real_data}: vocab_size {real.vocab_size} / seq_len {real.seq_len} do not "
                            f"match the generator's {settings.vocab_size} / {settings.seq_len}")
        # The actor exists before any EnvRunner samples: envs look it up by name for their rewards.
        self.discriminator_supervisor: DiscriminatorSupervisor | None = None
        if settings.uses_discriminator:
            self.discriminator_supervisor = DiscriminatorSupervisor(
                settings.discriminator_name, settings.vocab_size, settings.seq_len, real_data=real.tokens,
                num_cpus=options.resources.discriminator_num_cpus, num_gpus=options.resources.discriminator_num_gpus,
                architecture=settings.discriminator_architecture,
                discriminator_kwargs=settings.discriminator_sizes(), lr=options.discriminator.d_lr, seed=options.seed,
                num_threads=settings.discriminator_num_threads, train_precision=options.discriminator.d_precision,
                call_timeout_s=options.resources.actor_timeout_s,
                **({"oracle": run_oracle(settings, "d_fresh_real")} if options.discriminator.d_fresh_real else {}),
                **({"q_start": run_oracle(settings, "ratio_start=oracle")}
                   if options.discriminator.ratio_start == "oracle" else {}),
            )
        self.discriminator_pretrained = options.discriminator.d_pretrain_rounds == 0 or not settings.uses_discriminator
        self.value_warmed_up = not options.algorithm.value_warmup_steps
        try:
            super().setup(config)
            self.learner_group.foreach_learner(lambda learner: [
                piece.update_rollout_policy(learner.module) for piece in monte_carlo_pieces(learner)])
            if self.discriminator_supervisor is not None:
                self._sync_discriminator(
                    self.discriminator_supervisor.run(lambda actor: actor.get_weights.remote()))
        except BaseException:
            if self.discriminator_supervisor is not None:  # no orphaned actor and watcher when it never starts
                self.discriminator_supervisor.stop()
            raise

    @property
    def discriminator_actor(self) -> ray.actor.ActorHandle:
        """The live discriminator actor (a new handle after a replacement: look it up for each use)."""
        return self._supervisor().handle

    def _supervisor(self) -> DiscriminatorSupervisor:
        if self.discriminator_supervisor is None:
            raise ConfigError(f"this run's reward_model is {self._seqgan.options.reward.reward_model!r}: it has no "
                              "discriminator")
        return self.discriminator_supervisor

    def training_step(self) -> Any:
        """The wrapped algorithm's iteration (its generator updates), then the adversarial schedule."""
        if not self.discriminator_pretrained:
            self.pretrain_discriminator()
        if not self.value_warmed_up:
            self.warm_up_value_head()
        result = super().training_step()
        with timed(self.metrics, ROLLOUT_SYNC_TIMER):
            self.learner_group.foreach_learner(
                lambda learner: [piece.update_rollout_policy(learner.module) for piece in monte_carlo_pieces(learner)])
        if self.discriminator_supervisor is None:
            return result
        if self._seqgan.options.discriminator.d_steps:
            with timed(self.metrics, DISCRIMINATOR_TIMER):
                self._discriminator_steps(self._seqgan.options.discriminator.d_steps)
        self.metrics.log_value((DISCRIMINATOR_RESULTS, "restarts"), self.discriminator_supervisor.restarts, window=1)
        return result

    def pretrain_discriminator(
        self, rounds: int | None = None, progress: Callable[[int, dict[str, float]], Any] | None = None
    ) -> list[dict[str, float]]:
        """The paper's discriminator pretraining: ``rounds`` d-steps against the current (MLE) generator.

        ``progress(round, stats)`` is called after each round (a progress bar). Nothing to do (no rounds)
        with a fixed reward model.
        """
        rounds = self._seqgan.options.discriminator.d_pretrain_rounds if rounds is None else rounds
        if self.discriminator_supervisor is None:
            rounds = 0
        started = time.perf_counter()
        stats = self._discriminator_steps(rounds, progress=progress)
        self.discriminator_pretrained = True
        self.metrics.log_value((TIMERS, DISCRIMINATOR_PRETRAIN_TIMER), time.perf_counter() - started,
                               reduce="mean", window=1)
        return stats

    def warm_up_value_head(self) -> dict[str, float]:
        """Before the first policy update: ``value_warmup_steps`` fits of the value head to Monte Carlo
        returns of the starting generator's samples (``MonteCarloLearnerMixin.warm_up_value_head``), so the
        first advantages come from a fitted baseline. Logged under ``value_warmup/``."""
        options = self._seqgan.options
        seed = int(np.random.SeedSequence(options.seed, spawn_key=(VALUE_WARMUP_STREAM,)).generate_state(1)[0])
        started = time.perf_counter()
        results = self.learner_group.foreach_learner(lambda learner: learner.warm_up_value_head(
            options.algorithm.value_warmup_steps, options.schedule.episodes_per_batch, seed))
        report = next(iter(results)).get()  # the first Learner's (all Learners fit the same head)
        self.value_warmed_up = True
        self.metrics.log_dict({**report, "seconds": time.perf_counter() - started}, key=VALUE_WARMUP_RESULTS,
                              window=1)
        return report

    def set_discriminator_weights(self, weights: Weights) -> None:
        """Give the discriminator actor these weights (``module_weights(Discriminator(...), version)``) and
        send them to the Monte Carlo piece: a discriminator chosen by hand, e.g. a fixed reward whose
        optimum is known (with ``d_steps=0`` and ``d_pretrain_rounds=0`` it stays as given)."""
        self._supervisor().run(lambda actor: actor.set_weights.remote(weights), changes_state=True)
        self._sync_discriminator(weights)

    def generator_weights(self) -> dict[str, np.ndarray]:
        """The Learner's current generator parameters (core ``Generator`` names) as NumPy arrays."""
        state = self.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID]
        return {k.removeprefix("generator."): (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
                for k, v in state.items() if k.startswith("generator.")}

    def reward_logits(self, tokens: np.ndarray) -> np.ndarray:
        """The reward model's score of sequences [M, T] (int64) as logits log D − log(1 − D) [M] (float64),
        before any transform: the discriminator actor's (``DiscriminatorActor.logits``); for ``ideal``,
        log p_oracle − log p_G against the Learner's current generator (exact, where D* itself saturates);
        else the fixed reward model's.
        """
        settings = self._seqgan
        if self.discriminator_supervisor is not None:
            return np.array(self.discriminator_supervisor.run(lambda actor: actor.logits.remote(tokens)))
        spec = settings.reward_model_spec()
        if spec.name == IDEAL:
            ideal = spec.ideal_discriminator(GeneratorConfig(**settings.generator_config))
            ideal.load_generator_weights(self.generator_weights())
            return ideal.logit(torch.as_tensor(tokens)).double().numpy()
        return probability_logits(torch.as_tensor(RewardModel(spec)(tokens))).numpy()

    def _discriminator_steps(self, count: int, progress: Callable[..., Any] | None = None) -> list[dict[str, float]]:
        """``count`` d-steps on fresh negatives of the current generator, then sync D to the Monte Carlo piece.

        A snapshot of the actor follows each d-step, so a d-step that the
        actor died in is redone, exactly, on its replacement.
        """
        if count == 0:
            return []
        settings = self._seqgan
        options = settings.options
        generator_state = ray.put(self.generator_weights())  # once, shared by the d-steps
        supervisor = self._supervisor()
        stats = []
        for step in range(count):
            result = supervisor.run(lambda actor: actor.train_on_generator.remote(
                settings.generator_config, generator_state, options.discriminator.d_num_negatives,
                options.discriminator.d_epochs, options.discriminator.d_batch_size), changes_state=True)
            stats.append(result)
            if progress is not None:
                progress(step + 1, result)
        last = stats[-1]
        self.metrics.log_dict({"loss": last["loss"], "accuracy": last["accuracy"], "version": last["version"],
                               "sample_s": sum(s["sample_s"] for s in stats) / count,
                               "train_s": sum(s["train_s"] for s in stats) / count},
                              key=DISCRIMINATOR_RESULTS, window=1)
        self._sync_discriminator(supervisor.run(lambda actor: actor.get_weights.remote()))
        return stats

    def _sync_discriminator(self, weights: Weights) -> None:
        """Send the discriminator's ``weights`` to the Monte Carlo piece (its rollout workers score with them)."""
        self.learner_group.foreach_learner(
            lambda learner: [piece.set_discriminator_weights(weights) for piece in monte_carlo_pieces(learner)])

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(SEQGAN_STATE, components, not_components):
            supervisor = self.discriminator_supervisor
            discriminator = None if supervisor is None else supervisor.run(
                lambda actor: actor.get_state.remote())
            state[SEQGAN_STATE] = {"discriminator": discriminator,
                                   "discriminator_restarts": None if supervisor is None else supervisor.restarts,
                                   "discriminator_pretrained": self.discriminator_pretrained,
                                   "value_warmed_up": self.value_warmed_up}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if SEQGAN_STATE in state:
            discriminator = state[SEQGAN_STATE]["discriminator"]
            if (discriminator is None) != (self.discriminator_supervisor is None):
                raise ConfigError("the checkpoint's reward model (with or without a discriminator) differs from "
                                  f"this algorithm's reward_model {self._seqgan.options.reward.reward_model!r}")
            if discriminator is not None:
                self._supervisor().run(lambda actor: actor.set_state.remote(discriminator),
                                       changes_state=True)
                self._sync_discriminator(discriminator["weights"])
                self._supervisor().restarts = int(state[SEQGAN_STATE].get("discriminator_restarts") or 0)
            self.discriminator_pretrained = bool(state[SEQGAN_STATE]["discriminator_pretrained"])
            self.value_warmed_up = bool(state[SEQGAN_STATE].get("value_warmed_up", True))

    def cleanup(self) -> None:
        self.learner_group.foreach_learner(
            lambda learner: [piece.shutdown() for piece in monte_carlo_pieces(learner)])
        super().cleanup()
        if self.discriminator_supervisor is not None:
            self.discriminator_supervisor.stop()
