"""The adversarial half of SeqGAN for any RLlib algorithm: the discriminator actor and its schedule.

``AdversarialMixin`` goes in front of an ``Algorithm`` class (``SeqGAN``, and
``SeqGANPPO``/``SeqGANAPPO``/``SeqGANIMPALA``); it is the one place where, for
every algorithm,

* the named discriminator actor is started (before any EnvRunner samples: the
  token env scores finished episodes with it) and given the real data;
* the Learner's Monte Carlo piece gets its first rollout policy (a copy of G)
  and the discriminator's weights;
* before the first iteration, the discriminator is pretrained
  (``d_pretrain_rounds`` d-steps against the MLE generator);
* after every iteration of the wrapped algorithm (its generator updates), the
  rollout policy moves towards G (β) and ``d_steps`` d-steps run, each on
  ``d_num_negatives`` fresh samples of the current G vs the real data; then the
  new discriminator weights go to the Monte Carlo piece;
* the discriminator's state joins the algorithm's checkpoints;
* the discriminator actor is kept alive: a ``DiscriminatorSupervisor`` snapshots
  its state after every d-step (and checkpoint load) and replaces a dead actor
  with one restored from that snapshot (same name, so envs find it again); the
  count is the metric ``discriminator/restarts``.

``ENV_RUNNER_FAULT_TOLERANCE`` is RLlib's EnvRunner fault tolerance as every
SeqGAN config sets it (``SeqGANConfig`` and ``algorithms.build_config``).

Settings come from ``seqgan_settings(config)``: a ``SeqGANConfig``'s own
options, or what ``with_seqgan`` put into any other ``AlgorithmConfig``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import TIMERS

from envs import register_rllib_env
from seqgan_rl.data import read_token_table
from seqgan_rl.distributed.discriminator_actor import DiscriminatorSupervisor
from seqgan_rl.distributed.weights import Weights
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.rllib.monte_carlo import MonteCarloQConnector, MonteCarloSettings

SEQGAN_SETTINGS_KEY = "seqgan"
"""Key of the ``SeqGANSettings`` in ``AlgorithmConfig.learner_config_dict`` (set by ``with_seqgan``)."""
SEQGAN_STATE = "seqgan"
"""Key of the adversarial state (discriminator actor, pretraining flag) in the algorithm's state."""
DISCRIMINATOR_PRETRAIN_TIMER = "discriminator_pretrain"
DISCRIMINATOR_TIMER = "discriminator_steps"
ROLLOUT_SYNC_TIMER = "rollout_policy_sync"
DISCRIMINATOR_RESULTS = "discriminator"
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


@dataclass(frozen=True)
class AdversarialSettings:
    """The discriminator and its schedule (defaults: the original release's).

    Attributes:
        real_data: Parquet token table of real sequences (the discriminator's positives).
        generator_config: the generator's ``GeneratorConfig`` as a dict (negatives are sampled from it).
        discriminator: ``Discriminator`` sizes; empty = the paper's CNN.
        discriminator_name: the Ray actor's name (the token env's ``scorer``).
        d_steps, d_epochs, d_batch_size, d_num_negatives: per iteration, ``d_steps`` d-steps of
            ``d_epochs`` passes (minibatch ``d_batch_size``) over real + ``d_num_negatives`` fresh fakes.
        d_pretrain_rounds: d-steps against the MLE generator before the first iteration.
        d_lr: the discriminator's Adam learning rate.
        num_cpus, num_gpus, num_threads: the actor's Ray resources and torch threads.
        precision: the d-steps' precision, "fp32" or "bf16" (autocast).
        seed: seeds the discriminator's initialisation, shuffling and negatives.
    """

    real_data: str
    generator_config: dict[str, Any]
    discriminator: dict[str, Any] = field(default_factory=dict)
    discriminator_name: str = "seqgan_rl_discriminator"
    d_steps: int = 5
    d_epochs: int = 3
    d_batch_size: int = 64
    d_num_negatives: int = 10_000
    d_pretrain_rounds: int = 50
    d_lr: float = 1e-4
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    num_threads: int | None = None
    precision: str = "fp32"
    seed: int = 0

    def validate(self) -> AdversarialSettings:
        for name in ("d_epochs", "d_batch_size", "d_num_negatives"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("d_steps", "d_pretrain_rounds", "num_cpus", "num_gpus"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.d_lr > 0:
            raise ConfigError(f"d_lr must be > 0, got {self.d_lr}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"d_precision must be 'fp32' or 'bf16', got {self.precision!r}")
        return self


@dataclass(frozen=True)
class SeqGANSettings:
    """Everything SeqGAN adds to an RLlib algorithm: the adversarial schedule and the Monte Carlo reward step.

    ``reward`` says how the Monte Carlo values enter the algorithm: ``"q"`` (the
    ``MC_Q`` column, for SeqGAN's own policy gradient), ``"shaped"`` (rewards
    rewritten to Q_t − Q_{t−1}, which sum to the terminal reward, for algorithms
    that compute their own advantages) or ``"terminal"`` (no rollouts: only the
    discriminator's terminal reward).
    """

    adversarial: AdversarialSettings
    monte_carlo: MonteCarloSettings
    reward: str = "q"

    def validate(self) -> SeqGANSettings:
        if self.reward not in ("q", "shaped", "terminal"):
            raise ConfigError(f"reward must be 'q', 'shaped' or 'terminal', got {self.reward!r}")
        self.adversarial.validate()
        self.monte_carlo.validate()
        return self


def seqgan_settings(config: Any) -> SeqGANSettings:
    """The ``SeqGANSettings`` of an algorithm config (a ``SeqGANConfig`` or one passed through ``with_seqgan``)."""
    own = getattr(config, "seqgan_settings", None)
    if callable(own):
        return own()
    settings = (config.learner_config_dict or {}).get(SEQGAN_SETTINGS_KEY)
    if settings is None:
        raise ConfigError(f"{type(config).__name__} has no SeqGAN settings: build it with with_seqgan(config, ...)")
    return settings


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
        settings = seqgan_settings(config).validate().adversarial
        register_rllib_env()
        real = read_token_table(settings.real_data)
        g = settings.generator_config
        if real.vocab_size != g["vocab_size"] or real.seq_len != g["seq_len"]:
            raise DataError(f"{settings.real_data}: vocab_size {real.vocab_size} / seq_len {real.seq_len} do not "
                            f"match the generator's {g['vocab_size']} / {g['seq_len']}")
        # The actor exists before any EnvRunner samples: envs look it up by name for their rewards.
        self.discriminator_supervisor = DiscriminatorSupervisor(
            settings.discriminator_name, g["vocab_size"], g["seq_len"], real_data=real.tokens,
            num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, discriminator_kwargs=dict(settings.discriminator),
            lr=settings.d_lr, seed=settings.seed, num_threads=settings.num_threads, train_precision=settings.precision,
        )
        self.discriminator_pretrained = settings.d_pretrain_rounds == 0
        try:
            super().setup(config)
            self.learner_group.foreach_learner(lambda learner: [
                piece.update_rollout_policy(learner.module) for piece in monte_carlo_pieces(learner)])
            self._sync_discriminator(
                self.discriminator_supervisor.run(lambda actor: ray.get(actor.get_weights.remote())))
        except BaseException:
            self.discriminator_supervisor.stop()  # no orphaned actor and watcher when the algorithm never starts
            raise

    @property
    def discriminator_actor(self) -> ray.actor.ActorHandle:
        """The live discriminator actor (a new handle after a replacement: look it up for each use)."""
        return self.discriminator_supervisor.handle

    def training_step(self) -> Any:
        """The wrapped algorithm's iteration (its generator updates), then the adversarial schedule."""
        if not self.discriminator_pretrained:
            self.pretrain_discriminator()
        result = super().training_step()
        with timed(self.metrics, ROLLOUT_SYNC_TIMER):
            self.learner_group.foreach_learner(
                lambda learner: [piece.update_rollout_policy(learner.module) for piece in monte_carlo_pieces(learner)])
        if self._seqgan.adversarial.d_steps:
            with timed(self.metrics, DISCRIMINATOR_TIMER):
                self._discriminator_steps(self._seqgan.adversarial.d_steps)
        self.metrics.log_value((DISCRIMINATOR_RESULTS, "restarts"), self.discriminator_supervisor.restarts, window=1)
        return result

    def pretrain_discriminator(
        self, rounds: int | None = None, progress: Callable[[int, dict[str, float]], Any] | None = None
    ) -> list[dict[str, float]]:
        """The paper's discriminator pretraining: ``rounds`` d-steps against the current (MLE) generator.

        ``progress(round, stats)`` is called after each round (a progress bar).
        """
        rounds = self._seqgan.adversarial.d_pretrain_rounds if rounds is None else rounds
        started = time.perf_counter()
        stats = self._discriminator_steps(rounds, progress=progress)
        self.discriminator_pretrained = True
        self.metrics.log_value((TIMERS, DISCRIMINATOR_PRETRAIN_TIMER), time.perf_counter() - started,
                               reduce="mean", window=1)
        return stats

    def generator_weights(self) -> dict[str, np.ndarray]:
        """The Learner's current generator parameters (core ``Generator`` names) as NumPy arrays."""
        state = self.learner_group.get_weights(module_ids=[DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID]
        return {k.removeprefix("generator."): (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
                for k, v in state.items() if k.startswith("generator.")}

    def _discriminator_steps(self, count: int, progress: Callable[..., Any] | None = None) -> list[dict[str, float]]:
        """``count`` d-steps on fresh negatives of the current generator, then sync D to the Monte Carlo piece.

        A snapshot of the actor follows each d-step, so a d-step that the
        actor died in is redone, exactly, on its replacement.
        """
        if count == 0:
            return []
        settings = self._seqgan.adversarial
        generator_state = ray.put(self.generator_weights())  # once, shared by the d-steps
        supervisor = self.discriminator_supervisor
        stats = []
        for step in range(count):
            result = supervisor.run(lambda actor: ray.get(actor.train_on_generator.remote(
                settings.generator_config, generator_state, settings.d_num_negatives, settings.d_epochs,
                settings.d_batch_size)), changes_state=True)
            stats.append(result)
            if progress is not None:
                progress(step + 1, result)
        last = stats[-1]
        self.metrics.log_dict({"loss": last["loss"], "accuracy": last["accuracy"], "version": last["version"],
                               "sample_s": sum(s["sample_s"] for s in stats) / count,
                               "train_s": sum(s["train_s"] for s in stats) / count},
                              key=DISCRIMINATOR_RESULTS, window=1)
        self._sync_discriminator(supervisor.run(lambda actor: ray.get(actor.get_weights.remote())))
        return stats

    def _sync_discriminator(self, weights: Weights) -> None:
        """Send the discriminator's ``weights`` to the Monte Carlo piece (its rollout workers score with them)."""
        self.learner_group.foreach_learner(
            lambda learner: [piece.set_discriminator_weights(weights) for piece in monte_carlo_pieces(learner)])

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(SEQGAN_STATE, components, not_components):
            discriminator = self.discriminator_supervisor.run(lambda actor: ray.get(actor.get_state.remote()))
            state[SEQGAN_STATE] = {"discriminator": discriminator,
                                   "discriminator_pretrained": self.discriminator_pretrained}
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if SEQGAN_STATE in state:
            self.discriminator_supervisor.run(
                lambda actor: ray.get(actor.set_state.remote(state[SEQGAN_STATE]["discriminator"])),
                changes_state=True)
            self.discriminator_pretrained = bool(state[SEQGAN_STATE]["discriminator_pretrained"])
            self._sync_discriminator(state[SEQGAN_STATE]["discriminator"]["weights"])

    def cleanup(self) -> None:
        self.learner_group.foreach_learner(
            lambda learner: [piece.shutdown() for piece in monte_carlo_pieces(learner)])
        super().cleanup()
        self.discriminator_supervisor.stop()
