"""What SeqGAN adds to an RLlib algorithm config, built from the one ``TrainConfig``.

``SeqGANSettings`` carries the run's ``TrainConfig`` itself (every option, as
declared in ``seqgan_rl.config``) plus what only the run knows (the real data,
the generator's sizes, the discriminator actor's name). The algorithm's
``AdversarialMixin``, the Learner and its ``MonteCarloQConnector`` all read
their options from ``settings.options``: there is no second copy to keep in
step. ``RLLIB_OPTIONS`` is the one table of options that RLlib itself reads
under its own names (``lr``, ``grad_clip``, ``seed``), applied by
``apply_rllib_options``. Everything here takes a resolved ``TrainConfig``
(``TrainConfig.resolved``, called where the run starts) and refuses another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from seqgan_rl.config import DENSE_REWARD_MODELS, LEARNED_REWARD_MODELS, TrainConfig
from seqgan_rl.config.options import flat_dict
from seqgan_rl.distributed.devices import learner_gpus
from seqgan_rl.distributed.discriminator_actor import discriminator_recovery_s
from seqgan_rl.errors import ConfigError
from seqgan_rl.rewards import RewardModel, RewardModelSpec

RLLIB_OPTIONS: dict[str, str] = {"adversarial_lr": "lr", "grad_clip": "grad_clip", "seed": "seed"}
"""``TrainConfig`` option (flat name) → the ``AlgorithmConfig`` attribute RLlib reads it as (every algorithm)."""


def new_discriminator_name() -> str:
    """A fresh name for a run's discriminator actor (two runs on one cluster never share one)."""
    return f"seqgan_rl_discriminator_{uuid.uuid4().hex[:8]}"


def apply_rllib_options(algo_config: Any, options: TrainConfig) -> None:
    """Set the RLlib attributes that stand for SeqGAN options (``RLLIB_OPTIONS``), and those derived
    from them: gradients clipped by their global norm, as the original release; the Learner's GPUs.

    ``num_gpus_per_learner`` is ``learner_num_gpus`` where this process (the driver, in which the
    Learner runs: ``num_learners=0``) sees CUDA, else 0 with one warning (``learner_gpus``): RLlib
    would otherwise stop at its first GPU lookup.
    """
    values = flat_dict(options.check_resolved())
    for name, attribute in RLLIB_OPTIONS.items():
        setattr(algo_config, attribute, values[name])
    algo_config.grad_clip_by = "global_norm"
    algo_config.num_gpus_per_learner = learner_gpus(options.resources.learner_num_gpus)


def check_rllib_options(algo_config: Any, options: TrainConfig) -> None:
    """Refuse an RLlib attribute changed behind the options' back (e.g. ``.debugging(seed=...)``)."""
    values = flat_dict(options)
    for name, attribute in RLLIB_OPTIONS.items():
        if getattr(algo_config, attribute) != values[name]:
            raise ConfigError(f"{type(algo_config).__name__}: RLlib's {attribute}={getattr(algo_config, attribute)!r} "
                              f"differs from the option {name}={values[name]!r}; set {name} through "
                              ".training(...) / the TrainConfig (one source for every option)")


@dataclass(frozen=True)
class SeqGANSettings:
    """Everything SeqGAN adds to an RLlib algorithm (picklable: it travels to remote Learners).

    Attributes:
        options: the run's options, resolved; d-steps, Monte Carlo rollouts, the actors' resources all come
            from here.
        real_data: Parquet token table of real sequences (the discriminator's positives).
        generator_config: the generator's ``GeneratorConfig`` as a dict (vocab_size, seq_len, sizes).
        discriminator_name: the discriminator actor's Ray name (the token env's ``scorer``).
        discriminator_num_threads: its torch CPU threads (``None``: as Ray gives it).
        pad_token: fills sequences that ended early (end token) up to the sequence length.
        reference_checkpoint: the generator the KL penalty measures against (``kl_coef > 0``).
    """

    options: TrainConfig
    real_data: str
    generator_config: dict[str, Any]
    discriminator_name: str = "seqgan_rl_discriminator"
    discriminator_num_threads: int | None = None
    pad_token: int = 0
    reference_checkpoint: str | None = None
    """The frozen generator of the KL penalty (``kl_coef``): the checkpoint the adversarial phase starts from."""

    def __post_init__(self) -> None:
        # every reader sees the algorithm's values of the options left to it, filled where the run started
        self.options.check_resolved()

    @property
    def reward(self) -> str:
        """How the Monte Carlo values enter the algorithm: ``"q"`` (``algo="seqgan"``: the ``MC_Q``
        column its policy gradient reads), else the option ``reward``: ``"shaped"`` (rewards
        Q_t − Q_{t−1}, which sum to the terminal reward, for algorithms that compute their own
        advantages) or ``"terminal"`` (no rollouts: only the discriminator's terminal reward)."""
        return "q" if self.options.algorithm.algo == "seqgan" else self.options.reward.shaping

    def validate(self) -> SeqGANSettings:
        for key in ("vocab_size", "seq_len"):
            if key not in self.generator_config:
                raise ConfigError(f"SeqGANSettings.generator_config must give {key!r}")
        self.options.validate()
        return self

    @property
    def vocab_size(self) -> int:
        return int(self.generator_config["vocab_size"])

    @property
    def seq_len(self) -> int:
        return int(self.generator_config["seq_len"])

    @property
    def uses_discriminator(self) -> bool:
        """Whether the reward is a discriminator's (an actor trained against G: the CNN, the dense or the ratio
        one) rather than a fixed model."""
        return self.options.reward.reward_model in LEARNED_REWARD_MODELS

    @property
    def dense(self) -> bool:
        """Whether the reward is a dense or ratio discriminator's: every prefix scored in the Learner, no Monte
        Carlo search."""
        return self.options.reward.reward_model in DENSE_REWARD_MODELS

    @property
    def discriminator_architecture(self) -> str:
        """The discriminator actor's model: ``dense`` (the causal LSTM), ``ratio`` (the language model against
        G) or ``cnn`` (the paper's)."""
        return self.options.reward.reward_model if self.dense else "cnn"

    def reward_model_spec(self) -> RewardModelSpec | None:
        """The fixed reward model of ``options.reward.reward_model`` (``None``: the discriminator)."""
        return RewardModelSpec.of_run(self.options, self.real_data, self.vocab_size, self.seq_len)

    def env_config(self) -> dict[str, Any]:
        """The token env's configuration: the generator's sizes, the pad token, its scorer (``env_scorer``) and
        the deadlines of a reward: one call's (``actor_timeout_s``) and how long the env waits for the
        discriminator to come back (the supervisor's worst case, ``discriminator_recovery_s``)."""
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, "scorer": self.env_scorer(),
                "pad_token": self.pad_token, "scorer_timeout_s": self.options.resources.actor_timeout_s,
                "scorer_recovery_s": discriminator_recovery_s(self.options.resources.actor_timeout_s)}

    def env_scorer(self) -> str | RewardModel:
        """The token env's ``scorer``: the discriminator actor's name, or the fixed reward model (built in
        each env on first use)."""
        spec = self.reward_model_spec()
        return self.discriminator_name if spec is None else RewardModel(spec)

    def discriminator_sizes(self) -> dict[str, Any]:
        """The discriminator's sizes: the option ``dense_discriminator`` for the dense one, the generator's and
        ``ratio_objective`` for the ratio one, ``discriminator`` for the CNN."""
        if self.discriminator_architecture == "ratio":
            return {**{name: self.generator_config[name] for name in ("emb_dim", "hidden_dim", "start_token")},
                    "objective": self.options.discriminator.ratio_objective}
        return dict(self.options.discriminator.dense_sizes if self.dense else self.options.discriminator.cnn_sizes)

    def discriminator_kwargs(self) -> dict[str, Any]:
        """The discriminator's arguments: the generator's vocabulary and length, and its sizes."""
        return {"vocab_size": self.vocab_size, "seq_len": self.seq_len, **self.discriminator_sizes()}
