"""Reward models: what scores a finished sequence, for the token env, the Monte Carlo rollouts and the Learner.

SeqGAN's reward is its discriminator's probability that a sequence is real. The
same rollout machinery trains a generator on any other sequence-level score
(``TrainConfig.reward.reward_model``):

* ``discriminator``: the paper's CNN, trained against the generator (a Ray actor
  with its pretraining and d-steps; ``seqgan_rl.rllib.adversarial``);
* ``dense``: a causal LSTM discriminator trained the same way, which scores
  every prefix y_1..y_t in one forward pass (``seqgan_rl.models.dense_discriminator``):
  the Learner's reward step reads Q from it directly and no Monte Carlo search
  runs (``dense_values``);
* ``bleu``: BLEU-n of each sequence against the real training data (the paper's
  PG-BLEU baseline), n = ``bleu_n``, the arithmetic of :func:`seqgan_rl.evaluation.bleu.bleu`
  (NLTK's) with its counting vectorised over token ids (:class:`TokenBleu`);
* ``constant``: ``constant_reward`` for every sequence, so Q_t is that value for
  every token: the control. Its expected policy gradient is zero, so what a
  run under it gains is the sharpening of SeqGAN's unbaselined update, not
  information about the data; every comparison of reward models carries it;
* ``ideal`` (oracle data only): the optimal discriminator of Goodfellow et al.
  (2014, Prop. 1) for the *current* generator,
  D*(y) = p_oracle(y) / (p_oracle(y) + p_G(y)) = σ(log p_oracle(y) − log p_G(y)),
  from both models' log-probabilities of each complete sequence
  (:class:`IdealDiscriminator`): the upper bound on what any learned
  discriminator can tell the generator. It follows G: the Monte Carlo piece
  sends the Learner's generator to its scorers before every Q;
* ``module:function``: a user's scorer, any importable callable mapping int64
  token ids [M, T] (a NumPy array) to M rewards in [0, 1]. It is imported and
  run in the driver, the envs and the rollout workers: name only code you trust.

Before a score is averaged into Q it passes through ``reward_transform``
(:func:`transform_logits`): D, 2D − 1, log D, or MaliGAN's D / (1 − D). The
transforms are computed from the score's logit log D − log(1 − D): the ideal
discriminator gives it exactly (its D saturates to 0 or 1 in float32 for most
sequences, where log D and D / (1 − D) carry all the information); a
probability from any other scorer is clipped to [``PROBABILITY_FLOOR``,
1 − ``PROBABILITY_FLOOR``] first.

A reward model other than the discriminator is fixed: no discriminator actor,
no pretraining, no d-steps. It is described by a small picklable
:class:`RewardModelSpec` and built where it is used (each env, each rollout
worker, the Learner's in-process pool) on first use; its outputs are checked
there on every call (:func:`checked_rewards`), so a scorer returning the wrong
shape, NaN or a value outside [0, 1] stops training with one error naming it.

Text corpora (a ``vocab.json`` beside the real data): a sequence is scored as
its words, i.e. its ids before the first ``<eos>`` with ``<pad>`` dropped, as
``seqgan-rl evaluate`` reads generated text; the synthetic oracle's sequences
are scored whole.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan_rl.config import (
    BASELINES,
    DENSE_REWARDS,
    LEARNED_REWARD_MODELS,
    REWARD_MODELS,
    REWARD_TRANSFORMS,
    TrainConfig,
    check_reward_model_name,
)
from seqgan_rl.data.tables import read_token_table
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, DataError, ScorerError, SeqGANError
from seqgan_rl.evaluation.bleu import SMOOTHING_METHODS, _Lengths, _sentence_scores
from seqgan_rl.mc.engine import PrefixRolloutScorer, Scorer
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.oracle import Oracle

DISCRIMINATOR, DENSE, RATIO, BLEU, CONSTANT, IDEAL = REWARD_MODELS
ORACLE_FILE = "oracle.npz"
"""The oracle's parameters beside a synthetic run's real data (``reward_model=ideal`` reads them)."""
PROBABILITY_FLOOR = 1e-7
"""A probability from a scorer without logits is clipped to [floor, 1 − floor] before log D or D / (1 − D):
float32 cannot tell 1 − 1e-8 from 1."""
MALIGAN_LOGIT_BOUND = 80.0
"""D / (1 − D) = exp(logit) with the logit clipped to ±this: exp(80) still fits float32."""

RewardFunction = Callable[[np.ndarray], Any]
"""int64 token ids [M, T] → M rewards in [0, 1] (array-like)."""


def import_reward_function(name: str) -> RewardFunction:
    """The callable named ``module:function`` (``package.module:attr.attr`` reaches nested attributes).

    Raises:
        ConfigError: naming the option, when the module cannot be imported, lacks the attribute or the
            attribute is not callable.
    """
    check_reward_model_name(name)
    module_name, _, attribute = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name.strip())
    except Exception as error:  # ImportError, or whatever the module raises while it is imported
        raise ConfigError(f"reward_model {name!r}: cannot import module {module_name.strip()!r} "
                          f"({type(error).__name__}: {error}); it must be importable where the run's env, rollout "
                          "workers and Learner run (on PYTHONPATH or installed)") from None
    for part in attribute.strip().split("."):
        if not hasattr(target, part):
            raise ConfigError(f"reward_model {name!r}: {getattr(target, '__name__', target)!r} has no attribute "
                              f"{part!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"reward_model {name!r}: {attribute.strip()} is a {type(target).__name__}, not a callable")
    return target


def checked_rewards(values: Any, expected: int, source: str) -> np.ndarray:
    """A scorer's output as float64 [expected], or a ``ScorerError`` naming ``source`` and what is wrong."""
    try:
        rewards = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ScorerError(f"{source} returned {type(values).__name__}, not numbers ({error}); expected {expected} "
                          "rewards in [0, 1]") from None
    if rewards.shape != (expected,):
        raise ScorerError(f"{source} returned shape {rewards.shape} for {expected} sequences; expected "
                          f"({expected},): one reward per sequence")
    bad = ~np.isfinite(rewards)
    if bad.any():
        raise ScorerError(f"{source} returned {int(bad.sum())} non-finite reward(s) (NaN or inf) for {expected} "
                          f"sequences, e.g. at row {int(np.flatnonzero(bad)[0])}; not training on them")
    outside = (rewards < 0.0) | (rewards > 1.0)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise ScorerError(f"{source} returned {float(rewards[row])!r} at row {row}, outside [0, 1] (rewards are "
                          "probabilities or scores in [0, 1])")
    return rewards


class TokenBleu:
    """Sentence BLEU-n of token-id sequences against a fixed reference set, counted with NumPy.

    Equal to :func:`seqgan_rl.evaluation.bleu.bleu`'s per-sentence scores (NLTK's ``sentence_bleu`` with weights
    (1/n,)·n against all references) on the same token sequences: the clipped n-gram matches are counted
    vectorised over the batch (each n-gram an integer code, the reference maxima a sorted table), and the
    per-sentence arithmetic is ``seqgan_rl.evaluation.bleu``'s, evaluated once per distinct (matches, lengths).
    Scoring the paper's Monte Carlo batch (19,520 completions against 10,000 references) is
    ``benchmarks/bleu.py --reward``.

    Args:
        references: int [R, T] reference ids.
        n: the BLEU order (uniform weights over orders 1..n).
        smoothing: ``None`` or one of ``seqgan_rl.evaluation.bleu.SMOOTHING_METHODS``.
        vocab_size: ids are in [0, vocab_size).
        stop_tokens: ``(eos, pad)`` for text: a row is scored as its ids before the first ``eos`` with
            ``pad`` dropped; ``None``: rows are scored whole (the oracle).
    """

    def __init__(self, references: np.ndarray, n: int, *, vocab_size: int, smoothing: str | None = None,
                 stop_tokens: tuple[int, int] | None = None) -> None:
        if n < 1:
            raise ConfigError(f"bleu_n must be >= 1, got {n}")
        if float(vocab_size) ** n >= 2.0**62:
            raise ConfigError(f"bleu_n={n} is too high for a vocabulary of {vocab_size} ids (an n-gram's code must "
                              "fit 62 bits); use a lower order")
        if smoothing is not None and smoothing not in SMOOTHING_METHODS:
            raise ConfigError(f"unknown BLEU smoothing {smoothing!r}; use none or one of "
                              f"{', '.join(SMOOTHING_METHODS)}")
        self.n, self.vocab_size, self.smoothing, self.stop_tokens = n, vocab_size, smoothing, stop_tokens
        tokens, lengths = self._words(np.asarray(references, dtype=np.int64))
        if not len(tokens) or not lengths.any():
            raise ConfigError("the BLEU reward needs at least one non-empty reference sequence")
        self._lengths = _Lengths(lengths.tolist())
        self._tables = []  # per order: (sorted n-gram codes, their maximum count in one reference)
        for order in range(1, n + 1):
            rows, codes = self._ngrams(tokens, lengths, order)
            table_codes, code_ids = np.unique(codes, return_inverse=True)
            # one key per (n-gram, reference): its count there, then the maximum over references
            keys, counts = np.unique(code_ids.reshape(-1) * len(tokens) + rows, return_counts=True)
            table_max = np.zeros(len(table_codes), dtype=np.int64)
            np.maximum.at(table_max, keys // len(tokens), counts)
            self._tables.append((table_codes, table_max))

    def _words(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows compacted to their scored ids (left-aligned) [M, T] and their lengths [M]."""
        if self.stop_tokens is None:
            return tokens, np.full(len(tokens), tokens.shape[1], dtype=np.int64)
        eos, pad = self.stop_tokens
        keep = (np.cumsum(tokens == eos, axis=1) == 0) & (tokens != pad)
        order = np.argsort(~keep, axis=1, kind="stable")  # kept ids first, in their order
        return np.take_along_axis(tokens, order, axis=1), keep.sum(axis=1)

    def _ngrams(self, tokens: np.ndarray, lengths: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
        """(row index, n-gram code) of every n-gram of order ``order`` inside each row's length."""
        width = tokens.shape[1] - order + 1
        if width <= 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        codes = np.zeros((len(tokens), width), dtype=np.int64)
        for offset in range(order):
            codes = codes * self.vocab_size + tokens[:, offset:offset + width]
        valid = np.arange(width)[None, :] + order <= lengths[:, None]
        rows = np.broadcast_to(np.arange(len(tokens))[:, None], codes.shape)
        return rows[valid], codes[valid]

    def matches(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clipped n-gram matches [M, n] (orders 1..n) and scored lengths [M] of int [M, T] ids."""
        words, lengths = self._words(np.asarray(tokens, dtype=np.int64))
        matches = np.zeros((len(words), self.n), dtype=np.int64)
        for order, (table_codes, table_max) in enumerate(self._tables, start=1):
            rows, codes = self._ngrams(words, lengths, order)
            if not len(codes):
                continue
            distinct, code_ids = np.unique(codes, return_inverse=True)  # sorted queries: a fast search
            at = np.minimum(np.searchsorted(table_codes, distinct), len(table_codes) - 1)[code_ids.reshape(-1)]
            found = table_codes[at] == codes  # an n-gram no reference holds matches nothing
            rows, at = rows[found], at[found]
            keys, counts = np.unique(rows * len(table_codes) + at, return_counts=True)
            clipped = np.minimum(counts, table_max[keys % len(table_codes)])
            matches[:, order - 1] = np.bincount(keys // len(table_codes), weights=clipped,
                                                minlength=len(words)).astype(np.int64)
        return matches, lengths

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        """BLEU-n of every row of int [M, T] ids: float64 [M]."""
        matches, lengths = self.matches(tokens)
        # each distinct (matches, length) is scored once: one integer key per row
        radix = int(max(lengths.max(initial=0), matches.max(initial=0))) + 1
        columns = np.column_stack([matches, lengths])
        keys = columns @ (radix ** np.arange(columns.shape[1], dtype=np.int64))
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        scores = np.empty(len(first))
        closest: dict[int, int] = {}
        for index, row in enumerate(first.tolist()):
            *row_matches, hyp_len = columns[row].tolist()
            if hyp_len not in closest:
                closest[hyp_len] = self._lengths.closest(hyp_len)
            scores[index] = _sentence_scores(row_matches, hyp_len, closest[hyp_len], range(self.n, self.n + 1),
                                             self.smoothing)[0]
        return scores[inverse.reshape(-1)]


def transform_logits(logits: Tensor, transform: str) -> Tensor:
    """f(D) of scores given as logits x = log D − log(1 − D) [M] (``reward_transform``), float32 [M].

    ``d``: D = σ(x); ``2d-1``: 2σ(x) − 1 = tanh(x / 2); ``log_d``: log σ(x); ``maligan``: D / (1 − D) = exp(x)
    (MaliGAN's importance weight, normalised over the batch by the Monte Carlo piece).
    """
    x = logits.double()
    if transform == "d":
        out = torch.sigmoid(x)
    elif transform == "2d-1":
        out = torch.tanh(x / 2)
    elif transform == "log_d":
        out = F.logsigmoid(x)
    elif transform == "maligan":
        out = torch.exp(x.clamp(-MALIGAN_LOGIT_BOUND, MALIGAN_LOGIT_BOUND))
    else:
        raise ConfigError(f"unknown reward_transform {transform!r}; use one of {', '.join(REWARD_TRANSFORMS)}")
    return out.float()


def probability_logits(probabilities: Tensor) -> Tensor:
    """log D − log(1 − D) [M] of probabilities [M], clipped to [``PROBABILITY_FLOOR``, 1 − floor] (float64)."""
    p = probabilities.double().clamp(PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return torch.log(p) - torch.log1p(-p)


class _TransformedPrefixScorer:
    """A ``PrefixRolloutScorer`` whose scores pass through a transform (its shared-prefix path kept)."""

    def __init__(self, scorer: PrefixRolloutScorer, transform: str) -> None:
        self.scorer, self.transform = scorer, transform

    def score(self, tokens: Tensor) -> Tensor:
        return transform_logits(probability_logits(self.scorer.score(tokens)), self.transform)

    def score_prefix_rollouts(self, sequences: Tensor, rollouts: Tensor) -> Tensor:
        scores = self.scorer.score_prefix_rollouts(sequences, rollouts)
        return transform_logits(probability_logits(scores), self.transform)


def transformed_scorer(scorer: Scorer | PrefixRolloutScorer, transform: str) -> Scorer | PrefixRolloutScorer:
    """``scorer`` with ``reward_transform`` applied to every score (unchanged for ``d``).

    A scorer with a ``logit`` method (``IdealDiscriminator``) is transformed from its exact logits; any other
    from its clipped probabilities (``probability_logits``).
    """
    if transform == "d":
        return scorer
    if transform not in REWARD_TRANSFORMS:
        raise ConfigError(f"unknown reward_transform {transform!r}; use one of {', '.join(REWARD_TRANSFORMS)}")
    logit = getattr(scorer, "logit", None)
    if callable(logit):
        return lambda tokens: transform_logits(logit(tokens), transform)
    if isinstance(scorer, PrefixRolloutScorer):
        return _TransformedPrefixScorer(scorer, transform)
    return lambda tokens: transform_logits(probability_logits(scorer(tokens)), transform)


def position_means(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over the batch of each position's valid values: [B, T] values and mask → [T] (0 where none)."""
    counts = valid.sum(axis=0)
    return np.where(valid, values, 0.0).sum(axis=0) / np.maximum(counts, 1)


def position_spread(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Standard deviation over the batch of each position's valid values: [B, T] → [T] (0 where none)."""
    means = position_means(values, valid)
    return np.sqrt(position_means(np.where(valid, values - means, 0.0) ** 2, valid))


def maligan_normalised(weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """MaliGAN's normalised importance weights: [B, T] values D/(1 − D), each position divided by its mean
    over the sequences that reach it (mask [B, T]), so that they average 1 there."""
    return weights / np.maximum(position_means(weights, valid), np.finfo(np.float64).tiny)


def baselined(q: np.ndarray, valid: np.ndarray, baseline: str, average: np.ndarray | None = None,
              decay: float = 0.9) -> tuple[np.ndarray, np.ndarray | None]:
    """Q_t − b_t [B, T] for ``baseline`` (``TrainConfig.reward.baseline``), and the moving average after this batch.

    Args:
        q: Monte Carlo values [B, T] of a batch; ``valid`` [B, T]: the steps each sequence has.
        baseline: ``none`` (Q itself), ``batch_mean`` (b_t: the batch's mean Q at t), ``ema`` (b_t: the
            moving average ``average`` [T] of earlier batches' means, ``None`` before the first batch, which
            then uses its own mean; after the batch b_t ← decay·b_t + (1 − decay)·mean_t, a position no
            sequence reaches keeping its b_t) or ``prefix`` (b_t = Q_{t−1}, the search's value of y_<t, whose
            completions draw their own token t: it does not depend on y_t, so the gradient stays unbiased, and
            it removes the earlier tokens' share of Q_t's variance; b_1 is the batch's mean Q_1).
        average, decay: ``ema``'s state and its weight on the old average.
    """
    if baseline == "none":
        return q, average
    means = position_means(q, valid)  # (T,)
    if baseline == "batch_mean":
        return q - means, average
    if baseline == "prefix":
        return q - np.concatenate([np.full((len(q), 1), means[0]), q[:, :-1]], axis=1), average
    if baseline != "ema":
        raise ConfigError(f"unknown baseline {baseline!r}; use one of {', '.join(BASELINES)}")
    reached = valid.any(axis=0)
    if average is None:
        average = np.where(reached, means, 0.0)
    return q - average, np.where(reached, decay * average + (1.0 - decay) * means, average)


def dense_values(logits: Tensor, valid: np.ndarray, transform: str, gamma: float,
                 kind: str = "prefix") -> tuple[np.ndarray, np.ndarray]:
    """The dense discriminator's values of a batch: Q [B, T] and the per-token rewards [B, T] (float64).

    Args:
        logits: log D − log(1 − D) of every prefix y_1..y_t [B, T] (``DenseDiscriminator.prefix_logits``).
        valid: [B, T] the steps each sequence has; the rewards beyond are 0.
        transform: ``reward_transform``: the score f(D(y_≤t)) of each prefix (``transform_logits``);
            ``maligan`` then divides each position's weights by their mean over the sequences that reach it.
        gamma: ``dense_gamma``: Q_t = Σ_{s≥t} γ^(s−t)·r_s (γ = 0: Q_t = r_t).
        kind: ``dense_rewards``: ``prefix``: r_t = f(D(y_≤t)), the prefix's own score (γ = 0: the dense
            counterpart of SeqGAN's Monte Carlo Q_t; ScratchGAN's cumulative reward for γ > 0);
            ``increment``: r_t = f(D(y_≤t)) − f(D(y_<t)), how much token t moved the score, the empty prefix's
            score taken as the batch's mean f(D(y_1)). With γ = 1 they add up to Q_t = f(D(y)) − f(D(y_<t)):
            the whole sequence's score, with the score of the prefix before the token (which does not depend
            on y_t) as its baseline.
    """
    if kind not in DENSE_REWARDS:
        raise ConfigError(f"unknown dense_rewards {kind!r}; use one of {', '.join(DENSE_REWARDS)}")
    rewards = transform_logits(logits.reshape(-1), transform).double().reshape(logits.shape).numpy()
    rewards = np.where(valid, rewards, 0.0)
    if transform == "maligan":
        rewards = np.where(valid, maligan_normalised(rewards, valid), 0.0)
    if kind == "increment":
        before = np.concatenate([np.full((len(rewards), 1), position_means(rewards, valid)[0]), rewards[:, :-1]],
                                axis=1)
        rewards = np.where(valid, rewards - before, 0.0)
    return return_to_go(rewards, gamma), rewards


def return_to_go(rewards: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Σ_{s≥t} γ^(s−t)·r_s along the last axis of [..., L] rewards (float64)."""
    if gamma == 1.0:
        return np.ascontiguousarray(np.flip(np.cumsum(np.flip(rewards, -1), -1), -1))
    returns = np.array(rewards, dtype=np.float64)
    for t in range(returns.shape[-1] - 2, -1, -1):
        returns[..., t] += gamma * returns[..., t + 1]
    return returns


class IdealDiscriminator(nn.Module):
    """The optimal discriminator against a generator: D*(y) = σ(log p_oracle(y) − log p_G(y)).

    Holds the oracle (fixed) and a copy of the generator, whose weights the Monte Carlo piece replaces with
    the Learner's before every Q (``load_generator_weights``); the oracle is not part of the weights sent.
    Both log-likelihoods come from ``Generator.log_prob``: batched over sequences, the vocabulary projection
    in chunks (no [M, T, V] tensor).

    With ``noise`` σ > 0 the logit carries a fixed error e(y) = Σ_t E[t, y_t], E [T, V] ~ N(0, σ²/T) drawn
    once from ``noise_seed`` (so Var e(y) = σ²): the same for every evaluation of a sequence, like a learned
    discriminator's mistakes, and additive over tokens, so the generator can learn to climb it. It measures
    how much information a discriminator must carry before its reward beats the sharpening control.
    """

    def __init__(self, oracle: Oracle, generator_config: GeneratorConfig, noise: float = 0.0,
                 noise_seed: int = 0) -> None:
        super().__init__()
        if (oracle.vocab_size, oracle.seq_len) != (generator_config.vocab_size, generator_config.seq_len):
            raise DataError(f"reward_model 'ideal': the oracle's vocabulary/length {oracle.vocab_size}/"
                            f"{oracle.seq_len} differ from the generator's {generator_config.vocab_size}/"
                            f"{generator_config.seq_len}")
        self.oracle = oracle
        with torch.random.fork_rng(devices=[]):  # weights come from the Learner; draw nothing here
            self.generator = Generator(generator_config, init_std=None).eval()
        shape = (generator_config.seq_len, generator_config.vocab_size)
        error = (torch.randn(shape, generator=torch.Generator().manual_seed(noise_seed)) *
                 (noise / math.sqrt(shape[0]))) if noise > 0 else None
        self.register_buffer("error", error, persistent=False)  # [T, V] or None: not part of the weights sent

    @classmethod
    def from_file(cls, oracle_file: str | Path, generator_config: GeneratorConfig, noise: float = 0.0,
                  noise_seed: int = 0) -> IdealDiscriminator:
        """The ideal discriminator of the oracle saved at ``oracle_file`` (a run's ``data/oracle.npz``)."""
        if not Path(oracle_file).is_file():
            raise DataError(f"reward_model 'ideal' needs the oracle beside the real data: {oracle_file} not found "
                            "(it exists for synthetic oracle data only; a text corpus has no true density)")
        return cls(Oracle.from_npz(oracle_file), generator_config, noise, noise_seed)

    def load_generator_weights(self, state: dict[str, Any]) -> None:
        """The generator's parameters (``Generator.state_dict`` names; tensors or NumPy arrays)."""
        self.generator.load_state_dict({name: torch.as_tensor(np.array(value)) for name, value in state.items()})

    @torch.no_grad()
    def logit(self, tokens: Tensor) -> Tensor:
        """log p_oracle(y) − log p_G(y) [M] (float32) of complete sequences [M, T], plus the fixed error e(y)
        when ``noise`` > 0."""
        tokens = tokens.to(self.generator.device)
        logit = self.oracle.log_prob(tokens).sum(dim=1) - self.generator.log_prob(tokens).sum(dim=1)
        if self.error is None:
            return logit
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return logit + self.error[positions, tokens].sum(dim=1)

    @torch.no_grad()
    def score(self, tokens: Tensor) -> Tensor:
        """D*(y) [M] (float32) of complete sequences [M, T]."""
        return torch.sigmoid(self.logit(tokens))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.score(tokens)


@dataclass(frozen=True)
class RewardModelSpec:
    """A fixed reward model as options (picklable, small): built where it is used, on first use.

    Attributes:
        name: ``bleu``, ``constant``, ``ideal`` or ``module:function`` (the learned discriminators are not
            fixed reward models).
        real_data: the run's real training sequences (Parquet token table): BLEU's references; ``ideal``'s
            oracle is the ``oracle.npz`` beside it.
        vocab_size, seq_len: the generator's.
        bleu_n, bleu_smoothing: BLEU's order and smoothing (``"none"`` or an NLTK method name).
        constant_reward: ``constant``'s score.
        ideal_noise, noise_seed: ``ideal``'s fixed error (``IdealDiscriminator``) and the seed it is drawn from.
        ideal_density: the ``.npz`` whose density stands for p_oracle in ``ideal`` (empty: the oracle beside the
            real data).
    """

    name: str
    real_data: str
    vocab_size: int
    seq_len: int
    bleu_n: int = 2
    bleu_smoothing: str = "none"
    constant_reward: float = 0.45
    ideal_noise: float = 0.0
    noise_seed: int = 0
    ideal_density: str = ""

    @classmethod
    def of_run(cls, options: TrainConfig, real_data: str, vocab_size: int, seq_len: int) -> RewardModelSpec | None:
        """The fixed reward model of a run's options (``None``: a learned discriminator, CNN or dense)."""
        if options.reward.reward_model in LEARNED_REWARD_MODELS:
            return None
        return cls(options.reward.reward_model, str(real_data), vocab_size, seq_len, bleu_n=options.reward.bleu_n,
                   bleu_smoothing=options.reward.bleu_smoothing, constant_reward=options.reward.constant_reward,
                   ideal_noise=options.reward.ideal_noise, noise_seed=options.seed,
                   ideal_density=options.reward.ideal_density)

    @property
    def oracle_file(self) -> Path:
        """Where ``ideal`` reads the density of D*: ``ideal_density``, else ``oracle.npz`` beside the real data."""
        return Path(self.ideal_density) if self.ideal_density else Path(self.real_data).parent / ORACLE_FILE

    def ideal_discriminator(self, generator_config: GeneratorConfig) -> IdealDiscriminator:
        """``ideal``'s scorer (its generator's weights still to be loaded)."""
        if self.ideal_density and not self.oracle_file.is_file():
            raise DataError(f"ideal_density: {self.ideal_density} not found")
        return IdealDiscriminator.from_file(self.oracle_file, generator_config, self.ideal_noise, self.noise_seed)

    def build(self) -> RewardFunction:
        """The scoring function, unchecked (``RewardModel`` checks its outputs).

        ``ideal`` has none here: it scores with the current generator, which only the Monte Carlo piece
        has; the token env gets 0 as a placeholder, which the piece's Q replaces (``reward=terminal`` is
        refused with ``ideal``).
        """
        if self.name in (CONSTANT, IDEAL):
            value = self.constant_reward if self.name == CONSTANT else 0.0
            return lambda tokens: np.full(len(tokens), value)
        if self.name == BLEU:
            table = read_token_table(self.real_data, vocab_size=self.vocab_size, seq_len=self.seq_len)
            vocab_file = Path(self.real_data).parent / "vocab.json"
            stop_tokens = None
            if vocab_file.is_file():
                vocab = Vocabulary.load(vocab_file)
                stop_tokens = (vocab.eos_id, vocab.pad_id)
            return TokenBleu(table.tokens, self.bleu_n, vocab_size=self.vocab_size, stop_tokens=stop_tokens,
                             smoothing=None if self.bleu_smoothing == "none" else self.bleu_smoothing)
        return import_reward_function(self.name)


class RewardModel:
    """A ``RewardModelSpec`` built on first call, its rewards checked on every call.

    Callable on NumPy ids (the token env's ``scorer``: [1, T] → [1]) and, through ``score``, on torch
    ids (the Monte Carlo engine's scorer: [M, T] → float32 [M] on the input's device).
    """

    def __init__(self, spec: RewardModelSpec) -> None:
        self.spec = spec
        self._function: RewardFunction | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec}  # travels as its options; rebuilt where it is used

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"])

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        if self._function is None:
            self._function = self.spec.build()
        return checked_rewards(self._function(tokens), len(tokens), f"reward_model {self.spec.name!r}")

    def score(self, tokens: Tensor) -> Tensor:
        """float32 rewards [M] of int token ids [M, T], on ``tokens``' device."""
        rewards = self(tokens.detach().cpu().numpy())
        return torch.from_numpy(rewards.astype(np.float32)).to(tokens.device)


def probe_reward_model(spec: RewardModelSpec, sample: np.ndarray) -> None:
    """Build the reward model and score ``sample`` [M, T] once, before a run starts any work.

    An import error, a wrong shape, NaN or a value outside [0, 1] is then one clear error at the start, not
    a failure inside an env or a rollout worker minutes later. An exception the scorer itself raises (a
    ``TypeError`` of a function that does not take token ids) becomes a ``ConfigError`` naming the option:
    the user's code, not seqgan-rl, failed, and its traceback would bury that.
    """
    try:
        RewardModel(spec)(sample)
    except SeqGANError:
        raise
    except Exception as error:
        detail = next(iter(str(error).strip().splitlines()), "")
        raise ConfigError(f"reward_model {spec.name!r} failed on a probe of {len(sample)} real sequences (int64 "
                          f"token ids of shape {tuple(sample.shape)}): {type(error).__name__}"
                          f"{f': {detail}' if detail else ''}; a scorer must map int64 ids [M, T] to M rewards in "
                          "[0, 1]") from None
