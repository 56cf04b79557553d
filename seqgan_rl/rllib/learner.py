"""SeqGAN's Learner: the policy gradient −Σ_t log G(y_t | y_<t) · Q_t with Monte Carlo Q.

Q comes from the ``MonteCarloQConnector`` piece that ``build`` puts at the head
of the learner connector pipeline (column ``MC_Q``). The loss is summed over
every token of the batch, as in the original release (whose Adam learning rate
0.01 and gradient-norm clip 5.0 were tuned for that scale); there is no
baseline: Q ∈ [0, 1] is a probability.

``MonteCarloLearnerMixin`` adds the piece to any Learner class (this one, and
PPO's, APPO's, IMPALA's under ``with_seqgan``) and saves the piece's state
(rollout policy, RNG) in the Learner's checkpoint state; the algorithm reaches
the piece with ``learner_group.foreach_learner`` wherever the Learner runs.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from seqgan_rl.rllib.adversarial import monte_carlo_pieces, seqgan_settings
from seqgan_rl.rllib.monte_carlo import MC_Q, MonteCarloQConnector

MONTE_CARLO_STATE = "monte_carlo_q"
"""Key of the Monte Carlo piece's state inside the Learner's state."""


class MonteCarloLearnerMixin:
    """Put in front of any RLlib Learner class: adds the Monte Carlo piece and checkpoints its state.

    ``build`` prepends a ``MonteCarloQConnector`` (the settings' ``reward``:
    "q" or "shaped") so it sees the episodes before every other piece; with
    ``reward="terminal"`` nothing is added. The piece's state (rollout policy,
    RNG) is saved with the Learner's.
    """

    def build(self) -> None:
        super().build()
        settings = seqgan_settings(self.config)
        if settings.reward != "terminal" and self._learner_connector is not None and not monte_carlo_pieces(self):
            self._learner_connector.prepend(MonteCarloQConnector(settings=settings))

    def monte_carlo_connector(self) -> MonteCarloQConnector:
        pieces = monte_carlo_pieces(self)
        if not pieces:
            raise RuntimeError("this Learner's connector pipeline has no MonteCarloQConnector")
        return pieces[0]

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if monte_carlo_pieces(self) and self._check_component(MONTE_CARLO_STATE, components, not_components):
            state[MONTE_CARLO_STATE] = self.monte_carlo_connector().get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if MONTE_CARLO_STATE in state:
            self.monte_carlo_connector().set_state(state[MONTE_CARLO_STATE])


class SeqGANTorchLearner(MonteCarloLearnerMixin, TorchLearner):
    """Policy-gradient Learner for the generator RLModule (see module docstring)."""

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
        }, key=module_id, window=1)
        return loss
