"""The rollout policy: a delayed copy of the generator used for Monte Carlo search."""

from __future__ import annotations

import copy
from typing import Any

import torch

from seqgan_rl.models.generator import Generator


class RolloutPolicy:
    """Holds θ_roll and moves it towards the generator after each generator step.

    The update is ``θ_roll ← β·θ_roll + (1 − β)·θ_G``: β is the weight kept on
    the *old rollout* parameters, so β = 1 freezes the rollout policy and
    β = 0 makes it an exact copy of G. The original release uses β = 0.8 and
    copies the embedding table directly instead of mixing it
    (``mix_embedding=False`` reproduces that; ``True`` mixes every parameter).
    """

    def __init__(self, generator: Generator, beta: float = 0.8, *, mix_embedding: bool = False) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta = beta
        self.mix_embedding = mix_embedding
        self.model: Generator = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: Generator) -> None:
        """Move θ_roll towards ``generator``'s current parameters (call after each G step)."""
        source = dict(generator.named_parameters())
        for name, parameter in self.model.named_parameters():
            target = source[name].detach().to(parameter.device)
            if name == "embedding.weight" and not self.mix_embedding:
                parameter.copy_(target)
            else:
                parameter.mul_(self.beta).add_(target, alpha=1.0 - self.beta)

    def to(self, device: torch.device | str) -> RolloutPolicy:
        self.model.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "mix_embedding": self.mix_embedding, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta = float(state["beta"])
        self.mix_embedding = bool(state["mix_embedding"])
        self.model.load_state_dict(state["model"])
