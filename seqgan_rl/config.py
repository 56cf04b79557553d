"""Named configurations (presets) of the MLE pretraining and SeqGAN training jobs.

One dataclass per job, every field documented; presets are instances of them,
not copies of code (``PRESETS["paper"]``, ``TRAIN_PRESETS["cpu"]``). Derived
checks live in ``validate`` so an impossible configuration fails before any work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from seqgan_rl.errors import ConfigError


@dataclass(frozen=True)
class PretrainConfig:
    """MLE pretraining of the generator on the synthetic oracle (or a corpus)."""

    emb_dim: int = 32
    """Generator embedding size (paper: 32)."""
    hidden_dim: int = 32
    """Generator LSTM hidden size (paper: 32)."""
    batch_size: int = 64
    """Sequences per gradient step (paper: 64)."""
    lr: float = 0.01
    """Adam learning rate (the original release: 0.01)."""
    grad_clip: float = 5.0
    """Global gradient-norm clip (the original release: 5.0)."""
    epochs: int = 120
    """Passes over the training sequences (the original release: 120)."""
    eval_every: int = 5
    """Evaluate NLL-oracle / NLL-test every this many epochs (and after the last)."""
    num_train: int = 10_000
    """Oracle sequences generated as training data when no --data is given (paper: 10,000)."""
    num_test: int = 10_000
    """Held-out oracle sequences for NLL-test when no --data is given."""
    num_eval_samples: int = 10_000
    """Generator samples scored by the oracle for one NLL-oracle (paper: 10,000)."""
    seed: int = 0
    """Seeds the generator's initialisation, batching and sampling."""
    data_seed: int = 1234
    """Seeds the oracle's samples used as training / held-out data."""

    def validate(self) -> PretrainConfig:
        """Raise ``ConfigError`` naming the field of any impossible value; return self."""
        positive = ("emb_dim", "hidden_dim", "batch_size", "epochs", "eval_every", "num_train", "num_eval_samples")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.num_test < 0:
            raise ConfigError(f"num_test must be >= 0, got {self.num_test}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be > 0, got {self.grad_clip}")
        return self

    def with_overrides(self, **overrides: Any) -> PretrainConfig:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, PretrainConfig] = {
    "paper": PretrainConfig(),
    "smoke": PretrainConfig(
        epochs=2, eval_every=1, num_train=1_000, num_test=500, num_eval_samples=1_000
    ),
}
"""``paper``: the original release's MLE setting; ``smoke``: seconds, for tests and a first look."""


def get_preset(name: str) -> PretrainConfig:
    """Look up a preset by name with a clear error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None


ALGORITHMS: tuple[str, ...] = ("seqgan", "ppo", "appo", "impala")
"""Generator optimisers ``seqgan-rl train --algo`` accepts."""

PAPER_DISCRIMINATOR: dict[str, Any] = {}
"""Empty: ``Discriminator``'s defaults are the paper's CNN (emb 64, filters 1..10, 15, 20; 1,720 features)."""

CPU_DISCRIMINATOR: dict[str, Any] = {
    "emb_dim": 64,
    "filter_sizes": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20),
    "num_filters": (25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40),
}
"""The paper's filter widths with a quarter of the filters (430 features): ~1/8 of the FLOPs."""


@dataclass(frozen=True)
class TrainConfig:
    """Full SeqGAN training: MLE pretraining, discriminator pretraining, adversarial batches."""

    mle: PretrainConfig = field(default_factory=PretrainConfig)
    """The MLE phase (skipped when a generator checkpoint is given)."""
    adversarial_batches: int = 200
    """Adversarial batches = ``SeqGAN.train()`` iterations (paper: 200)."""
    episodes_per_batch: int = 64
    """Generated sequences per generator update (paper: 64)."""
    g_steps: int = 1
    """Generator updates per adversarial batch (paper: 1)."""
    d_steps: int = 5
    """Discriminator steps per adversarial batch, each on fresh negatives (paper: 5)."""
    d_epochs: int = 3
    """Epochs per d-step (paper: 3)."""
    d_num_negatives: int = 10_000
    """Generated sequences per d-step (paper: 10,000, as many as real ones)."""
    d_pretrain_rounds: int = 50
    """D-steps against the MLE generator before the adversarial phase (paper: 50)."""
    d_lr: float = 1e-4
    """Discriminator Adam learning rate (paper: 1e-4)."""
    d_precision: str = "fp32"
    """Precision of the d-steps: "fp32", or "bf16" (autocast, ~1.4x faster on CPUs with AVX512_BF16)."""
    discriminator: dict[str, Any] = field(default_factory=dict)
    """``Discriminator`` sizes; empty = the paper's CNN."""
    num_rollouts: int = 16
    """N, Monte Carlo completions per prefix (paper: 16)."""
    rollout_beta: float = 0.8
    """β, weight kept on the old rollout-policy parameters per update (paper: 0.8)."""
    adversarial_lr: float = 0.01
    """Generator Adam learning rate in the adversarial phase (the original release: 0.01)."""
    grad_clip: float = 5.0
    """Generator gradient-norm clip in the adversarial phase (the original release: 5.0)."""
    algo: str = "seqgan"
    """The generator's optimiser: ``seqgan`` (the paper's policy gradient) or an RLlib algorithm
    (``ppo``, ``appo``, ``impala``) with the same env, module, rewards and discriminator."""
    reward: str = "shaped"
    """For ``ppo``/``appo``/``impala``: Monte Carlo values as shaped rewards Q_t − Q_{t−1}
    (``shaped``) or only the discriminator's terminal reward (``terminal``)."""
    num_mc_workers: int = 0
    """K Monte Carlo rollout actors; 0 computes Q in the learner's process."""
    mc_worker_num_cpus: float = 1.0
    """CPUs of each rollout actor."""
    mc_worker_num_gpus: float = 0.0
    """GPUs of each rollout actor (0.25: four share a GPU)."""
    score_precision: str = "fp32"
    """Precision of the rollout workers' discriminator: "fp32" or "int8" (CPU)."""
    discriminator_num_gpus: float = 0.0
    """GPUs of the discriminator actor."""
    eval_every: int = 5
    """Evaluate NLL-oracle / NLL-test every this many adversarial batches (the original: 5)."""
    checkpoint_every: int = 10
    """Write a checkpoint every this many adversarial batches (and after the last)."""
    seed: int = 0
    """Seeds RLlib, the discriminator, the rollouts and the evaluation samples."""

    def validate(self) -> TrainConfig:
        """Raise ``ConfigError`` naming the field of any impossible value; return self."""
        self.mle.validate()
        positive = ("adversarial_batches", "episodes_per_batch", "g_steps", "d_epochs", "d_num_negatives",
                    "num_rollouts", "eval_every", "checkpoint_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("d_steps", "d_pretrain_rounds", "num_mc_workers", "mc_worker_num_cpus", "mc_worker_num_gpus",
                     "discriminator_num_gpus"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("d_lr", "adversarial_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.rollout_beta <= 1.0:
            raise ConfigError(f"rollout_beta must be in [0, 1], got {self.rollout_beta}")
        if self.score_precision not in ("fp32", "int8"):
            raise ConfigError(f"score_precision must be 'fp32' or 'int8', got {self.score_precision!r}")
        if self.d_precision not in ("fp32", "bf16"):
            raise ConfigError(f"d_precision must be 'fp32' or 'bf16', got {self.d_precision!r}")
        if self.algo not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; known: {', '.join(ALGORITHMS)}")
        if self.reward not in ("shaped", "terminal"):
            raise ConfigError(f"reward must be 'shaped' or 'terminal', got {self.reward!r}")
        if not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be > 0, got {self.grad_clip}")
        return self

    def with_overrides(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields replaced (``None`` values are ignored; ``mle_<field>`` reaches the MLE phase)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        mle = {k.removeprefix("mle_"): v for k, v in overrides.items() if k.startswith("mle_")}
        rest = {k: v for k, v in overrides.items() if not k.startswith("mle_")}
        unknown = sorted(set(rest) - {f.name for f in fields(self)})
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return replace(self, mle=self.mle.with_overrides(**mle), **rest).validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict`` (for ``--resume``: a run continues with the configuration it started with)."""
        data = dict(data)
        mle = PretrainConfig(**data.pop("mle"))
        discriminator = {k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("discriminator").items()}
        return cls(mle=mle, discriminator=discriminator, **data).validate()


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "paper": TrainConfig(),
    "cpu": TrainConfig(
        mle=replace(PRESETS["paper"], eval_every=10),
        adversarial_batches=100, d_steps=1, d_epochs=1, d_num_negatives=5_000, d_pretrain_rounds=10,
        discriminator=CPU_DISCRIMINATOR, eval_every=10, checkpoint_every=20,
    ),
    "smoke": TrainConfig(
        mle=PRESETS["smoke"], adversarial_batches=3, episodes_per_batch=16, d_steps=1, d_epochs=1,
        d_num_negatives=200, d_pretrain_rounds=1, num_rollouts=4, eval_every=1, checkpoint_every=2,
        discriminator={"emb_dim": 16, "filter_sizes": (1, 2, 3, 5), "num_filters": (8, 8, 8, 8)},
    ),
}
"""``paper``: the original release's whole schedule (a GPU job); ``cpu``: the same MLE phase and
generator, a narrower discriminator and a lighter d-schedule, 100 adversarial batches (this
2-core machine, ~30 min); ``smoke``: a minute, for tests and a first look."""


def get_train_preset(name: str) -> TrainConfig:
    """Look up a training preset by name with a clear error listing the known ones."""
    try:
        return TRAIN_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(sorted(TRAIN_PRESETS))}") from None
