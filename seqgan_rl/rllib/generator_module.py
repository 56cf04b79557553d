"""The core ``Generator`` as an RLlib ``TorchRLModule`` (stateful: a step costs O(1)).

The module only routes RLlib's batches to the generator: the recurrent state
(h, c) travels in ``Columns.STATE_IN`` / ``STATE_OUT``, so an EnvRunner's step
feeds the newest token once instead of re-reading the prefix. The token fed at
time step i is the last token of the observed prefix (``prefix[length − 1]``),
or the generator's start token when the prefix is empty, so the module's
action distribution at each step is exactly G(· | prefix).

``model_config`` keys: ``vocab_size``, ``seq_len``, ``emb_dim``, ``hidden_dim``,
``start_token`` (those of ``GeneratorConfig``), ``max_seq_len`` (= ``seq_len``:
RLlib's learner connectors cut episodes into rows of this many steps, so one
row is one whole sequence) and optionally
``generator_checkpoint``: an MLE checkpoint (``seqgan-rl pretrain``) or a
SeqGAN run's ``generator.pt``, whose
weights every copy of the module (EnvRunners, Learners) starts from.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI, ValueFunctionAPI
from ray.rllib.core.rl_module.apis.target_network_api import TARGET_NETWORK_ACTION_DIST_INPUTS
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.annotations import override

from seqgan_rl.errors import ConfigError
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.runs import read_generator_checkpoint


class GeneratorRLModule(TorchRLModule):
    """Wraps ``seqgan_rl.models.generator.Generator``; its weights are ``self.generator``'s.

    Built the supported way: RLlib (``RLModuleSpec.build``) calls the inherited
    constructor with keyword arguments (``observation_space``, ``action_space``,
    ``inference_only``, ``model_config``, ``catalog_class``) and the module
    builds itself in ``setup``; it takes no ``RLModuleConfig``. (The
    "``RLModule(config=[RLModuleConfig object])`` has been deprecated" notice
    is RLlib's own: ``RLModule.__init__`` builds an ``RLModuleConfig`` for every
    module, ``ray/rllib/core/rl_module/rl_module.py:463``.)
    """

    @override(TorchRLModule)
    def setup(self) -> None:
        # RLlib 2.60's RLModuleSpec.build retries a constructor that raised AttributeError the deprecated
        # way, module_class(RLModuleConfig), which fails with "RLModule(config=...) has been deprecated"
        # and hides the real error: never let one out of setup.
        try:
            self.build_module()
        except AttributeError as error:
            raise RuntimeError(f"{type(self).__name__}.setup failed: {error}") from error

    def build_module(self) -> None:
        """What ``setup`` does (subclasses extend this, not ``setup``)."""
        if not isinstance(self.action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"{type(self).__name__} needs a Discrete action space (the vocabulary), "
                             f"got {self.action_space}")
        config = GeneratorConfig(**{k: self.model_config[k] for k in
                                    ("vocab_size", "seq_len", "emb_dim", "hidden_dim", "start_token")
                                    if k in self.model_config})
        if self.action_space.n != config.vocab_size:
            raise ValueError(f"action space has {self.action_space.n} tokens, model_config.vocab_size is "
                             f"{config.vocab_size}")
        self.generator = Generator(config)
        checkpoint = self.model_config.get("generator_checkpoint")
        if checkpoint:
            saved_config, state = read_generator_checkpoint(checkpoint)
            if saved_config != config:
                raise ConfigError(f"{checkpoint}: generator {saved_config} does not match the "
                                  f"module's model_config {config}")
            self.generator.load_state_dict(state)

    @override(TorchRLModule)
    def get_initial_state(self) -> dict[str, np.ndarray]:
        hidden = self.generator.config.hidden_dim
        return {"h": np.zeros(hidden, dtype=np.float32), "c": np.zeros(hidden, dtype=np.float32)}

    def _input_tokens(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The token consumed at each time step: [B, L] from prefixes [B, L, T] and lengths [B, L]."""
        prefix, length = obs["prefix"].long(), obs["length"].long()
        last = prefix.gather(-1, (length - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, L)
        return torch.where(length > 0, last, torch.full_like(last, self.generator.config.start_token))

    def _hidden(self, batch: dict[str, Any], generator: Generator | None = None) -> tuple[torch.Tensor, tuple]:
        """LSTM outputs [B, L, H] for [B, L] observations from STATE_IN, and the final (h, c) [1, B, H]."""
        generator = generator or self.generator
        tokens = self._input_tokens(batch[Columns.OBS])  # (B, L)
        state = batch[Columns.STATE_IN]
        return generator.lstm(generator.embedding(tokens), (state["h"].unsqueeze(0), state["c"].unsqueeze(0)))

    @override(TorchRLModule)
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Logits of the next token for every time step of [B, L] observations, and the new state."""
        hidden, (h, c) = self._hidden(batch)  # (B, L, H)
        return {
            Columns.ACTION_DIST_INPUTS: self.generator.output(hidden),  # (B, L, V)
            Columns.EMBEDDINGS: hidden,
            Columns.STATE_OUT: {"h": h.squeeze(0), "c": c.squeeze(0)},
        }


class GeneratorActorCriticRLModule(GeneratorRLModule, ValueFunctionAPI, TargetNetworkAPI):
    """The generator plus what other algorithms ask of a module: a value head and a target copy.

    PPO and IMPALA call ``compute_values`` (a linear head on the LSTM output,
    the only new parameters: H + 1). The head reads the LSTM's output detached:
    the value loss trains the head alone and never moves the generator, whose
    parameters change only by the policy gradient (a shared trunk let the
    untrained head's large value gradients pull the MLE generator away from
    its start). APPO also keeps a target copy of the
    generator (``make_target_networks`` / ``forward_target``). The policy is
    exactly the wrapped ``Generator``, so MLE weights load the same way and
    ``generator.*`` parameters mean the same as in ``GeneratorRLModule``.
    """

    @override(GeneratorRLModule)
    def build_module(self) -> None:
        super().build_module()
        self.value_head = torch.nn.Linear(self.generator.config.hidden_dim, 1)
        with torch.no_grad():  # V = 0 until fitted: with shaped rewards (Q_t − Q_{t−1}) that is already the
            self.value_head.weight.zero_()  # right baseline, and a random head would only add noise
            self.value_head.bias.zero_()

    @override(ValueFunctionAPI)
    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """V(s_t) [B, L] from the LSTM outputs [B, L, H] (given, or recomputed from the batch's observations and
        state), detached: the value loss moves only the head."""
        if embeddings is None:
            embeddings, _ = self._hidden(batch)
        return self.value_head(embeddings.detach()).squeeze(-1)

    @override(TargetNetworkAPI)
    def make_target_networks(self) -> None:
        self._target_generator = make_target_network(self.generator)

    @override(TargetNetworkAPI)
    def get_target_network_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.generator, self._target_generator)]

    @override(TargetNetworkAPI)
    def forward_target(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        hidden, _ = self._hidden(batch, self._target_generator)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: self._target_generator.output(hidden)}


def generator_module_spec(
    config: GeneratorConfig, generator_checkpoint: str | None = None, *, value_head: bool = False
) -> RLModuleSpec:
    """The ``RLModuleSpec`` to pass to ``AlgorithmConfig.rl_module(rl_module_spec=...)``.

    ``value_head=True`` gives ``GeneratorActorCriticRLModule`` (PPO, APPO, IMPALA).
    """
    model_config = {"vocab_size": config.vocab_size, "seq_len": config.seq_len, "emb_dim": config.emb_dim,
                    "hidden_dim": config.hidden_dim, "start_token": config.start_token, "max_seq_len": config.seq_len}
    if generator_checkpoint:
        model_config["generator_checkpoint"] = str(generator_checkpoint)
    module_class = GeneratorActorCriticRLModule if value_head else GeneratorRLModule
    return RLModuleSpec(module_class=module_class, model_config=model_config)
