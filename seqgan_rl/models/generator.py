"""The generator: an LSTM language model used as SeqGAN's stochastic policy.

One implementation serves three roles: the generator G (trained by MLE, then by
policy gradient), the synthetic oracle (``seqgan_rl.models.oracle.Oracle`` is a frozen
``Generator`` with the paper's parameters) and the Monte Carlo rollout policy
(``seqgan_rl.mc.RolloutPolicy`` holds a delayed copy).

Conventions shared with the original release: the first input of every
sequence is ``start_token`` (0), which is not part of the sequence and may also
be generated; sequences have a fixed length ``seq_len``.

Shapes: B sequences, T = seq_len, V = vocab_size, E = emb_dim, H = hidden_dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan_rl.models.categorical import SAMPLING_CHUNK_ROWS, sample_next_tokens
from seqgan_rl.models.projection import linear_log_prob, linear_log_prob_sum

LSTMState = tuple[Tensor, Tensor]
"""(h, c), each [B, H]: the recurrent state after the tokens consumed so far."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of a generator; the paper's synthetic setting is the default."""

    vocab_size: int = 5000
    seq_len: int = 20
    emb_dim: int = 32
    hidden_dim: int = 32
    start_token: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "emb_dim", "hidden_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GeneratorConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.start_token < self.vocab_size:
            raise ValueError(
                f"GeneratorConfig.start_token must be in [0, {self.vocab_size}), got {self.start_token}"
            )


def checked_active_rows(active_rows: list[int] | None, shape: tuple[int, int], group_size: int,
                        has_uniforms: bool) -> list[int]:
    """``continue_sequences``' schedule of active rows for a [R, L] buffer (``None``: all R at every column),
    checked: one entry per sampled column, non-decreasing, at most R; groups only with pre-drawn uniforms."""
    total_rows, length = shape
    if active_rows is None:
        active_rows = [total_rows] * (length - 1)
    if len(active_rows) != length - 1:
        raise ValueError(f"active_rows needs {length - 1} entries (one per sampled column), got {len(active_rows)}")
    if group_size < 1 or (group_size > 1 and not has_uniforms):
        raise ValueError(f"group_size must be >= 1 and > 1 only with uniforms, got {group_size}")
    if any(b < a for a, b in zip([0, *active_rows], active_rows)) or (active_rows and active_rows[-1] > total_rows):
        raise ValueError(f"active_rows must be non-decreasing and <= {total_rows}, got {active_rows}")
    return active_rows


class Generator(nn.Module):
    """Embedding → single-layer LSTM → vocabulary projection.

    ``forward`` is teacher-forced and uses cuDNN/oneDNN's fused LSTM; ``step``
    advances one token in O(1) from a recurrent state, and ``sample`` /
    ``prefix_states`` build on it with a precomputed input table (the
    embedding already multiplied by the input weights), so a generation step is
    one [B, H] × [H, 4H] product, a gather and the output projection.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig(), init_std: float | None = 0.1) -> None:
        """
        Args:
            config: model sizes.
            init_std: every parameter ~ N(0, init_std²) as in the original
                release (0.1); ``None`` keeps PyTorch's default initialisation.
        """
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.emb_dim)
        self.lstm = nn.LSTM(config.emb_dim, config.hidden_dim, batch_first=True)
        self.output = nn.Linear(config.hidden_dim, config.vocab_size)
        if init_std is not None:
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.normal_(0.0, init_std)

    # ----------------------------------------------------------------- basics
    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def seq_len(self) -> int:
        return self.config.seq_len

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero (h, c), each [batch_size, H]."""
        zeros = torch.zeros(batch_size, self.config.hidden_dim, device=self.device, dtype=self.output.weight.dtype)
        return zeros, zeros.clone()

    def start_tokens(self, batch_size: int) -> Tensor:
        """[batch_size] int64 filled with the start token."""
        return torch.full((batch_size,), self.config.start_token, dtype=torch.long, device=self.device)

    def _shifted_inputs(self, tokens: Tensor) -> Tensor:
        """Inputs for teacher forcing: start token then y_1..y_{T−1}. [B, T]."""
        start = self.start_tokens(tokens.shape[0]).unsqueeze(1)
        return torch.cat([start, tokens[:, :-1]], dim=1)

    def hidden_states(self, tokens: Tensor) -> Tensor:
        """The LSTM's outputs [B, T, H] reading sequences [B, T] by teacher forcing: position t has read
        the start token and y_1..y_(t−1), so it is the state from which y_t is drawn."""
        return self.lstm(self.embedding(self._shifted_inputs(tokens)))[0]

    def check_tokens(self, tokens: Tensor) -> Tensor:
        """Validate a [B, T] batch of token ids and move it to the model's device as int64."""
        if tokens.dim() != 2:
            raise ValueError(f"expected token ids of shape [batch, seq_len], got shape {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(f"token ids must be integers, got dtype {tokens.dtype}")
        if tokens.numel():
            low, high = int(tokens.min()), int(tokens.max())
            if low < 0 or high >= self.vocab_size:
                bad = low if low < 0 else high
                row = int(((tokens == bad).any(dim=1)).nonzero()[0])
                raise ValueError(f"token id {bad} in row {row} is outside the vocabulary [0, {self.vocab_size})")
        return tokens.to(device=self.device, dtype=torch.long)

    # --------------------------------------------------------- teacher forcing
    def forward(self, tokens: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced pass (nanoGPT-style signature).

        Args:
            tokens: [B, T] sequences; the model reads the start token and
                y_1..y_{T−1} and predicts y_1..y_T.
            targets: [B, T] tokens to score, usually ``tokens`` itself; when
                given, the mean per-token cross-entropy is returned as loss.

        Returns:
            logits [B, T, V] and the loss (or None).
        """
        tokens = self.check_tokens(tokens)
        hidden = self.hidden_states(tokens)  # (B, T, H)
        logits = self.output(hidden)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.to(logits.device, torch.long).flatten())
        return logits, loss

    def log_prob(self, tokens: Tensor, *, temperature: float = 1.0, chunk_size: int = 1024) -> Tensor:
        """Per-token log-probabilities log G(y_t | y_<t) of given sequences.

        Differentiable when called with grad enabled: MLE pretraining
        minimises its negative mean and the policy gradient weights it by Q.
        The vocabulary projection goes through ``linear_log_prob`` (no [B, T, V]
        logits tensor, cache-sized chunks); sequences go through the LSTM
        ``chunk_size`` at a time.

        Args:
            tokens: [B, T] token ids.
            temperature: score under softmax(logits / temperature), the
                distribution ``sample(temperature=...)`` draws from (NLL-test
                of a temperature sweep).

        Returns:
            [B, T] log-probabilities (sum over T for the sequence's log-likelihood).
        """
        tokens = self.check_tokens(tokens)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        weight, bias = self.output.weight, self.output.bias
        if temperature != 1.0:  # logits / T = hidden @ (W / T).T + b / T
            weight, bias = weight / temperature, bias / temperature
        pieces = []
        for start in range(0, tokens.shape[0], chunk_size):
            chunk = tokens[start : start + chunk_size]
            hidden = self.hidden_states(chunk)  # (b, T, H)
            chosen = linear_log_prob(hidden.flatten(0, 1), weight, bias, chunk.flatten())
            pieces.append(chosen.view(chunk.shape))  # (b, T)
        return torch.cat(pieces) if pieces else tokens.new_zeros((0, self.seq_len), dtype=torch.float32)

    def mle_loss(self, tokens: Tensor) -> Tensor:
        """The MLE loss: mean negative log-likelihood per token of ``tokens`` [B, T], a 0-dim tensor.

        Equals ``-self.log_prob(tokens).mean()`` with the same gradient, but
        the vocabulary projection goes through ``linear_log_prob_sum``, which
        computes its gradients during the forward pass and keeps no [B·T, V]
        probabilities, which makes an MLE step faster (docs/results.md, 'MLE on the oracle').
        """
        tokens = self.check_tokens(tokens)
        return self._mean_nll(self.hidden_states(tokens), tokens)

    def _mean_nll(self, hidden: Tensor, tokens: Tensor) -> Tensor:
        """Mean NLL per token (0-dim) of ``tokens`` [B, T] predicted from ``hidden`` [B, T, H]."""
        targets = tokens.flatten()  # (B·T,)
        row_weights = hidden.new_full(targets.shape, -1.0 / max(targets.numel(), 1))
        return linear_log_prob_sum(hidden.flatten(0, 1), self.output.weight, self.output.bias, targets, row_weights)

    def scheduled_sampling_pass(
        self, tokens: Tensor, sample_probability: float, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Read ``tokens`` [B, T] step by step, feeding the model's own samples at random (Bengio et al., 2015).

        The input of step 1 is the start token; the input of step t > 1 is the real token y_(t−1) with
        probability 1 − ``sample_probability``, else a token drawn from the model's own distribution at step
        t − 1 (no gradient flows through the draw), and the state carries on from whatever was fed. The
        coins and the draws come from ``generator``.

        Returns:
            hidden [B, T, H] (differentiable; position t predicts y_t) and the inputs fed [B, T] (int64).
        """
        if not 0.0 <= sample_probability <= 1.0:
            raise ValueError(f"sample_probability must be in [0, 1], got {sample_probability}")
        tokens = self.check_tokens(tokens)
        batch, length = tokens.shape
        coins = torch.rand(batch, length, generator=generator, device=self.device) < sample_probability  # (B, T)
        lstm = self.lstm
        bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
        state = self.initial_state(batch)
        fed = self.start_tokens(batch)
        inputs, hiddens = [], []
        for t in range(length):
            if t > 0:
                fed = tokens[:, t - 1].clone()
                own = coins[:, t].nonzero().squeeze(1)  # the rows fed their own sample (drawn for those only)
                if len(own):
                    with torch.no_grad():
                        fed[own] = sample_next_tokens(state[0][own], self.output.weight.t(), self.output.bias,
                                                      generator=generator)
            inputs.append(fed)
            state = self._cell(torch.addmm(bias, self.embedding(fed), lstm.weight_ih_l0.t()), state)
            hiddens.append(state[0])
        return torch.stack(hiddens, 1), torch.stack(inputs, 1)

    def scheduled_sampling_loss(
        self, tokens: Tensor, sample_probability: float, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """The MLE loss of ``tokens`` [B, T] read by ``scheduled_sampling_pass``: mean NLL per token (0-dim).

        ``sample_probability == 0`` is ``mle_loss`` itself (teacher forcing, bit for bit, no draw).
        """
        if sample_probability == 0.0:
            return self.mle_loss(tokens)
        hidden, _ = self.scheduled_sampling_pass(tokens, sample_probability, generator=generator)  # (B, T, H)
        return self._mean_nll(hidden, self.check_tokens(tokens))

    @torch.no_grad()
    def nll(self, tokens: Tensor, *, temperature: float = 1.0, chunk_size: int = 1024) -> float:
        """Mean negative log-likelihood per token of ``tokens`` [B, T] (nats), at ``temperature``."""
        return float(-self.log_prob(tokens, temperature=temperature, chunk_size=chunk_size).mean())

    # ------------------------------------------------------------ step by step
    def input_table(self) -> Tensor:
        """[V, 4H]: embedding × input weights + both LSTM biases, per token.

        A generation step then needs only a gather from this table instead of
        an embedding lookup and an [B, E] × [E, 4H] product.
        """
        lstm = self.lstm
        return torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, self.embedding.weight, lstm.weight_ih_l0.t())

    def _cell(self, gates_in: Tensor, state: LSTMState) -> LSTMState:
        """One LSTM cell update from precomputed input gates [B, 4H]."""
        h, c = state
        gates = torch.addmm(gates_in, h, self.lstm.weight_hh_l0.t())  # (B, 4H), PyTorch order i, f, g, o
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def step(self, tokens: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """Consume one token per sequence and return the next-token logits.

        Args:
            tokens: [B] the previous token (the start token at the first step).
            state: (h, c) each [B, H].

        Returns:
            logits [B, V] for the next token and the new state.
        """
        lstm = self.lstm
        # B rows: cheaper than building the [V, 4H] input table, which pays off only over many steps
        gates_in = torch.addmm(lstm.bias_ih_l0 + lstm.bias_hh_l0, self.embedding(tokens), lstm.weight_ih_l0.t())
        h, c = self._cell(gates_in, state)
        return self.output(h), (h, c)

    @torch.no_grad()
    def prefix_states(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Recurrent state after every prefix y_1..y_t of each sequence.

        Args:
            tokens: [B, L] prefixes (L ≤ T).

        Returns:
            (h, c), each [B, L, H]: index t−1 holds the state after consuming
            y_t, i.e. the state from which token t+1 is sampled.
        """
        tokens = self.check_tokens(tokens)
        batch, length = tokens.shape
        state = self.initial_state(batch)
        table = self.input_table()
        state = self._cell(F.embedding(self.start_tokens(batch), table), state)
        hs, cs = [], []
        for t in range(length):
            state = self._cell(F.embedding(tokens[:, t], table), state)
            hs.append(state[0])
            cs.append(state[1])
        return torch.stack(hs, 1), torch.stack(cs, 1)

    @torch.no_grad()
    def continue_sequences(
        self,
        tokens: Tensor,
        state: LSTMState,
        *,
        active_rows: list[int] | None = None,
        uniforms: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        chunk_rows: int = SAMPLING_CHUNK_ROWS,
        group_size: int = 1,
    ) -> None:
        """Sample columns 1..L−1 of ``tokens`` in place, one batched step per column.

        This is the one sampling loop of the project: ``sample`` runs it from
        the start state, the Monte Carlo engine from the state of every prefix
        at once (rows join the batch at the column where their completion
        starts, so rollouts of different prefix lengths advance together).

        Args:
            tokens: [R, L] int64 buffer. A row that is sampled from column j on
                holds in column j−1 the last token it consumed.
            state: (h, c) each [R, H]; for a row joining at column j, the state
                from which column j is drawn (after consuming column j−1).
                Overwritten.
            active_rows: for each column j = 1..L−1, how many leading rows are
                sampled there (non-decreasing): rows already active at j−1 are
                advanced by their token at j−1, the new ones bring their state.
                ``None``: every row at every column.
            uniforms: optional [R, L] pre-drawn uniforms; column j of row r is
                drawn with ``uniforms[r, j]`` (instead of ``generator``).
            temperature, generator, chunk_rows: see ``sample_next_tokens``.
            group_size: rows join in groups of this many consecutive rows that hold the same state
                (the Monte Carlo engine's N completions of one prefix): their first token is drawn
                from one distribution per group, with each row's own uniform (the same tokens as
                drawing every row, for 1/group_size of the projection). Needs ``uniforms``.
        """
        table = self.input_table()
        weight_t, bias = self.output.weight.t(), self.output.bias
        h, c = state
        active_rows = checked_active_rows(active_rows, tokens.shape, group_size, uniforms is not None)
        previous = 0
        for column, active in enumerate(active_rows, start=1):
            if previous:
                gates_in = F.embedding(tokens[:previous, column - 1], table)
                h[:previous], c[:previous] = self._cell(gates_in, (h[:previous], c[:previous]))
            if group_size == 1:
                tokens[:active, column] = sample_next_tokens(
                    h[:active], weight_t, bias, temperature=temperature, generator=generator,
                    uniform=None if uniforms is None else uniforms[:active, column], chunk_rows=chunk_rows,
                )
            else:
                self._sample_grouped_column(tokens, h, uniforms, column, (previous, active), group_size, temperature,
                                            chunk_rows)
            previous = active

    def _sample_grouped_column(self, tokens: Tensor, h: Tensor, uniforms: Tensor, column: int,
                               rows: tuple[int, int], group_size: int, temperature: float, chunk_rows: int) -> None:
        """``continue_sequences``' column ``column`` when rows join in groups: of ``rows`` = (previous, active),
        rows [0, previous) draw from their own states h [R, H], the groups joining in [previous, active) one
        distribution each, with each row's own uniform of ``uniforms`` [R, L]."""
        previous, active = rows
        weight_t, bias = self.output.weight.t(), self.output.bias
        if (active - previous) % group_size:
            raise ValueError(f"rows join in groups of {group_size}, but {active - previous} join at column {column}")
        if previous:
            tokens[:previous, column] = sample_next_tokens(
                h[:previous], weight_t, bias, temperature=temperature, uniform=uniforms[:previous, column],
                chunk_rows=chunk_rows)
        if active > previous:  # one distribution per group, group_size draws from it
            tokens[previous:active, column] = sample_next_tokens(
                h[previous:active:group_size], weight_t, bias, temperature=temperature,
                uniform=uniforms[previous:active, column].view(-1, group_size), chunk_rows=chunk_rows,
            ).flatten()

    @torch.no_grad()
    def sample(
        self,
        num_sequences: int,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        batch_size: int = 16384,
    ) -> Tensor:
        """Sample ``num_sequences`` complete sequences.

        Args:
            num_sequences: how many sequences.
            temperature: softmax temperature (> 0).
            generator: torch RNG on the model's device for reproducible samples.
            batch_size: sequences generated together (bounds memory).

        Returns:
            [num_sequences, T] int64 token ids on the model's device.
        """
        if num_sequences < 0:
            raise ValueError(f"num_sequences must be >= 0, got {num_sequences}")
        out = torch.empty(num_sequences, self.seq_len + 1, dtype=torch.long, device=self.device)
        out[:, 0] = self.config.start_token
        for start in range(0, num_sequences, batch_size):
            rows = out[start : start + batch_size]
            state = self._cell(F.embedding(rows[:, 0], self.input_table()), self.initial_state(rows.shape[0]))
            self.continue_sequences(rows, state, temperature=temperature, generator=generator)
        return out[:, 1:].contiguous()
