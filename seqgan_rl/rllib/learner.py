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
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.annotations import override

from seqgan_rl.rllib.adversarial import monte_carlo_pieces, seqgan_settings
from seqgan_rl.rllib.monte_carlo import MC_Q, MonteCarloQConnector

VALUE_WARMUP_LR = 0.01
"""Adam learning rate of the value-head warm-up (a linear head: H + 1 parameters)."""
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
        options = settings.options
        needed = (settings.reward != "terminal" or options.reward.kl_coef > 0
                  or (options.algorithm.value_warmup_steps or 0) > 0)
        if needed and self._learner_connector is not None and not monte_carlo_pieces(self):
            self._learner_connector.prepend(MonteCarloQConnector(settings=settings))

    def warm_up_value_head(self, steps: int, num_sequences: int, seed: int) -> dict[str, float]:
        """Fit the module's value head to the returns of the current generator's samples; the policy unchanged.

        Each of ``steps`` Adam steps (lr ``VALUE_WARMUP_LR``) samples ``num_sequences`` fresh sequences
        [B, T] from the generator (a torch RNG seeded by ``seed``), takes their returns G_t [B, T] from the
        Monte Carlo piece (``value_targets``) and minimises ½·mean (V(s_t) − G_t)². Returns the value loss
        and the explained variance 1 − Var(G − V) / Var(G) on the first and the last step's sequences.
        """
        module = self.module[DEFAULT_MODULE_ID]
        generator, head = module.generator, module.value_head
        piece = self.monte_carlo_connector()
        optimizer = torch.optim.Adam(head.parameters(), lr=VALUE_WARMUP_LR)
        rng = torch.Generator(device=generator.device).manual_seed(seed)
        report: dict[str, float] = {}
        for step in range(steps):
            with torch.no_grad():
                sequences = generator.sample(num_sequences, generator=rng)  # (B, T)
                hidden = generator.hidden_states(sequences)  # (B, T, H)
            targets = torch.as_tensor(piece.value_targets(generator, sequences.cpu().numpy()),
                                      dtype=hidden.dtype, device=hidden.device)  # (B, T)
            values = head(hidden).squeeze(-1)  # (B, T)
            loss = 0.5 * (values - targets).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            explained = 1.0 - float((targets - values.detach()).var() / targets.var().clamp(min=1e-12))
            tag = "first" if step == 0 else "last"
            if step in (0, steps - 1):
                report[f"loss_{tag}"], report[f"explained_var_{tag}"] = float(loss.detach()), explained
        return report

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
