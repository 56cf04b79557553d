"""A discriminator in the form of the optimal one: a language model q against the generator's density.

The optimal discriminator of a prefix is D*(y_≤t) = σ(log p_data(y_≤t) − log p_G(y_≤t))
(Goodfellow et al. 2014, Prop. 1). A classifier has to learn that whole log-ratio from
samples; this one is *given* its second term and learns only the first: its logit is

    logit(y_≤t) = log q(y_≤t) − log p_G(y_≤t) = Σ_{s≤t} [log q(y_s | y_<s) − log p_G(y_s | y_<s)],

with q a language model of the generator's architecture and p_G a copy of the current
generator (the *reference*, not trained). When q = p_data the logit is D*'s exactly, for
every generator, so what it must learn does not move while G moves: the usual
discriminator has to track G, this one only the data. It is noise-contrastive estimation
(Gutmann and Hyvärinen, 2010) with the generator as the noise.

* **The reference is the generator of the latest d-step** (``set_reference``, which the
  discriminator actor calls with the generator each d-step samples its negatives from).
  SeqGAN's schedule updates G, then runs the d-steps, then scores the next batch: so the
  reference in the weights the Learner reads is the generator that sampled that batch.
* **q starts as the generator** (the first ``set_reference`` copies it into q too): the
  logit starts at 0 for every sequence (D = 1/2, no information) and q then moves from the
  MLE model towards the data. ``start`` sets q first instead (``ratio_start=oracle``: the
  synthetic oracle, so the logit is D*'s and the reward's path can be measured with a
  perfect q).
* **Two objectives** (``objective``): ``mle`` fits q to the real sequences by maximum
  likelihood and ignores the negatives (its minimiser q = p_data is the same, and its
  gradient does not vanish where the classifier is confident); ``nce`` is the
  discriminator's own sigmoid cross-entropy at every prefix, each prefix carrying its
  sequence's label (the dense discriminator's objective), whose gradient fades as real and
  generated sequences separate. docs/rewards.md gives their information measures.

It is a dense discriminator (``reward_model=ratio`` takes the dense one's path: one forward
pass gives the logit of all B·T prefixes, no Monte Carlo search) with the dense one's
interface: ``forward`` (differentiable prefix logits), ``objective``, ``correct``,
``prefix_logits``, ``score``.

Shapes: M sequences, t ≤ T = seq_len positions, V = vocab_size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.models.dense_discriminator import prefix_cross_entropy
from seqgan_rl.models.generator import Generator, GeneratorConfig

__all__ = ["RATIO_OBJECTIVES", "RATIO_STARTS", "RatioDiscriminator"]

RATIO_OBJECTIVES: tuple[str, ...] = ("mle", "nce")
RATIO_STARTS: tuple[str, ...] = ("generator", "oracle")
"""Where q starts: the first reference generator, or the synthetic oracle (``start``: D*'s logit, for measuring
the reward's path with a perfect q)."""


class RatioDiscriminator(nn.Module):
    """logit(y_≤t) = log q(y_≤t) − log p_G(y_≤t): q trained, the reference p_G set from the generator.

    Args:
        vocab_size, seq_len, emb_dim, hidden_dim, start_token: the generator's sizes (q is a copy of it
            at the start, so it has its architecture).
        objective: ``mle`` or ``nce`` (module docstring).
    """

    def __init__(self, vocab_size: int, seq_len: int, emb_dim: int = 32, hidden_dim: int = 32, start_token: int = 0,
                 objective: str = "mle") -> None:
        super().__init__()
        if objective not in RATIO_OBJECTIVES:
            raise ConfigError(f"ratio discriminator: objective must be one of {', '.join(RATIO_OBJECTIVES)}, got "
                              f"{objective!r}")
        try:
            config = GeneratorConfig(int(vocab_size), int(seq_len), int(emb_dim), int(hidden_dim), int(start_token))
        except ValueError as error:
            raise ConfigError(f"ratio discriminator: {error}") from None
        self.vocab_size, self.seq_len, self.objective_name = config.vocab_size, config.seq_len, objective
        self.config = config
        self.model = Generator(config)
        """q, the trained language model."""
        self.reference = Generator(config).requires_grad_(False)
        """p_G, the generator of the latest ``set_reference`` (part of the weights, so a copy scores with it)."""
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        """Whether q has been copied from a generator yet (the first ``set_reference``)."""

    @property
    def device(self) -> torch.device:
        return self.model.device

    def set_reference(self, generator_state: dict[str, Any]) -> None:
        """Make the generator with these parameters (``Generator.state_dict`` names; tensors or arrays) the
        reference; the first call also starts q from it."""
        state = {name: torch.as_tensor(np.asarray(value)) for name, value in generator_state.items()}
        self.reference.load_state_dict(state)
        if not bool(self.started):
            self.model.load_state_dict(state)
            self.started.fill_(True)

    def start(self, state: dict[str, Any]) -> None:
        """Start q from these parameters (``Generator.state_dict`` names; tensors or arrays) instead of the first
        reference: with the oracle's, the logit is D*'s until q is trained."""
        self.model.load_state_dict({name: torch.as_tensor(np.asarray(value)) for name, value in state.items()})
        self.started.fill_(True)

    def forward(self, tokens: Tensor) -> Tensor:
        """The logit of every prefix, differentiable in q: ids (M, T) → (M, T); column t − 1 is prefix y_1..y_t's
        (it depends on no later token)."""
        tokens = self._check_tokens(tokens)
        with torch.no_grad():
            reference = self.reference.log_prob(tokens)  # (M, T)
        return torch.cumsum(self.model.log_prob(tokens) - reference, dim=1)

    def objective(self, logits: Tensor, labels: Tensor) -> Tensor:
        """The training loss from prefix logits (M, T) and labels (M,) in {0 = fake, 1 = real}.

        ``nce``: ``prefix_cross_entropy``. ``mle``: the mean of −(log q − log p_G) per token over the real
        sequences, whose gradient is that of q's negative log-likelihood (p_G is fixed); 0 when the batch holds
        no real sequence."""
        if labels.shape != logits.shape[:1]:
            raise DataError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        if self.objective_name == "nce":
            return prefix_cross_entropy(logits, labels)
        real = labels.to(logits.device) == 1
        return -(logits[real, -1].sum() / (self.seq_len * max(int(real.sum()), 1)))

    @staticmethod
    def correct(logits: Tensor, labels: Tensor) -> Tensor:
        """How many complete sequences (the last position's logit, (M, T) → (M,)) are on their label's side."""
        return ((logits[:, -1] > 0).long() == labels.to(logits.device)).sum()

    @torch.no_grad()
    def prefix_logits(self, tokens: Tensor, *, max_batch: int = 4096) -> Tensor:
        """The logit of every prefix: ids (M, T) → (M, T) float32, ``max_batch`` rows at a time."""
        if max_batch <= 0:
            raise ConfigError(f"max_batch must be positive, got {max_batch}")
        if not len(tokens):
            return torch.empty(tuple(tokens.shape), device=self.device)
        return torch.cat([self(tokens[start:start + max_batch]) for start in range(0, len(tokens), max_batch)])

    @torch.no_grad()
    def score(self, tokens: Tensor, *, max_batch: int = 4096) -> Tensor:
        """P(real) of each complete sequence: (M, T) ids → (M,) float32."""
        return torch.sigmoid(self.prefix_logits(tokens, max_batch=max_batch)[:, -1])

    def _check_tokens(self, tokens: Tensor) -> Tensor:
        tokens = torch.as_tensor(tokens)
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise DataError(f"ratio discriminator: expected token ids (M, {self.seq_len}), got shape "
                            f"{tuple(tokens.shape)}")
        try:
            return self.model.check_tokens(tokens)
        except ValueError as error:
            raise DataError(f"ratio discriminator: {error}") from None
