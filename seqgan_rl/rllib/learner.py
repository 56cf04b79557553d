"""SeqGAN's Learner: the policy gradient −Σ_t log G(y_t | y_<t) · Q_t with Monte Carlo Q.

Q comes from the ``MonteCarloQConnector`` piece that ``build`` puts at the head
of the learner connector pipeline (column ``MC_Q``). The loss is summed over
every token of the batch, as in the original release (whose Adam learning rate
0.01 and gradient-norm clip 5.0 were tuned for that scale); there is no
baseline: Q ∈ [0, 1] is a probability.

The Learner also forwards the rollout-policy and discriminator updates to the
piece (``update_rollout_policy``, ``set_discriminator_weights``) so an
algorithm reaches them with ``learner_group.foreach_learner``, wherever the
Learner runs, and saves the piece's state (rollout policy, RNG) in its own
checkpoint state.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from seqgan_rl.distributed.weights import Weights
from seqgan_rl.rllib.monte_carlo import MC_Q, MonteCarloQConnector

MONTE_CARLO_STATE = "monte_carlo_q"
"""Key of the Monte Carlo piece's state inside the Learner's state."""


class SeqGANTorchLearner(TorchLearner):
    """Policy-gradient Learner for the generator RLModule (see module docstring)."""

    @override(TorchLearner)
    def build(self) -> None:
        super().build()
        if self._learner_connector is not None and not self._learner_connector[MonteCarloQConnector]:
            self._learner_connector.prepend(MonteCarloQConnector(settings=self.config.monte_carlo_settings()))

    @override(TorchLearner)
    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict[str, Any],
                                fwd_out: dict[str, Any]) -> torch.Tensor:
        """−Σ log G(a_t | s_t) · Q_t over the valid steps of batch rows [B, T] (zero-padding masked)."""
        logits = fwd_out[Columns.ACTION_DIST_INPUTS]  # (B, T, V)
        actions = batch[Columns.ACTIONS].long()  # (B, T)
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
        q = batch[MC_Q].to(log_probs.dtype)  # (B, T)
        mask = batch.get(Columns.LOSS_MASK)
        if mask is None:
            mask = torch.ones_like(q, dtype=torch.bool)
        weighted = torch.where(mask, log_probs * q, torch.zeros_like(q))
        loss = -weighted.sum()
        num_tokens = mask.sum().clamp(min=1)
        self.metrics.log_dict({
            "policy_loss": loss.detach(),
            "sampled_token_nll": -(torch.where(mask, log_probs, torch.zeros_like(q)).sum() / num_tokens).detach(),
            "mean_q": (torch.where(mask, q, torch.zeros_like(q)).sum() / num_tokens).detach(),
        }, key=module_id, window=1)
        return loss

    # ------------------------------------------------------------------ the Monte Carlo piece

    def monte_carlo_connector(self) -> MonteCarloQConnector:
        pieces = self._learner_connector[MonteCarloQConnector] if self._learner_connector is not None else []
        if not pieces:
            raise RuntimeError("this Learner's connector pipeline has no MonteCarloQConnector")
        return pieces[0]

    def update_rollout_policy(self) -> int:
        """Move the rollout policy towards the current generator (see ``MonteCarloQConnector``)."""
        return self.monte_carlo_connector().update_rollout_policy(self.module)

    def set_discriminator_weights(self, weights: Weights) -> None:
        self.monte_carlo_connector().set_discriminator_weights(weights)

    def shutdown_monte_carlo(self) -> None:
        self.monte_carlo_connector().shutdown()

    @override(TorchLearner)
    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(MONTE_CARLO_STATE, components, not_components):
            state[MONTE_CARLO_STATE] = self.monte_carlo_connector().get_state()
        return state

    @override(TorchLearner)
    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if MONTE_CARLO_STATE in state:
            self.monte_carlo_connector().set_state(state[MONTE_CARLO_STATE])
