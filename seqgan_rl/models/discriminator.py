"""SeqGAN's CNN discriminator (Yu et al. 2017), with fast scoring for Monte Carlo rewards.

The architecture follows the paper's original TensorFlow release: token embedding ->
one VALID convolution over time per filter size (bias + ReLU) -> max over time ->
concatenation -> one highway layer -> dropout -> linear layer to two classes
(fake = 0, real = 1), trained with cross-entropy plus an L2 penalty on the output layer.

`forward` is the differentiable path used for training (`train_discriminator`: fused Adam,
optionally bfloat16 autocast); it runs each convolution as a GEMM on the unfolded embedding
(`_pooled_features`) and equals the nn.Conv1d formulation. `score` is the hot path of
SeqGAN: the generator's reward for every token comes from scoring N Monte Carlo
completions of every prefix, i.e. ~19.5k sequences per generator batch in the paper
setting. Two observations make it much cheaper than `forward` on a CPU while reading the
very same parameters:

* Token tables. A window of a convolution with filter size k over the embedded sequence
  is sum_j W_k[:, :, j] @ emb[x_{p+j}]. The products W_k[:, :, j] @ emb[v] depend only on
  the token v, so they are computed once per call for the tokens that occur (one small
  GEMM) and every window becomes a k-row gather-and-sum (`F.embedding_bag`): ~64x fewer
  FLOPs than the convolution itself. Bias and ReLU are monotone, so the max over time is
  taken on the raw sums and bias + ReLU are applied once per filter afterwards.
* Prefix sharing (`score_prefix_rollouts`). A rollout of prefix length t agrees with the
  original sequence on its first t tokens, so every window that lies inside the prefix is
  a window of the original sequence. Their running maxima are computed once per original
  sequence and only the windows that reach into the completion are summed per rollout.

What remains is the highway GEMM (1,720 -> 3,440 in the paper setting, ~40% of the
FLOPs and most of the time in fp32). `precision="int8"` runs it as an int8 GEMM
(`torch_ops.int8_matmul`, per-row activation and per-output-channel weight scales) and
keeps the token tables in float16; "fp32" is exact up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.models import torch_ops
from seqgan_rl.models.dense_discriminator import DenseDiscriminator
from seqgan_rl.models.ratio_discriminator import RatioDiscriminator

__all__ = [
    "ARCHITECTURES",
    "PAPER_FILTER_SIZES",
    "PAPER_NUM_FILTERS",
    "PRECISIONS",
    "TRAIN_PRECISIONS",
    "Discriminator",
    "LearnedDiscriminator",
    "build_discriminator",
    "Precision",
    "TrainPrecision",
    "make_discriminator_optimizer",
    "train_discriminator",
]

PAPER_FILTER_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
PAPER_NUM_FILTERS: tuple[int, ...] = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)

ARCHITECTURES: tuple[str, ...] = ("cnn", "dense", "ratio")
"""Discriminators the actor trains: the paper's CNN (one score per complete sequence), the causal LSTM of
``seqgan_rl.models.dense_discriminator`` and the language model against the generator of
``seqgan_rl.models.ratio_discriminator`` (one score per prefix each)."""

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
TrainPrecision = Literal["fp32", "bf16"]
TRAIN_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")

# Rows of windows handed to one `embedding_bag` call: small enough that its output
# (rows x windows x filters floats) stays in the L2 cache before the max over time reads it.
_BAG_ROWS = 256
# Rows per highway GEMM: large enough for an efficient GEMM, small enough for cache.
_HEAD_ROWS = 1024
_INT8_MIN, _INT8_MAX = -128.0, 127.0
_TINY = torch.finfo(torch.float32).tiny


class Discriminator(nn.Module):
    """CNN + highway classifier of token sequences: real (1) vs generated (0).

    Args:
        vocab_size: number of token ids; valid ids are 0..vocab_size-1.
        seq_len: length T of every sequence the model sees.
        emb_dim: token embedding size E.
        filter_sizes: convolution widths k (each <= seq_len).
        num_filters: number of filters for each width (same length as ``filter_sizes``).
        dropout_keep: keep probability of the dropout before the output layer (training).
        l2_reg: weight of the L2 penalty on the output layer in :meth:`loss`.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        emb_dim: int = 64,
        filter_sizes: Sequence[int] = PAPER_FILTER_SIZES,
        num_filters: Sequence[int] = PAPER_NUM_FILTERS,
        dropout_keep: float = 0.75,
        l2_reg: float = 0.2,
    ) -> None:
        super().__init__()
        filter_sizes = tuple(int(k) for k in filter_sizes)
        num_filters = tuple(int(f) for f in num_filters)
        for name, value in (("vocab_size", vocab_size), ("seq_len", seq_len), ("emb_dim", emb_dim)):
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if not filter_sizes:
            raise ConfigError("filter_sizes must not be empty")
        if len(filter_sizes) != len(num_filters):
            raise ConfigError(
                f"filter_sizes and num_filters must have the same length, "
                f"got {len(filter_sizes)} and {len(num_filters)}"
            )
        if any(k <= 0 for k in filter_sizes) or any(f <= 0 for f in num_filters):
            raise ConfigError(
                f"filter sizes and filter counts must be positive, got {filter_sizes} and {num_filters}"
            )
        if max(filter_sizes) > seq_len:
            raise ConfigError(f"filter size {max(filter_sizes)} exceeds seq_len {seq_len} (VALID convolution)")
        if not 0.0 < dropout_keep <= 1.0:
            raise ConfigError(f"dropout_keep must be in (0, 1], got {dropout_keep}")
        if l2_reg < 0:
            raise ConfigError(f"l2_reg must be non-negative, got {l2_reg}")

        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.emb_dim = emb_dim
        self.filter_sizes = filter_sizes
        self.num_filters = num_filters
        self.l2_reg = l2_reg
        self.num_features = sum(num_filters)  # D: 1,720 in the paper setting
        self.score_precision: Precision = "fp32"
        """Precision of `score` / `score_prefix_rollouts` when the call does not name one
        (so an engine holding the module as its scorer can be switched to "int8")."""

        self.embedding = nn.Embedding(vocab_size, emb_dim)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, f, k) for k, f in zip(filter_sizes, num_filters))
        # Highway layer as one GEMM: output rows [:D] are W_H (transform), rows [D:] are W_T (gate).
        self.highway = nn.Linear(self.num_features, 2 * self.num_features)
        self.dropout = nn.Dropout(1.0 - dropout_keep)
        self.output = nn.Linear(self.num_features, 2)
        self._init_like_original()

    @torch.no_grad()
    def _init_like_original(self) -> None:
        """Initialise as the TF release: U(-1, 1) embeddings, N(0, 0.1) truncated filters
        and output weights with 0.1 biases, and a gate bias of -2 so the highway layer
        starts close to the identity (carry) path."""
        nn.init.uniform_(self.embedding.weight, -1.0, 1.0)
        for conv in self.convs:
            nn.init.trunc_normal_(conv.weight, std=0.1, a=-0.2, b=0.2)
            nn.init.constant_(conv.bias, 0.1)
        nn.init.xavier_uniform_(self.highway.weight)
        self.highway.bias.zero_()
        self.highway.bias[self.num_features :] = -2.0
        nn.init.trunc_normal_(self.output.weight, std=0.1, a=-0.2, b=0.2)
        nn.init.constant_(self.output.bias, 0.1)

    @property
    def device(self) -> torch.device:
        return self.embedding.weight.device

    # ------------------------------------------------------------------ training path

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits of (fake, real) for each sequence, differentiable; dropout in train mode.

        tokens: (M, T) integer ids, moved to the module's device. Returns (M, 2).
        """
        tokens = self._check_tokens(tokens, check_range=False)
        pooled = self._pooled_features(self.embedding(tokens))  # (M, D)
        return self.output(self.dropout(self._highway_mix(pooled, self.highway(pooled))))

    def _pooled_features(self, emb: Tensor) -> Tensor:
        """relu(max over time of each filter's VALID convolution + bias), differentiable.

        emb: (M, T, E) embedded tokens. Returns (M, D), filters in the order of ``self.convs``.
        Each convolution runs as one GEMM on the unfolded windows: ``emb.unfold(1, k, 1)`` is
        (M, W, E, k) with W = T - k + 1, i.e. window p, channel e, offset j, the layout of
        ``conv.weight[f, e, j]``, so the window sums are (M*W, E*k) @ (E*k, F) against a view of
        the parameter; for these small shapes this is faster than ``nn.Conv1d`` (oneDNN),
        forward and backward. Bias and ReLU are monotone, so they are applied after the max
        over time (D values instead of M * W * F); the value and the gradient (which reaches
        only the maximising window) are those of relu(conv + bias) followed by the max. Of
        exactly tied windows ``max`` credits one where ``amax`` would split the gradient; the
        sums differ only if tied windows hold different tokens.
        """
        raw = [
            F.linear(emb.unfold(1, conv.kernel_size[0], 1).flatten(2), conv.weight.flatten(1)).max(dim=1).values
            for conv in self.convs
        ]  # per filter size (M, F): max over the (M, W, F) window sums
        return torch.cat(raw, dim=1).add(self._conv_bias()).relu()

    def _conv_bias(self) -> Tensor:
        """The convolution biases concatenated in feature order, (D,)."""
        return torch.cat([conv.bias for conv in self.convs])

    def loss(self, tokens: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy plus l2_reg * (|W_out|^2 + |b_out|^2) / 2 (TF's l2_loss).

        tokens: (M, T) ids; labels: (M,) in {0 = fake, 1 = real}. Returns a scalar.
        """
        return self.objective(self(tokens), labels)

    def objective(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Training objective from logits (M, 2) and labels (M,): CE + output-layer L2."""
        labels = labels.to(device=logits.device, dtype=torch.long)
        if labels.shape != logits.shape[:1]:
            raise DataError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        l2 = self.output.weight.square().sum() + self.output.bias.square().sum()
        return F.cross_entropy(logits, labels) + 0.5 * self.l2_reg * l2

    @staticmethod
    def correct(logits: Tensor, labels: Tensor) -> Tensor:
        """How many of the sequences behind logits (M, 2) are given their label (M,)."""
        return (logits.argmax(dim=1) == labels.to(logits.device)).sum()

    def _highway_mix(self, x: Tensor, pre: Tensor) -> Tensor:
        """y = t * relu(W_H x + b_H) + (1 - t) * x with t = sigmoid(W_T x + b_T).

        x: (M, D) pooled features; pre: (M, 2D) = highway(x). Returns (M, D).
        """
        transform, gate = pre.chunk(2, dim=1)  # (M, D) each
        gate = torch.sigmoid(gate)
        return x + gate * (transform.relu() - x)

    # ------------------------------------------------------------------ scoring path

    @torch.no_grad()
    def score(self, tokens: Tensor, *, max_batch: int = 4096, precision: Precision | None = None) -> Tensor:
        """P(real) for each sequence, as the model in eval mode (no dropout).

        This is the reward of SeqGAN's Monte Carlo search and the hot path of training; it
        uses the token-table convolution described in the module docstring and reads the
        same parameters as `forward`. The module's training flag is left untouched. Rows are
        processed ``max_batch`` at a time so activations stay bounded (the token tables are
        bounded by the vocabulary); results do not depend on the chunking.

        tokens: (M, T) integer ids in [0, vocab_size). Returns (M,) float32 on the module's
        device. ``precision`` (default: ``self.score_precision``): "fp32" matches `forward`
        to float rounding (|dp| <= 1e-5);
        "int8" keeps the token tables in float16 and runs the highway GEMM in int8, faster
        on a CPU with VNNI (docs/results.md, 'Discriminator scoring'), max |dp| <= 1.5e-2 and
        mean |dp| <= 2e-3 (tested).
        """
        tokens = self._check_tokens(tokens, check_range=True)
        if max_batch <= 0:
            raise ConfigError(f"max_batch must be positive, got {max_batch}")
        precision = precision or self.score_precision
        highway = self._highway_weights(precision)
        tables, local = self._token_tables(tokens, precision)  # per k (U*k, F); (M, T)
        probs = torch.empty(tokens.shape[0], device=self.device)  # (M,)
        for start in range(0, tokens.shape[0], max_batch):
            chunk = local[start : start + max_batch]  # (m, T)
            raw = [self._window_max(table, chunk, k) for table, k in zip(tables, self.filter_sizes)]
            probs[start : start + max_batch] = self._probs(raw, highway)
        return probs

    @torch.no_grad()
    def score_prefix_rollouts(
        self,
        sequences: Tensor,
        rollouts: Tensor,
        *,
        max_batch: int = 4096,
        precision: Precision | None = None,
    ) -> Tensor:
        """P(real) of Monte Carlo completions, sharing the windows inside each prefix.

        sequences: (B, T) the sampled sequences. rollouts: (T-1, B, N, T) where
        ``rollouts[t-1, b, n]`` is completion n of the length-t prefix of sequence b, so
        ``rollouts[t-1, b, n, :t] == sequences[b, :t]`` (the caller guarantees this; it is
        not checked). Equals ``score(rollouts.reshape(-1, T)).view(T-1, B, N)`` up to float
        rounding, while summing only the windows that reach into the completions. Rows of
        one prefix length are processed ``max_batch`` at a time. Returns (T-1, B, N) float32.
        """
        sequences = self._check_tokens(sequences, check_range=True)
        batch, seq_len = sequences.shape
        expected = (seq_len - 1, batch, seq_len)
        if rollouts.dim() != 4 or (rollouts.shape[0], rollouts.shape[1], rollouts.shape[3]) != expected:
            raise DataError(
                f"rollouts must have shape ({seq_len - 1}, {batch}, N, {seq_len}) for sequences of shape "
                f"({batch}, {seq_len}), got {tuple(rollouts.shape)}"
            )
        if max_batch <= 0:
            raise ConfigError(f"max_batch must be positive, got {max_batch}")
        num_rollouts = rollouts.shape[2]
        flat = self._check_tokens(rollouts.reshape(-1, seq_len), check_range=True)  # ((T-1)*B*N, T)
        precision = precision or self.score_precision
        highway = self._highway_weights(precision)

        tables, local = self._token_tables(torch.cat([sequences, flat]), precision)
        seq_local = local[:batch]  # (B, T)
        roll_local = local[batch:].view(seq_len - 1, batch * num_rollouts, seq_len)  # (T-1, B*N, T)
        # Running max over window start of the original sequences' raw window sums: entry
        # [:, p] is the max over the windows that end at or before position p + k - 1.
        prefix_max = [
            self._window_max(table, seq_local, k, running=True)  # (B, T-k+1, F)
            for table, k in zip(tables, self.filter_sizes)
        ]
        probs = torch.empty(seq_len - 1, batch * num_rollouts, device=self.device)  # (T-1, B*N)
        for t in range(1, seq_len):
            for start in range(0, batch * num_rollouts, max_batch):
                rows = slice(start, start + max_batch)
                raw = []
                for table, k, seen in zip(tables, self.filter_sizes, prefix_max):
                    # Windows starting at p >= t-k+1 reach into the completion (positions >= t).
                    first = max(0, t - k + 1)
                    fresh = self._window_max(table, roll_local[t - 1, rows, first:], k)  # (m, F)
                    if first > 0:  # windows 0..t-k lie inside the prefix
                        inside = seen[:, t - k].repeat_interleave(num_rollouts, dim=0)[rows]  # (m, F)
                        fresh = torch.maximum(fresh, inside)
                    raw.append(fresh)
                probs[t - 1, rows] = self._probs(raw, highway)
        return probs.view(seq_len - 1, batch, num_rollouts)

    def _token_tables(self, tokens: Tensor, precision: Precision) -> tuple[list[Tensor], Tensor]:
        """Per-token convolution contributions for the distinct tokens of ``tokens``.

        tokens: (M, T). Returns, per filter size k with F filters, a table (U*k, F) whose row
        u*k + j is W_k[:, :, j] @ emb[u] (token u's contribution at offset j of a window),
        and the tokens renumbered 0..U-1 as (M, T). Tables are float32 for "fp32" and
        float16 otherwise, which halves the bytes the window gathers read.
        """
        vocab_ids, local = torch.unique(tokens, return_inverse=True)  # (U,), (M, T)
        emb = self.embedding.weight[vocab_ids]  # (U, E)
        dtype = torch.float32 if precision == "fp32" else torch.float16
        tables = []
        for conv in self.convs:
            weight = conv.weight.permute(1, 2, 0).reshape(self.emb_dim, -1)  # (E, k*F)
            tables.append((emb @ weight).view(-1, conv.out_channels).to(dtype))  # (U*k, F)
        return tables, local

    @staticmethod
    def _window_max(table: Tensor, local: Tensor, k: int, *, running: bool = False) -> Tensor:
        """Max over time of the raw (bias-free) convolution outputs of the width-k windows.

        table: (U*k, F) from `_token_tables`; local: (m, L) renumbered tokens, L >= k.
        Returns (m, F) float32, or with ``running`` the max over windows 0..p for every
        window p, (m, L-k+1, F). Windows are summed `_BAG_ROWS` rows at a time so the sums
        are still in cache when they are reduced.
        """
        rows, length = local.shape
        num_windows, num_filters = length - k + 1, table.shape[1]
        offsets = torch.arange(k, device=local.device)
        bag_starts = torch.arange(0, _BAG_ROWS * num_windows * k + 1, k, device=local.device)  # (r*W + 1,)
        out = torch.empty((rows, num_windows, num_filters) if running else (rows, num_filters), device=table.device)
        for start in range(0, rows, _BAG_ROWS):
            windows = (local[start : start + _BAG_ROWS] * k).unfold(1, k, 1)  # (r, W, k)
            bags = (windows + offsets).flatten()  # (r*W*k,) table rows, k per window
            sums = F.embedding_bag(
                bags, table, bag_starts[: windows.shape[0] * num_windows + 1], mode="sum", include_last_offset=True
            ).view(-1, num_windows, num_filters)  # (r, W, F)
            out[start : start + _BAG_ROWS] = sums.cummax(dim=1).values if running else sums.amax(dim=1)
        return out

    def _probs(self, raw_max: list[Tensor], highway: tuple[Tensor, ...]) -> Tensor:
        """Eval-mode head: bias + ReLU on the pooled raw sums, highway, softmax[:, 1].

        raw_max: per filter size the (m, F) max over time of the bias-free window sums.
        Returns (m,) P(real).
        """
        pooled = torch.cat(raw_max, dim=1).add_(self._conv_bias()).relu_()  # (m, D)
        probs = torch.empty(pooled.shape[0], device=pooled.device)  # (m,)
        for start in range(0, pooled.shape[0], _HEAD_ROWS):
            x = pooled[start : start + _HEAD_ROWS]  # (r, D)
            y = self._highway_mix(x, self._highway_pre(x, highway))  # (r, D)
            probs[start : start + _HEAD_ROWS] = self.output(y).softmax(dim=1)[:, 1]
        return probs

    def _highway_weights(self, precision: Precision) -> tuple[Tensor, ...]:
        """Highway weights in the form `_highway_pre` consumes for ``precision``.

        fp32: (W (2D, D), b (2D,)). int8: (W_q (D, 2D) int8 quantised symmetrically per
        output channel, its scales (2D,), the zero-point correction (2D,) and b (2D,)).
        """
        weight, bias = self.highway.weight, self.highway.bias
        if precision == "fp32":
            return weight, bias
        if precision == "int8":
            if weight.device.type != "cpu":
                raise ConfigError(f'precision="int8" is implemented for CPU only, the model is on {weight.device}')
            scale = weight.abs().amax(dim=1).clamp_min(_TINY) / _INT8_MAX  # (2D,)
            quantized = torch.round(weight / scale[:, None]).to(torch.int8)  # (2D, D)
            # Activations are stored as x_q - 128; adding 128 * sum_d W_q back restores x_q @ W_q.
            correction = -_INT8_MIN * quantized.sum(dim=1, dtype=torch.int32).float() * scale  # (2D,)
            return quantized.t().contiguous(), scale, correction, bias
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")

    @staticmethod
    def _highway_pre(x: Tensor, highway: tuple[Tensor, ...]) -> Tensor:
        """highway(x) = x @ W^T + b, in fp32 or as an int8 GEMM.

        The int8 GEMM quantises each row of x to 256 levels over [0, max(row)] (x is a ReLU
        output, so the full int8 range is spent on non-negative values).
        x: (r, D) pooled features. Returns (r, 2D).
        """
        if len(highway) == 2:
            return F.linear(x, *highway)
        quantized, weight_scale, correction, bias = highway
        row_scale = x.amax(dim=1, keepdim=True).clamp_min(_TINY) / (_INT8_MAX - _INT8_MIN)  # (r, 1)
        x_q = torch.round(x / row_scale).add_(_INT8_MIN).to(torch.int8)  # (r, D) in [-128, 127]
        products = torch_ops.int8_matmul(x_q, quantized)  # (r, 2D) int32 = x_q @ W_q
        acc = torch.addcmul(correction, products, weight_scale)  # (r, 2D) = x_q @ W_q * s_w
        return torch.addcmul(bias, acc, row_scale, out=acc)

    def _check_tokens(self, tokens: Tensor, *, check_range: bool) -> Tensor:
        """Validate a (M, seq_len) integer batch and move it to the module's device."""
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise DataError(f"tokens must have shape (M, {self.seq_len}), got {tuple(tokens.shape)}")
        if tokens.dtype.is_floating_point or tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise DataError(f"tokens must be an integer tensor, got {tokens.dtype}")
        tokens = tokens.to(device=self.device, dtype=torch.long)
        if check_range and tokens.numel() > 0:
            low, high = int(tokens.min()), int(tokens.max())
            if low < 0 or high >= self.vocab_size:
                raise DataError(f"token ids must be in [0, {self.vocab_size}), got values in [{low}, {high}]")
        return tokens


LearnedDiscriminator = Discriminator | DenseDiscriminator | RatioDiscriminator
"""What the discriminator actor trains and serves."""


def build_discriminator(architecture: str, vocab_size: int, seq_len: int, **sizes: Any) -> LearnedDiscriminator:
    """The discriminator of ``architecture`` (``ARCHITECTURES``) with ``sizes`` (its constructor's other
    arguments), as the actor, the rollout workers and the Learner build it."""
    if architecture == "cnn":
        return Discriminator(vocab_size, seq_len, **sizes)
    if architecture == "dense":
        return DenseDiscriminator(vocab_size, seq_len, **sizes)
    if architecture == "ratio":
        return RatioDiscriminator(vocab_size, seq_len, **sizes)
    raise ConfigError(f"unknown discriminator architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}")


def make_discriminator_optimizer(disc: LearnedDiscriminator, lr: float = 1e-4) -> torch.optim.Adam:
    """Adam with the original release's learning rate (1e-4), over the trained parameters (not the ratio
    discriminator's reference).

    The fused kernel (CPU and CUDA) updates each parameter in one pass over its tensors; the
    default per-op loop reads and writes the ~7M paper-size parameters and their moments
    several times per step, which made it a third of a CPU training step.
    """
    return torch.optim.Adam([p for p in disc.parameters() if p.requires_grad], lr=lr,
                            fused=disc.device.type in ("cpu", "cuda"))


def train_discriminator(
    disc: LearnedDiscriminator,
    optimizer: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    *,
    epochs: int,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    precision: TrainPrecision = "fp32",
) -> dict[str, float]:
    """One SeqGAN d-step: ``epochs`` shuffled passes over real (label 1) + fake (label 0).

    real: (n_real, T), fake: (n_fake, T). ``generator`` (CPU) drives the shuffling. ``disc`` is the CNN, the
    dense or the ratio discriminator: its ``objective`` is the loss, its ``correct`` counts the right answers.
    ``precision="bf16"`` runs the forward and backward under bfloat16 autocast (parameters,
    gradients, Adam and the loss stay float32): faster steps of the paper's discriminator on a CPU with
    AVX512_BF16 (docs/results.md, 'One d-round'; slower for one of a few hundred features, see
    ``config.FAST_MIN_FEATURES``),
    same learning curve as fp32 up to bf16 rounding (a d-round's final loss within 0.01).
    Returns {"loss", "accuracy"}: means over the last epoch's examples (loss including the
    L2 term, accuracy of the train-mode logits as they were before each update).
    """
    if epochs <= 0 or batch_size <= 0:
        raise ConfigError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    if precision not in TRAIN_PRECISIONS:
        raise ConfigError(f"precision must be one of {TRAIN_PRECISIONS}, got {precision!r}")
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise DataError(
            f"real and fake must be (n, T) with the same T, got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    tokens = torch.cat([real, fake]).to(disc.device)  # (n, T)
    labels = torch.cat(
        [torch.ones(real.shape[0], dtype=torch.long), torch.zeros(fake.shape[0], dtype=torch.long)]
    ).to(disc.device)  # (n,)
    if tokens.shape[0] == 0:
        raise DataError("real and fake are both empty")
    was_training = disc.training
    disc.train()
    try:
        for _ in range(epochs):
            order = torch.randperm(tokens.shape[0], generator=generator).to(disc.device)
            loss_sum = torch.zeros((), device=disc.device)
            correct = torch.zeros((), dtype=torch.long, device=disc.device)
            for start in range(0, tokens.shape[0], batch_size):
                idx = order[start : start + batch_size]
                batch, batch_labels = tokens[idx], labels[idx]  # (b, T), (b,)
                with torch.autocast(disc.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    logits = disc(batch).float()  # (b, 2), or (b, T) of a dense discriminator
                loss = disc.objective(logits, batch_labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * idx.shape[0]
                correct += disc.correct(logits, batch_labels)
    finally:
        disc.train(was_training)
    n = tokens.shape[0]
    return {"loss": loss_sum.item() / n, "accuracy": correct.item() / n}
