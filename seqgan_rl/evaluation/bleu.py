"""BLEU and Self-BLEU of generated text: the numbers of NLTK, without its cost.

The SeqGAN paper and Texygen score text generators with sentence-level BLEU-n
(uniform weights ``1/n``) where *every* hypothesis is scored against the
*whole* reference corpus, averaged over hypotheses; Self-BLEU scores every
generated sentence against all the *other* generated sentences (lower means
more diverse samples). The usual code calls NLTK's ``sentence_bleu`` once per
hypothesis with the full reference list, which recounts the n-grams of every
reference for every hypothesis: O(hypotheses x references), minutes for
10,000 x 10,000.

Everything NLTK needs from the references depends on the reference set only:

* the clipping count of an n-gram is its maximum count over the references,
  so one dict of maximum counts per order replaces the scan;
* the closest reference length depends only on the set of reference lengths
  (ties go to the shorter one), so a sorted list and a bisection replace it.

For Self-BLEU the reference set of sentence ``i`` is the corpus minus that one
sentence. Its clipping count of an n-gram is the corpus maximum unless
sentence ``i`` is the *only* sentence reaching that maximum, in which case it
is the second largest count; so the statistics keep (maximum, how many
sentences reach it, second largest) per n-gram, and the length index counts
how often each length occurs. A hypothesis then costs O(its length).

The arithmetic after counting is NLTK 3.x's, step for step (precision as
``numerator / denominator`` with the denominator at least 1, ``math.log`` of
it, ``math.exp(math.fsum(...))``, the brevity penalty ``exp(1 - r / c)``), so
sentence scores are bit-identical to ``sentence_bleu(references, hypothesis,
weights=(1/n,) * n, smoothing_function=...)``. That includes NLTK's unsmoothed
handling of zero counts: a hypothesis without any matching unigram scores 0,
but a zero count of a *higher* order does not give 0; NLTK substitutes
``sys.float_info.min`` for that precision, so the score is tiny but positive
(about 1e-154 for BLEU-2). NLTK also warns about it for every such
hypothesis; this module does not. Averages over hypotheses use ``math.fsum``.

Smoothing (``smoothing=``) takes the names of NLTK's ``SmoothingFunction``
methods with their default parameters: ``"method1"`` (an order whose clipped
match count is 0 gets the numerator epsilon = 0.1 instead, over the same
denominator; Texygen's choice), ``"method2"`` (add 1 to numerator and
denominator from bigrams on), ``"method3"`` (NIST geometric) and ``"method4"``
(geometric scaled by the hypothesis length, k = 5). ``None`` is no smoothing
(NLTK's ``method0``). Methods 5 to 7 mix precisions across orders in ways tied
to NLTK's fixed 4-/5-gram layout and are not offered.

Tokens are compared with ``==`` and hashed, so any hashable tokens work; text
must already be tokenised (e.g. :func:`seqgan_rl.data.text.tokenize_line`).
"""

from __future__ import annotations

import math
import random
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence

from seqgan_rl.errors import ConfigError, DataError

__all__ = ["SELF_BLEU_SUBSETS", "SMOOTHING_METHODS", "BleuReferences", "SelfBleuCorpus", "bleu", "self_bleu"]

SMOOTHING_METHODS: tuple[str, ...] = ("method1", "method2", "method3", "method4")
"""Accepted values of ``smoothing`` besides ``None`` (names of NLTK's ``SmoothingFunction`` methods)."""

SELF_BLEU_SUBSETS: tuple[str, ...] = ("sample", "truncate")
"""How :func:`self_bleu` picks ``sample_size`` sentences: ``"sample"`` scores that many sentences drawn at
random, each against *all* the others (an estimate of the full-corpus value); ``"truncate"`` keeps only the
first ``sample_size`` sentences, each scored against the rest of those (Texygen's ``SelfBleu``)."""

_EPSILON = 0.1  # NLTK SmoothingFunction() default, method1
_K = 5  # NLTK SmoothingFunction() default, method4

Sentence = tuple[str, ...]
NGram = tuple[str, ...]


def _ngrams(sentence: Sentence, n: int) -> Iterator[NGram]:
    """The n-grams of ``sentence`` in order, as tuples (also for ``n == 1``)."""
    return zip(*(sentence[i:] for i in range(n)))


def _check_orders(min_n: int, max_n: int) -> None:
    if min_n < 1:
        raise ConfigError(f"BLEU order must be at least 1, got min_n={min_n}")
    if max_n < min_n:
        raise ConfigError(f"max_n must be at least min_n, got max_n={max_n} < min_n={min_n}")


def _check_smoothing(smoothing: str | None) -> None:
    if smoothing is not None and smoothing not in SMOOTHING_METHODS:
        raise ConfigError(f"unknown BLEU smoothing {smoothing!r}; use None or one of {', '.join(SMOOTHING_METHODS)}")


def _as_sentences(corpus: Sequence[Sequence[str]], what: str) -> list[Sentence]:
    """Tuples of tokens; rejects an empty corpus and plain strings (which would be scored as characters)."""
    if len(corpus) == 0:
        raise DataError(f"{what} is empty: BLEU needs at least one sentence")
    sentences = []
    for index, sentence in enumerate(corpus):
        if isinstance(sentence, str):
            raise DataError(
                f"{what}[{index}] is a string, not a sequence of tokens; tokenise it first (e.g. line.split())"
            )
        sentences.append(tuple(sentence))
    return sentences


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


class _Lengths:
    """The multiset of reference lengths, for NLTK's ``closest_ref_length`` in O(log distinct lengths)."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self._count = Counter(lengths)
        self._sorted = sorted(self._count)

    def closest(self, hyp_len: int, without: int | None = None) -> int:
        """The reference length closest to ``hyp_len``, the shorter one on a tie (as NLTK).

        ``without``: a length to take out once (Self-BLEU: the hypothesis' own),
        so it is skipped when it occurs only once.
        """
        lengths = self._sorted

        def usable(length: int) -> bool:
            return length != without or self._count[length] > 1

        above = bisect_left(lengths, hyp_len)  # first length >= hyp_len
        below = above - 1  # last length < hyp_len
        if above < len(lengths) and not usable(lengths[above]):
            above += 1
        if below >= 0 and not usable(lengths[below]):
            below -= 1
        candidates = [lengths[i] for i in (below, above) if 0 <= i < len(lengths)]
        return min(candidates, key=lambda length: (abs(length - hyp_len), length))


def _sentence_scores(
    matches: Sequence[int], hyp_len: int, ref_len: int, orders: range, smoothing: str | None
) -> list[float]:
    """BLEU-n for every n in ``orders`` of one hypothesis, with NLTK's arithmetic.

    ``matches[m - 1]`` is the clipped n-gram count of order ``m`` (1..max order).
    One pass serves all orders because NLTK's smoothed precision of order m does
    not depend on the highest order asked for.
    """
    if matches[0] == 0:  # NLTK returns 0 before smoothing when no unigram matches
        return [0.0 for _ in orders]
    # log p_m, or None where NLTK's `if p_i > 0` drops the term
    log_precisions: list[float | None] = []
    zeros_seen = 1  # NLTK's `incvnt` of methods 3 and 4
    for order, numerator in enumerate(matches, start=1):
        denominator = max(1, hyp_len - order + 1)
        if smoothing == "method2" and order > 1:
            precision: float | None = (numerator + 1) / (denominator + 1)
        elif numerator:
            precision = numerator / denominator
        elif smoothing is None:
            precision = sys.float_info.min
        elif smoothing == "method1":
            precision = (numerator + _EPSILON) / denominator
        elif smoothing == "method3":
            precision = 1 / (2**zeros_seen * denominator)
            zeros_seen += 1
        elif hyp_len > 1:  # method4
            precision = 1 / (2**zeros_seen * _K / math.log(hyp_len)) / denominator
            zeros_seen += 1
        else:  # method4 leaves a zero precision of a one-token hypothesis, which NLTK then skips
            precision = None
        log_precisions.append(None if precision is None else math.log(precision))
    if hyp_len > ref_len:
        penalty = 1.0
    elif hyp_len == 0:
        penalty = 0.0
    else:
        penalty = math.exp(1 - ref_len / hyp_len)
    scores = []
    for n in orders:
        weight = 1 / n
        terms = (weight * log_p for log_p in log_precisions[:n] if log_p is not None)
        scores.append(penalty * math.exp(math.fsum(terms)))
    return scores


class BleuReferences:
    """A reference corpus prepared once for BLEU of any number of hypothesis sets and orders.

    Holds, per n-gram order (computed on first use), the maximum count of every
    n-gram over all references, and the multiset of reference lengths.

    Raises:
        DataError: ``references`` is empty or holds a plain string.
    """

    def __init__(self, references: Sequence[Sequence[str]]) -> None:
        self._references = _as_sentences(references, "references")
        self._lengths = _Lengths([len(reference) for reference in self._references])
        self._max_counts: dict[int, dict[NGram, int]] = {}

    def __len__(self) -> int:
        return len(self._references)

    def _max_counts_of_order(self, n: int) -> dict[NGram, int]:
        if n not in self._max_counts:
            max_counts: dict[NGram, int] = {}
            for reference in self._references:
                for ngram, count in Counter(_ngrams(reference, n)).items():
                    if count > max_counts.get(ngram, 0):
                        max_counts[ngram] = count
            self._max_counts[n] = max_counts
        return self._max_counts[n]

    def sentence_scores(
        self,
        hypotheses: Sequence[Sequence[str]],
        max_n: int = 5,
        min_n: int = 2,
        smoothing: str | None = None,
    ) -> dict[int, list[float]]:
        """BLEU-n of every hypothesis against all references, for n = ``min_n``..``max_n``.

        Raises:
            DataError: ``hypotheses`` is empty or holds a plain string.
            ConfigError: ``min_n < 1``, ``max_n < min_n`` or unknown ``smoothing``.
        """
        _check_orders(min_n, max_n)
        _check_smoothing(smoothing)
        sentences = _as_sentences(hypotheses, "hypotheses")
        tables = [self._max_counts_of_order(order) for order in range(1, max_n + 1)]
        orders = range(min_n, max_n + 1)
        scores: dict[int, list[float]] = {n: [] for n in orders}
        for hypothesis in sentences:
            matches = [
                sum(min(count, table.get(ngram, 0)) for ngram, count in Counter(_ngrams(hypothesis, order)).items())
                for order, table in enumerate(tables, start=1)
            ]
            ref_len = self._lengths.closest(len(hypothesis))
            for n, score in zip(orders, _sentence_scores(matches, len(hypothesis), ref_len, orders, smoothing)):
                scores[n].append(score)
        return scores

    def score(
        self,
        hypotheses: Sequence[Sequence[str]],
        max_n: int = 5,
        min_n: int = 2,
        smoothing: str | None = None,
    ) -> dict[int, float]:
        """BLEU-n averaged over ``hypotheses``, keyed by n (see :meth:`sentence_scores`)."""
        return {n: _mean(values) for n, values in self.sentence_scores(hypotheses, max_n, min_n, smoothing).items()}


class SelfBleuCorpus:
    """Generated sentences prepared once for Self-BLEU at any orders and samples.

    Holds, per n-gram order (computed on first use), for every n-gram the largest
    count in one sentence, how many sentences reach it and the second largest
    count, so that the maximum over "all sentences but one" is a lookup.

    Raises:
        DataError: fewer than two sentences (a sentence needs another as reference) or a plain string.
    """

    def __init__(self, sentences: Sequence[Sequence[str]]) -> None:
        self._sentences = _as_sentences(sentences, "sentences")
        if len(self._sentences) < 2:
            raise DataError("Self-BLEU needs at least two sentences: each is scored against the others")
        self._lengths = _Lengths([len(sentence) for sentence in self._sentences])
        # n-gram -> (largest count, sentences with that count, second largest count)
        self._top_counts: dict[int, dict[NGram, tuple[int, int, int]]] = {}

    def __len__(self) -> int:
        return len(self._sentences)

    def _top_counts_of_order(self, n: int) -> dict[NGram, tuple[int, int, int]]:
        if n not in self._top_counts:
            top: dict[NGram, tuple[int, int, int]] = {}
            for sentence in self._sentences:
                for ngram, count in Counter(_ngrams(sentence, n)).items():
                    entry = top.get(ngram)
                    if entry is None:
                        top[ngram] = (count, 1, 0)
                        continue
                    largest, holders, second = entry
                    if count > largest:
                        top[ngram] = (count, 1, largest)
                    elif count == largest:
                        top[ngram] = (largest, holders + 1, second)
                    elif count > second:
                        top[ngram] = (largest, holders, count)
            self._top_counts[n] = top
        return self._top_counts[n]

    def sentence_scores(
        self,
        max_n: int = 5,
        min_n: int = 2,
        smoothing: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> dict[int, list[float]]:
        """BLEU-n of each sentence (all, or those at ``indices``) against all the others.

        "The others" removes one occurrence, by position: a sentence that occurs
        twice still has its copy as a reference (as Texygen's
        ``reference[:i] + reference[i + 1:]``).

        Raises:
            ConfigError: ``min_n < 1``, ``max_n < min_n``, unknown ``smoothing`` or an index out of range.
        """
        _check_orders(min_n, max_n)
        _check_smoothing(smoothing)
        positions = range(len(self._sentences)) if indices is None else indices
        for index in positions:
            if not 0 <= index < len(self._sentences):
                raise ConfigError(f"sentence index {index} is out of range for {len(self._sentences)} sentences")
        tables = [self._top_counts_of_order(order) for order in range(1, max_n + 1)]
        orders = range(min_n, max_n + 1)
        scores: dict[int, list[float]] = {n: [] for n in orders}
        for index in positions:
            hypothesis = self._sentences[index]
            matches = []
            for order, table in enumerate(tables, start=1):
                matched = 0
                for ngram, count in Counter(_ngrams(hypothesis, order)).items():
                    largest, holders, second = table[ngram]
                    others = second if count == largest and holders == 1 else largest
                    matched += min(count, others)
                matches.append(matched)
            ref_len = self._lengths.closest(len(hypothesis), without=len(hypothesis))
            for n, score in zip(orders, _sentence_scores(matches, len(hypothesis), ref_len, orders, smoothing)):
                scores[n].append(score)
        return scores

    def score(
        self,
        max_n: int = 5,
        min_n: int = 2,
        smoothing: str | None = None,
        indices: Sequence[int] | None = None,
    ) -> dict[int, float]:
        """Self-BLEU-n averaged over the scored sentences, keyed by n (see :meth:`sentence_scores`)."""
        return {n: _mean(values) for n, values in self.sentence_scores(max_n, min_n, smoothing, indices).items()}


def bleu(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    max_n: int = 5,
    min_n: int = 2,
    smoothing: str | None = None,
) -> dict[int, float]:
    """BLEU-``min_n``..``max_n`` of ``hypotheses``, each against the whole reference corpus, averaged.

    Equals the mean over hypotheses of NLTK's ``sentence_bleu(references, h,
    weights=(1/n,) * n, smoothing_function=...)``. To score several hypothesis
    sets against one corpus, build :class:`BleuReferences` once instead.

    Raises:
        DataError: an empty corpus or a sentence given as a plain string.
        ConfigError: ``min_n < 1``, ``max_n < min_n`` or unknown ``smoothing``.
    """
    _check_orders(min_n, max_n)  # before the pass over the references, not after it
    _check_smoothing(smoothing)
    return BleuReferences(references).score(hypotheses, max_n, min_n, smoothing)


def self_bleu(
    sentences: Sequence[Sequence[str]],
    max_n: int = 5,
    min_n: int = 2,
    smoothing: str | None = None,
    sample_size: int | None = None,
    seed: int = 0,
    subset: str = "sample",
) -> dict[int, float]:
    """Self-BLEU-``min_n``..``max_n``: each sentence against all the other sentences, averaged.

    ``sample_size``: score only that many sentences, picked as ``subset`` says:

    * ``"sample"``: drawn without replacement (``random.Random(seed)``), each
      still against *all* the others, so the result estimates the full-corpus
      value. Since a sentence costs O(its length), sampling is rarely needed.
    * ``"truncate"``: the first ``sample_size`` sentences, each against the
      rest of them, as Texygen's ``SelfBleu.get_score()`` does by default
      (``is_fast=True``, ``sample_size = 500``) to be fast with NLTK. The
      smaller reference set finds fewer matches, so the score is lower (more
      "diverse") than the full corpus's; it reproduces Texygen's in-training
      logs, not its published tables (those score all sentences).

    Raises:
        DataError: fewer than two sentences (after truncation) or a sentence given as a plain string.
        ConfigError: ``min_n < 1``, ``max_n < min_n``, unknown ``smoothing`` or ``subset``, or ``sample_size < 1``.
    """
    _check_orders(min_n, max_n)  # before the pass over the sentences, not after it
    _check_smoothing(smoothing)
    if sample_size is not None and sample_size < 1:
        raise ConfigError(f"sample_size must be at least 1 (or None for all sentences), got {sample_size}")
    if subset not in SELF_BLEU_SUBSETS:
        raise ConfigError(f"unknown Self-BLEU subset {subset!r}; use one of {', '.join(SELF_BLEU_SUBSETS)}")
    if subset == "truncate" and sample_size is not None:
        sentences = sentences[:sample_size]
    corpus = SelfBleuCorpus(sentences)
    indices = None
    if subset == "sample" and sample_size is not None and sample_size < len(corpus):
        indices = sorted(random.Random(seed).sample(range(len(corpus)), sample_size))
    return corpus.score(max_n, min_n, smoothing, indices)
