"""A causal discriminator that scores every prefix of a sequence in one pass (dense rewards).

SeqGAN values the prefix y_1..y_t by completing it N times with a rollout policy and
scoring each completion (``seqgan_rl.mc``). de Masson d'Autume et al. (2019, "Training
Language GANs from Scratch") instead read the sequence causally: an LSTM over the
embedded tokens gives, at every position t, the logit that the prefix y_1..y_t comes
from the real data. One forward pass over the batch's B sequences gives the reward of
all B·T prefixes.

Training (``objective``): a sigmoid cross-entropy at every position, every prefix of a
real sequence labelled 1 and every prefix of a generated one 0, averaged over positions
and sequences, plus ``l2_reg``/2 times the squared norm of the weight matrices. With
balanced classes the minimiser of the cross-entropy at position t is the optimal
discriminator of prefixes, D*(y_≤t) = p_data(y_≤t) / (p_data(y_≤t) + p_G(y_≤t)), the
dense counterpart of Goodfellow et al. (2014)'s Prop. 1. The regularisers the paper
names are options: dropout on the LSTM's outputs (``dropout_keep``), the L2 penalty,
and layer normalisation of the LSTM's outputs (``layer_norm``).

It shares the CNN discriminator's interface where both are used (``forward`` logits for
``train_discriminator``, ``objective``, ``correct``, ``score``: the probability that the
*complete* sequence is real), so the discriminator actor trains and serves either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan_rl.errors import ConfigError, DataError

__all__ = ["DenseDiscriminator", "prefix_cross_entropy"]


def prefix_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """The mean sigmoid cross-entropy of prefix logits (M, T), every prefix labelled as its sequence (labels (M,),
    1 = real): minimised at position t by the optimal discriminator of prefixes, D*(y_≤t)."""
    targets = labels.to(device=logits.device, dtype=logits.dtype)[:, None].expand_as(logits)
    return F.binary_cross_entropy_with_logits(logits, targets)


class DenseDiscriminator(nn.Module):
    """Embedding → LSTM → (layer norm) → dropout → linear: one logit per position.

    Args:
        vocab_size: number of token ids; valid ids are 0..vocab_size-1.
        seq_len: the length T of the sequences it is trained on (it reads any prefix length up to T).
        emb_dim: token embedding size E.
        hidden_dim: LSTM state size H.
        num_layers: stacked LSTM layers.
        dropout_keep: keep probability of the dropout on the LSTM's outputs (training only).
        l2_reg: weight of the L2 penalty on every weight matrix in :meth:`objective`.
        layer_norm: normalise the LSTM's outputs (``nn.LayerNorm``) before the output layer.
    """

    def __init__(self, vocab_size: int, seq_len: int, emb_dim: int = 64, hidden_dim: int = 128, num_layers: int = 1,
                 dropout_keep: float = 0.75, l2_reg: float = 0.0, layer_norm: bool = False) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("seq_len", seq_len), ("emb_dim", emb_dim),
                            ("hidden_dim", hidden_dim), ("num_layers", num_layers)):
            if int(value) <= 0:
                raise ConfigError(f"dense discriminator: {name} must be positive, got {value}")
        if not 0.0 < dropout_keep <= 1.0:
            raise ConfigError(f"dense discriminator: dropout_keep must be in (0, 1], got {dropout_keep}")
        if l2_reg < 0:
            raise ConfigError(f"dense discriminator: l2_reg must be non-negative, got {l2_reg}")
        self.vocab_size, self.seq_len = int(vocab_size), int(seq_len)
        self.l2_reg = float(l2_reg)
        self.embedding = nn.Embedding(self.vocab_size, int(emb_dim))
        self.lstm = nn.LSTM(int(emb_dim), int(hidden_dim), num_layers=int(num_layers), batch_first=True)
        self.norm: nn.Module = nn.LayerNorm(int(hidden_dim)) if layer_norm else nn.Identity()
        self.dropout = nn.Dropout(1.0 - dropout_keep)
        self.output = nn.Linear(int(hidden_dim), 1)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    def forward(self, tokens: Tensor) -> Tensor:
        """The logit log D − log(1 − D) of every prefix, differentiable; dropout in train mode.

        tokens: (M, t) integer ids, t ≤ seq_len (moved to the module's device). Returns (M, t): column
        s − 1 is the logit of the prefix y_1..y_s, which depends on no later token.
        """
        tokens = self._check_tokens(tokens)
        states, _ = self.lstm(self.embedding(tokens))  # (M, t, H)
        return self.output(self.dropout(self.norm(states))).squeeze(-1)

    def objective(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Training objective from logits (M, T) and labels (M,) in {0 = fake, 1 = real}: the mean sigmoid
        cross-entropy over every position (each prefix carries its sequence's label) plus
        l2_reg · Σ‖W‖² / 2 over the weight matrices (embedding, LSTM, output; not biases or the norm)."""
        if labels.shape != logits.shape[:1]:
            raise DataError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        loss = prefix_cross_entropy(logits, labels)
        if self.l2_reg > 0:
            weights = [p for name, p in self.named_parameters() if p.dim() > 1]
            loss = loss + 0.5 * self.l2_reg * sum(w.square().sum() for w in weights)
        return loss

    @staticmethod
    def correct(logits: Tensor, labels: Tensor) -> Tensor:
        """How many complete sequences (the last position's logit, (M, T) → (M,)) are on their label's side."""
        return ((logits[:, -1] > 0).long() == labels.to(logits.device)).sum()

    def loss(self, tokens: Tensor, labels: Tensor) -> Tensor:
        """``objective`` of the logits of tokens (M, T) against labels (M,)."""
        return self.objective(self(tokens), labels)

    @torch.no_grad()
    def prefix_logits(self, tokens: Tensor, *, max_batch: int = 4096) -> Tensor:
        """The logit of every prefix as the model in eval mode (no dropout): (M, t) ids → (M, t) float32.

        Rows go ``max_batch`` at a time; the module's training flag is left as it was.
        """
        if max_batch <= 0:
            raise ConfigError(f"max_batch must be positive, got {max_batch}")
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(tokens[start:start + max_batch]) for start in range(0, len(tokens), max_batch)]) \
                if len(tokens) else torch.empty(tokens.shape, device=self.device)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def score(self, tokens: Tensor, *, max_batch: int = 4096) -> Tensor:
        """P(real) of each complete sequence: (M, T) ids → (M,) float32, the last prefix's probability."""
        return torch.sigmoid(self.prefix_logits(tokens, max_batch=max_batch)[:, -1])

    def _check_tokens(self, tokens: Tensor) -> Tensor:
        tokens = torch.as_tensor(tokens, device=self.device)
        if tokens.dim() != 2 or tokens.shape[1] == 0 or tokens.shape[1] > self.seq_len:
            raise DataError(f"dense discriminator: expected token ids (M, t) with 0 < t <= {self.seq_len}, got shape "
                            f"{tuple(tokens.shape)}")
        if tokens.dtype not in (torch.int64, torch.int32):
            tokens = tokens.long()
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise DataError(f"token ids must be in [0, {self.vocab_size}), got values in [{int(tokens.min())}, "
                            f"{int(tokens.max())}]")
        return tokens
