"""SeqGAN's Monte Carlo reward step as a learner connector piece, usable by any RLlib algorithm.

``MonteCarloQConnector`` sits in a Learner's connector pipeline. Given the
complete episodes of a train batch (one episode = one generated sequence of
actions y_1..y_T), it asks a ``RolloutPool`` for every token's action value

    Q_t = (1/N) Σ_n D(y_1..y_t, Y^n_{t+1..T}),  Y^n ~ rollout policy,   Q_T = D(y_1..y_T)

in one batched call (the pool shards the batch over its K Ray actors, or runs
in-process when K = 0). With ``reward="q"`` it adds Q to the train batch as the
per-timestep column ``MC_Q`` (zero-padded like every other column for the
stateful generator), which SeqGAN's policy-gradient loss reads. With
``reward="shaped"`` it rewrites each episode's rewards to
r_t = Q_t − Q_{t−1} (Q_0 = 0): they sum to the terminal reward D(y), so the
return is unchanged, but every token gets the credit its Monte Carlo value
gives it; an algorithm that computes its own advantages (PPO's GAE, IMPALA's
V-trace) then uses them. The piece must come first in the pipeline (before
PPO's extra bootstrap timestep). Because it lives in the connector, not in an
algorithm's ``training_step``, it runs wherever and under whatever algorithm
the Learner runs.

The piece owns the two models the pool needs and keeps them current:

* the rollout policy θ_roll (``RolloutPolicy``): a copy of the generator made
  by the first ``update_rollout_policy`` call, then moved towards the Learner's
  generator, θ_roll ← β·θ_roll + (1 − β)·θ_G, by each later call (SeqGAN calls
  it once per adversarial batch, after its g-steps, as the original release);
* the discriminator's weights, pushed by ``set_discriminator_weights`` after
  every round of d-steps.

Each is sent to the pool's workers once per change (one object-store put),
never per call. Episodes shorter than the sequence length (an end token) are
padded with ``pad_token`` before the rollouts; only their own steps get a Q.

The same piece applies the KL penalty toward the starting generator
(``kl_coef`` = c > 0, every algorithm): with the frozen reference G_ref (the
checkpoint the adversarial phase starts from, ``SeqGANSettings.reference_checkpoint``)
and k_t = log G(y_t | y_<t) − log G_ref(y_t | y_<t) from one batched forward
pass of each model over the batch's sequences,

* ``reward="shaped"`` / ``"terminal"``: every token's reward loses c·k_t;
* ``reward="q"`` (SeqGAN's loss): Q_t loses c·Σ_{s≥t} k_s, the return of those
  rewards from t on, so −Σ_t log G·Q_t is the policy gradient of
  E[D] − c·KL(G ‖ G_ref) over whole sequences.

With ``kl_target`` > 0 the coefficient adapts after every batch toward that
KL per token (Ziegler et al., 2019: c ← c·(1 + 0.1·clip(KL/target − 1, ±0.2))).
The reference weights and the coefficient are part of the piece's state, so a
resumed run continues with the same ones. With ``reward="terminal"`` no
rollouts run; the piece only applies the penalty (and fits value targets for
the value-head warm-up).

Discriminator weights that hold NaN or inf (a diverged d-step) are refused
with a ``TrainingError`` when they arrive, before any Q is computed with them
(the engine also rejects any non-finite score). Rollout workers that died and
were replaced by the pool are counted in the metric ``mc_worker_restarts``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.annotations import override

from seqgan_rl.distributed.rollout_workers import RolloutPool
from seqgan_rl.distributed.weights import Weights, load_module_weights, module_weights
from seqgan_rl.errors import ConfigError, TrainingError
from seqgan_rl.mc.rollout_policy import RolloutPolicy
from seqgan_rl.models.dense_discriminator import DenseDiscriminator
from seqgan_rl.models.discriminator import build_discriminator
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.ratio_discriminator import RatioDiscriminator
from seqgan_rl.rewards import IDEAL, baselined, dense_values, maligan_normalised, position_spread, return_to_go
from seqgan_rl.rllib.settings import SeqGANSettings
from seqgan_rl.runs import read_generator_checkpoint

MC_Q = "mc_q"
"""Train-batch column holding each timestep's Monte Carlo action value Q_t (float32)."""
KL_GAIN = 0.1
"""Adaptive KL: the coefficient's relative change per batch at a 20 % (clipped) miss of the target."""


def kl_log_ratio(policy: Generator, reference: Generator, sequences: torch.Tensor) -> torch.Tensor:
    """k_t = log G(y_t | y_<t) − log G_ref(y_t | y_<t) [B, T] of sequences [B, T] (no gradient).

    Its mean over tokens sampled from G estimates KL(G ‖ G_ref) per token.
    """
    with torch.no_grad():
        return policy.log_prob(sequences) - reference.log_prob(sequences)


class MonteCarloQConnector(ConnectorV2):
    """Learner connector piece adding ``MC_Q`` [per timestep] to the train batch (see module docstring)."""

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        settings: SeqGANSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.settings = settings.validate()
        self.options = settings.options
        self.reward = settings.reward
        if self.reward not in ("q", "shaped", "terminal"):
            raise ConfigError(f"MonteCarloQConnector: reward must be 'q', 'shaped' or 'terminal', got "
                              f"{self.reward!r}")
        if self.options.reward.kl_coef > 0 and not settings.reference_checkpoint:
            raise ConfigError("kl_coef > 0 needs the reference generator: SeqGANSettings.reference_checkpoint "
                              "(the checkpoint the adversarial phase starts from)")
        if self.options.reward.kl_target > 0 and not self.options.reward.kl_coef > 0:
            raise ConfigError("kl_target > 0 adapts kl_coef from its starting value: give kl_coef > 0 as well")
        self.kl_coef = float(self.options.reward.kl_coef)
        self.gamma = self.options.reward.dense_gamma if settings.dense else 1.0
        """The discount of the rewards: the dense discriminator's ``dense_gamma``; 1 for Monte Carlo values."""
        self._dense_model: DenseDiscriminator | RatioDiscriminator | None = None
        """``reward_model=dense`` or ``ratio``: a copy of the discriminator actor's model, scoring the batch's
        prefixes."""
        self._reference: Generator | None = None
        self._pool: RolloutPool | None = None
        self._rollout: RolloutPolicy | None = None
        self._policy_version = 0
        self._discriminator: Weights | None = None
        self._rng_state: torch.Tensor | None = None
        self._num_nodes = 0
        """How many Ray nodes the pool's workers run on (reported as ``mc_worker_nodes``)."""
        self._baseline: np.ndarray | None = None
        """``baseline=ema``: b_t [T] (float64), ``None`` before the first batch."""
        self._ideal_version = 0
        """``reward_model=ideal``: how many times the generator went to the scorers."""
        self._restarts_before = 0
        """Rollout workers replaced before this pool started (the run's, from its checkpoint; a pool stopped)."""

    # ------------------------------------------------------------------ the reward step

    @override(ConnectorV2)
    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        metrics: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The reward step of one train batch, in named steps: the batch's sequences (``_sequences``), their
        Q (``_q``: the Monte Carlo search's or the dense discriminator's, transformed, MaliGAN-normalised) or
        per-token rewards (``_per_token``), the KL to the reference (``_kl``), then either SeqGAN's ``MC_Q``
        column (``_write_q``: baselined, KL return subtracted) or the episodes' rewards rewritten
        (``_write_rewards``); its metrics logged, the KL coefficient adapted."""
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        if not sa_episodes:
            return batch
        started = time.perf_counter()
        sequences, lengths = self._sequences(sa_episodes)  # (B, T), (B,)
        generator = self._generator(rl_module)
        q = rewards = None  # (B, T): Q, and the per-token rewards of the shaped algorithms
        if self.reward == "q":
            q = self._q(generator, sequences, lengths)
        elif self.reward == "shaped":
            q, rewards = self._per_token(generator, sequences, lengths)
        # measured whenever the reference is known (the metric kl_to_mle), applied when kl_coef > 0
        kl = self._kl(generator, sequences) if self.settings.reference_checkpoint else None  # (B, T)
        penalties = [self.kl_coef * kl[row, :length] if kl is not None and self.kl_coef > 0 else np.zeros(length)
                     for row, length in enumerate(lengths)]
        if self.reward == "q":
            self._write_q(batch, sa_episodes, self._baselined(q, lengths), penalties)
        else:
            self._write_rewards(sa_episodes, rewards, penalties)
        kl_per_token = float(np.concatenate([kl[row, :n] for row, n in enumerate(lengths)]).mean()) \
            if kl is not None else float("nan")
        if metrics is not None:
            self._log(metrics, q, lengths, kl_per_token, time.perf_counter() - started)
        if self.options.reward.kl_target > 0 and kl is not None:
            error = float(np.clip(kl_per_token / self.options.reward.kl_target - 1.0, -0.2, 0.2))
            self.kl_coef *= 1.0 + KL_GAIN * error
        return batch

    def _sequences(self, sa_episodes: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """The episodes' actions as sequences [B, T] (int64, padded with ``pad_token``) and their lengths [B]."""
        seq_len = self.settings.seq_len
        sequences = np.full((len(sa_episodes), seq_len), self.settings.pad_token, dtype=np.int64)
        lengths = np.zeros(len(sa_episodes), dtype=np.int64)
        for row, episode in enumerate(sa_episodes):
            if episode.t_started != 0 or not episode.is_done:
                raise ValueError(
                    "MonteCarloQConnector needs complete episodes (one whole sequence each); got an episode "
                    f"chunk (t_started={episode.t_started}, done={episode.is_done}): sample with "
                    "batch_mode='complete_episodes'"
                )
            actions = np.asarray(episode.get_actions(), dtype=np.int64)
            if len(actions) > seq_len:
                raise ValueError(f"episode of {len(actions)} steps is longer than the sequence length {seq_len}")
            sequences[row, : len(actions)] = actions
            lengths[row] = len(episode)
        return sequences, lengths

    def _q(self, generator: Generator, sequences: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Q [B, T] (float64) of sequences [B, T] under ``reward_transform``: the Monte Carlo search's, or the
        dense discriminator's (``_dense_values``).

        ``ideal`` first gets the Learner's current generator (D* is against it). ``maligan``: each position's
        values are divided by their mean over the batch's sequences that reach it (the normalised weights
        D/(1 − D) / mean D/(1 − D) of MaliGAN).
        """
        if self.settings.dense:
            return self._dense_values(generator, sequences, lengths)[0]
        pool = self._ensure_pool(generator)
        if self.settings.options.reward.reward_model == IDEAL:
            self._ideal_version += 1
            pool.sync(discriminator=module_weights(generator, self._ideal_version))
        q = pool.compute_q(sequences).astype(np.float64)
        if self.options.reward.reward_transform == "maligan":
            q = maligan_normalised(q, self._valid(q.shape, lengths))
        return q

    def _dense_values(self, generator: Generator, sequences: np.ndarray,
                      lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``reward_model=dense`` or ``ratio``: Q [B, T] and the per-prefix rewards f(D(y_≤t)) [B, T] (float64) of
        sequences [B, T], from one forward pass of the discriminator over the batch on the generator's device
        (``seqgan_rl.rewards.dense_values``; zero beyond each sequence's length)."""
        if self._dense_model is None:
            raise RuntimeError("MonteCarloQConnector: no discriminator weights yet; call set_discriminator_weights "
                               "first")
        model = self._dense_model.to(generator.device)
        logits = model.prefix_logits(torch.as_tensor(sequences, device=generator.device))  # (B, T)
        return dense_values(logits.double().cpu(), self._valid(sequences.shape, lengths),
                            self.options.reward.reward_transform, self.gamma, self.options.reward.dense_rewards)

    def _per_token(self, generator: Generator, sequences: np.ndarray,
                   lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Q [B, T] and the per-token rewards [B, T] that the shaped algorithms get, whose return at t under
        their discount (``gamma``) is Q_t: Q_t − Q_{t−1} of the Monte Carlo values (Q_0 = 0, discount 1), the
        dense discriminator's per-prefix rewards themselves (discount ``dense_gamma``)."""
        if self.settings.dense:
            return self._dense_values(generator, sequences, lengths)
        q = self._q(generator, sequences, lengths)
        return q, np.diff(q, axis=1, prepend=0.0)

    @staticmethod
    def _valid(shape: tuple[int, int], lengths: np.ndarray | None) -> np.ndarray:
        """[B, T] mask of the steps each sequence has (all, without ``lengths``)."""
        if lengths is None:
            return np.ones(shape, dtype=bool)
        return np.arange(shape[1])[None, :] < np.asarray(lengths)[:, None]

    def _baselined(self, q: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Q_t minus ``baseline``'s b_t [B, T] (``seqgan_rl.rewards.baselined``); the moving average kept."""
        q, self._baseline = baselined(q, self._valid(q.shape, lengths), self.options.reward.baseline,
                                      self._baseline, self.options.reward.baseline_decay)
        return q

    def _write_q(self, batch: dict[str, Any], sa_episodes: list[Any], q: np.ndarray,
                 penalties: list[np.ndarray]) -> None:
        """SeqGAN's column ``MC_Q``: Q_t − c·Σ_{s≥t} γ^(s−t)·k_s of each episode's steps (γ: ``gamma``)."""
        for row, episode in enumerate(sa_episodes):
            length = len(episode)
            values = (q[row, :length] - return_to_go(penalties[row], self.gamma)).astype(np.float32)
            self.add_n_batch_items(batch=batch, column=MC_Q, items_to_add=values, num_items=length,
                                   single_agent_episode=episode)

    def _write_rewards(self, sa_episodes: list[Any], per_token: np.ndarray | None,
                       penalties: list[np.ndarray]) -> None:
        """The episodes' rewards: the per-token rewards [B, T] of ``_per_token`` − c·k_t (``shaped``), or the
        env's reward − c·k_t (``terminal`` with a KL penalty); unchanged otherwise."""
        for row, episode in enumerate(sa_episodes):
            length = len(episode)
            if per_token is not None:
                rewards = per_token[row, :length] - penalties[row]
            elif self.kl_coef > 0:
                rewards = np.asarray(episode.get_rewards(), dtype=np.float64) - penalties[row]
            else:
                continue
            if isinstance(episode.rewards.data, np.ndarray) and not episode.rewards.data.flags.writeable:
                # episodes that came through the object store (IMPALA, APPO) hold read-only buffers
                episode.rewards.data = episode.rewards.data.copy()
            episode.set_rewards(new_data=rewards.astype(np.float32))

    def _log(self, metrics: Any, q: np.ndarray | None, lengths: np.ndarray, kl_per_token: float,
             seconds: float) -> None:
        """The reward step's metrics: KL and its coefficient; its seconds, Q's mean and spread over the batch,
        the pool's nodes and restarts (none with the dense discriminator)."""
        if np.isfinite(kl_per_token):
            metrics.log_value("kl_to_mle", kl_per_token, window=1)
            metrics.log_value("kl_coef", self.kl_coef, window=1)
        if q is None:
            return
        valid = self._valid(q.shape, lengths)
        metrics.log_value("monte_carlo_q_s", seconds, window=1)
        metrics.log_value("mean_q", float(q[valid].mean()), window=1)
        metrics.log_value("q_spread", float(position_spread(q, valid).mean()), window=1)
        if self._pool is None:  # the dense discriminator: no rollout workers
            return
        metrics.log_value("mc_worker_nodes", self._num_nodes, window=1)
        metrics.log_value("mc_worker_restarts", self._restarts_before + self._pool.num_restarts, window=1)

    def value_targets(self, generator: Generator, sequences: np.ndarray) -> np.ndarray:
        """Each step's return G_t [B, T] of whole sequences [B, T] sampled from ``generator`` under this
        piece's rewards, without a KL term (the value-head warm-up: ``generator`` is the reference there).

        ``shaped``: the return of ``_per_token``'s rewards under the algorithm's discount: D(y) − Q_{t−1}
        (Q_0 = 0) of the Monte Carlo values, Q_t of the dense discriminator's; ``terminal``: G_t = D(y),
        scored by the discriminator (the last column of Q, which needs no rollout for it).
        """
        lengths = np.full(len(sequences), sequences.shape[1])
        if self.reward == "terminal":
            q = self._q(generator, sequences, lengths)
            return np.repeat(q[:, -1:], q.shape[1], axis=1)
        return return_to_go(self._per_token(generator, sequences, lengths)[1], self.gamma)

    def _kl(self, generator: Generator, sequences: np.ndarray) -> np.ndarray:
        """k_t [B, T] of the batch's sequences against the reference (loaded on first use)."""
        if self._reference is None:
            config, state = read_generator_checkpoint(self.settings.reference_checkpoint)
            reference = Generator(config, init_std=None)
            reference.load_state_dict(state)
            self._reference = reference.eval()
        tokens = torch.as_tensor(sequences, device=generator.device)
        return kl_log_ratio(generator, self._reference.to(generator.device), tokens).double().cpu().numpy()

    # ------------------------------------------------------------------ keeping the models current

    def update_rollout_policy(self, rl_module: Any) -> int:
        """First call: θ_roll ← θ_G. Later calls: θ_roll ← β·θ_roll + (1 − β)·θ_G. Returns the version.

        With the dense discriminator there is no search and no rollout policy: only the version counts on."""
        self._policy_version += 1
        if self.settings.dense:
            return self._policy_version
        generator = self._generator(rl_module)
        if self._rollout is None:
            self._rollout = RolloutPolicy(generator, self.options.rollouts.rollout_beta,
                                          mix_embedding=self.options.rollouts.rollout_mix_embedding).to("cpu")
        else:
            self._rollout.update(generator)
        if self._pool is not None:
            self._pool.sync(policy=module_weights(self._rollout.model, self._policy_version))
        return self._policy_version

    def set_discriminator_weights(self, weights: Weights) -> None:
        """Use these discriminator weights for all following Q (after every round of d-steps).

        Weights with NaN or inf (a diverged d-step) are an error here, where
        they enter the Monte Carlo step: Q computed with them would be NaN.
        """
        state = weights["state"]
        bad = [name for name, value in state.items()
               if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.isfinite(value).all()]
        if bad:
            raise TrainingError(
                f"MonteCarloQConnector: the discriminator's weights (version {weights['version']}) hold NaN or inf "
                f"in {len(bad)} of {len(state)} tensors ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): "
                "the discriminator would return NaN scores; not computing Monte Carlo Q with it")
        self._discriminator = weights
        if self.settings.dense:
            if self._dense_model is None:
                with torch.random.fork_rng(devices=[]):  # its init is overwritten: draw nothing from the Learner's RNG
                    self._dense_model = build_discriminator(self.settings.discriminator_architecture,
                                                            **self.settings.discriminator_kwargs()).eval()
            load_module_weights(self._dense_model, weights)
        if self._pool is not None:
            self._pool.sync(discriminator=weights)

    def shutdown(self) -> None:
        """Stop the rollout actors (the pool is rebuilt on the next call if needed)."""
        if self._pool is not None:
            self._rng_state = self._pool.rng_state()
            self._restarts_before += self._pool.num_restarts
            self._pool.shutdown()
            self._pool = None

    # ------------------------------------------------------------------ checkpoints

    @override(ConnectorV2)
    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        """The rollout policy, its version and the uniforms' RNG (the discriminator is the actor's to save)."""
        rng = self._pool.rng_state() if self._pool is not None else self._rng_state
        model = self._rollout.model if self._rollout is not None else self._reference  # the generator's sizes
        return {  # copies: the live parameters keep moving with every update
            "rollout_policy": None if self._rollout is None else copy.deepcopy(self._rollout.state_dict()),
            "generator_config": None if model is None else asdict(model.config),
            "policy_version": self._policy_version,
            "rng_state": None if rng is None else rng.clone(),
            "kl_coef": self.kl_coef,
            "reference": None if self._reference is None else copy.deepcopy(self._reference.state_dict()),
            "baseline": None if self._baseline is None else self._baseline.copy(),
            "ideal_version": self._ideal_version,
            "worker_restarts": self._restarts_before + (0 if self._pool is None else self._pool.num_restarts),
        }

    @override(ConnectorV2)
    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("rollout_policy") is not None:
            generator = Generator(GeneratorConfig(**state["generator_config"]), init_std=None)
            self._rollout = RolloutPolicy(generator, self.options.rollouts.rollout_beta,
                                          mix_embedding=self.options.rollouts.rollout_mix_embedding)
            self._rollout.load_state_dict(state["rollout_policy"])
        self._policy_version = int(state.get("policy_version", 0))
        self.kl_coef = float(state.get("kl_coef", self.options.reward.kl_coef))
        if state.get("reference") is not None:
            reference = Generator(GeneratorConfig(**state["generator_config"]), init_std=None)
            reference.load_state_dict(state["reference"])
            self._reference = reference.eval()
        self._rng_state = state.get("rng_state")
        baseline = state.get("baseline")
        self._baseline = None if baseline is None else np.array(baseline, dtype=np.float64)
        self._ideal_version = int(state.get("ideal_version", 0))
        # the restarts of the run so far: those of this connector's pool count on from them
        self._restarts_before = int(state.get("worker_restarts", 0)) - (0 if self._pool is None else
                                                                        self._pool.num_restarts)
        if self._pool is not None:
            if self._rng_state is not None:
                self._pool.set_rng_state(self._rng_state)
            if self._rollout is not None:
                self._pool.sync(policy=module_weights(self._rollout.model, self._policy_version))

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _generator(rl_module: Any) -> Generator:
        module = rl_module[DEFAULT_MODULE_ID] if DEFAULT_MODULE_ID in rl_module else rl_module
        generator = getattr(module, "generator", None)
        if not isinstance(generator, Generator):
            raise TypeError(f"MonteCarloQConnector needs a module with a core `generator`, got {type(module)}")
        return generator

    def _ensure_pool(self, generator: Generator) -> RolloutPool:
        if self._rollout is None:
            raise RuntimeError("MonteCarloQConnector: no rollout policy yet; call update_rollout_policy first")
        if self._discriminator is None and self.settings.uses_discriminator:
            raise RuntimeError("MonteCarloQConnector: no discriminator weights yet; call "
                               "set_discriminator_weights first")
        if self._pool is None:
            o, resources, rollouts = self.options, self.options.resources, self.options.rollouts
            pool = RolloutPool(
                resources.num_mc_workers, generator.config, self.settings.discriminator_kwargs(),
                num_rollouts=rollouts.num_rollouts, num_cpus=resources.mc_worker_num_cpus,
                num_gpus=resources.mc_worker_num_gpus, max_batch=rollouts.mc_max_batch,
                score_precision=rollouts.score_precision, seed=o.seed,
                reward_model=self.settings.reward_model_spec(), reward_transform=o.reward.reward_transform,
                call_timeout_s=resources.actor_timeout_s,
            )
            if self._rng_state is not None:
                pool.set_rng_state(self._rng_state)
            pool.sync(policy=module_weights(self._rollout.model, self._policy_version),
                      discriminator=self._discriminator)
            self._num_nodes = len(set(pool.worker_nodes()))
            self._pool = pool
        return self._pool
