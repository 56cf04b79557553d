"""Named configurations (presets) of the MLE pretraining job.

One dataclass, every field documented; presets are instances of it, not
copies of code (``PRESETS["paper"]``, ``PRESETS["smoke"]``). Derived checks
live in ``validate`` so an impossible configuration fails before any work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
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
