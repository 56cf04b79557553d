"""The one format in which model weights cross Ray boundaries."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Weights = dict[str, Any]
"""``{"version": int, "state": {parameter name: np.ndarray}}``: NumPy arrays go
through the object store zero-copy; the version tells a holder whether its copy is stale."""


def module_weights(module: nn.Module, version: int) -> Weights:
    """A module's state dict as NumPy arrays, tagged with ``version``."""
    return {"version": int(version),
            "state": {name: value.detach().cpu().numpy() for name, value in module.state_dict().items()}}


def load_module_weights(module: nn.Module, weights: Weights) -> int:
    """Load ``weights`` into ``module`` (on its device) and return their version."""
    # torch.tensor copies: arrays from the object store are read-only views
    module.load_state_dict({name: torch.tensor(value) for name, value in weights["state"].items()})
    return int(weights["version"])
