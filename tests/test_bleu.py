"""Parity of :mod:`seqgan_rl.evaluation.bleu` with NLTK's ``sentence_bleu``, and its errors.

NLTK is the reference implementation the SeqGAN/Texygen numbers come from and a
declared test dependency: the import below fails loudly rather than skipping.
Corpora are small and random over a tiny vocabulary so that repeated n-grams,
clipping, ties in reference length, hypotheses shorter than n and empty
sentences all occur.
"""

from __future__ import annotations

import random
import warnings

import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.bleu import SMOOTHING_METHODS, BleuReferences, SelfBleuCorpus, bleu, self_bleu

SMOOTHINGS = (None, *SMOOTHING_METHODS)
MAX_N = 5


def nltk_scores(references: list[list[str]], hypothesis: list[str], smoothing: str | None) -> list[float]:
    """NLTK's sentence BLEU-1..MAX_N, one call per order as Texygen does."""
    function = None if smoothing is None else getattr(SmoothingFunction(), smoothing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns on every zero count
        return [
            sentence_bleu(references, hypothesis, weights=(1 / n,) * n, smoothing_function=function)
            for n in range(1, MAX_N + 1)
        ]


def random_corpus(rng: random.Random, size: int, vocab: str = "abcd", max_len: int = 9) -> list[list[str]]:
    """Sentences over a tiny vocabulary; lengths 0..max_len, so short and empty ones occur."""
    return [[rng.choice(vocab) for _ in range(rng.randint(0, max_len))] for _ in range(size)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_bleu_matches_nltk(seed: int, smoothing: str | None) -> None:
    rng = random.Random(seed)
    references = random_corpus(rng, rng.randint(1, 12), vocab="abcde"[: 3 + seed % 3])
    hypotheses = random_corpus(rng, 25, vocab="abcdef"[: 3 + seed % 4], max_len=11)
    hypotheses += [[], ["a"], references[0]]
    ours = BleuReferences(references).sentence_scores(hypotheses, max_n=MAX_N, min_n=1, smoothing=smoothing)
    expected = [nltk_scores(references, hypothesis, smoothing) for hypothesis in hypotheses]
    for n in range(1, MAX_N + 1):
        assert ours[n] == [scores[n - 1] for scores in expected], f"BLEU-{n} differs"
    averaged = bleu(hypotheses, references, max_n=MAX_N, smoothing=smoothing)
    assert sorted(averaged) == [2, 3, 4, 5]
    for n, value in averaged.items():
        assert value == pytest.approx(sum(scores[n - 1] for scores in expected) / len(expected), abs=1e-9, rel=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_self_bleu_matches_nltk(seed: int, smoothing: str | None) -> None:
    rng = random.Random(100 + seed)
    sentences = random_corpus(rng, 20, vocab="abc" if seed % 2 else "abcde")
    sentences += [sentences[0], [], ["b"]]  # a duplicate keeps its copy as a reference
    ours = SelfBleuCorpus(sentences).sentence_scores(max_n=MAX_N, min_n=1, smoothing=smoothing)
    expected = [
        nltk_scores(sentences[:i] + sentences[i + 1 :], sentences[i], smoothing) for i in range(len(sentences))
    ]
    for n in range(1, MAX_N + 1):
        assert ours[n] == [scores[n - 1] for scores in expected], f"Self-BLEU-{n} differs"
    averaged = self_bleu(sentences, max_n=MAX_N, smoothing=smoothing)
    for n, value in averaged.items():
        assert value == pytest.approx(sum(scores[n - 1] for scores in expected) / len(expected), abs=1e-9, rel=0)


def test_unique_maximum_holder_is_clipped_by_the_second_largest_count() -> None:
    # "a a a" holds the only count 3 of ("a",); without it the others allow 2 (sentence 1), not 3
    sentences = [["a", "a", "a"], ["a", "a", "b"], ["a", "b"], ["b"]]
    ours = SelfBleuCorpus(sentences).sentence_scores(max_n=2, min_n=1)
    for i, sentence in enumerate(sentences):
        expected = nltk_scores(sentences[:i] + sentences[i + 1 :], sentence, None)
        assert [ours[1][i], ours[2][i]] == expected[:2]


def test_reference_length_ties_go_to_the_shorter_reference() -> None:
    # hypothesis of 4 tokens, references of 3 and 5: NLTK takes r = 3, so no brevity penalty
    references = [["a", "b", "c"], ["a", "b", "c", "d", "e"]]
    hypothesis = ["a", "b", "c", "d"]
    assert nltk_scores(references, hypothesis, None)[1] == 1.0
    assert bleu([hypothesis], references, max_n=2) == {2: 1.0}


def test_unsmoothed_higher_order_zero_is_tiny_not_zero_and_no_unigram_match_is_zero() -> None:
    references = [["a", "b"]]
    scores = BleuReferences(references).sentence_scores([["b", "a"], ["c", "d"]], max_n=2, min_n=2)[2]
    assert 0 < scores[0] < 1e-150  # NLTK's sys.float_info.min stand-in for p_2 = 0
    assert scores[1] == 0.0


def test_sample_size_scores_a_seeded_subset_against_all_others() -> None:
    rng = random.Random(7)
    sentences = random_corpus(rng, 30)
    corpus = SelfBleuCorpus(sentences)
    picked = sorted(random.Random(3).sample(range(30), 10))
    assert self_bleu(sentences, sample_size=10, seed=3) == corpus.score(indices=picked)
    assert self_bleu(sentences, sample_size=30) == self_bleu(sentences) == corpus.score()


def test_truncated_subset_scores_the_first_sentences_among_themselves() -> None:
    # Texygen's SelfBleu: the first sample_size sentences, each against the rest of them, as NLTK would score it
    rng = random.Random(8)
    sentences = random_corpus(rng, 30)
    first = sentences[:10]
    truncated = self_bleu(sentences, max_n=MAX_N, sample_size=10, subset="truncate", smoothing="method1")
    for n, value in truncated.items():
        expected = [nltk_scores(first[:i] + first[i + 1 :], first[i], "method1")[n - 1] for i in range(10)]
        assert value == pytest.approx(sum(expected) / 10, abs=1e-9, rel=0)
    assert self_bleu(sentences, subset="truncate") == self_bleu(sentences)  # no sample_size: all sentences


def test_references_are_reused_across_hypothesis_sets_and_orders() -> None:
    rng = random.Random(11)
    references = random_corpus(rng, 15)
    prepared = BleuReferences(references)
    first, second = random_corpus(rng, 5), random_corpus(rng, 6)
    assert prepared.score(first, max_n=3) == bleu(first, references, max_n=3)
    assert prepared.score(second, max_n=4, min_n=4, smoothing="method1") == bleu(
        second, references, max_n=4, min_n=4, smoothing="method1"
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: bleu([], [["a"]]), DataError, "hypotheses is empty"),
        (lambda: bleu([["a"]], []), DataError, "references is empty"),
        (lambda: bleu(["a b"], [["a"]]), DataError, r"hypotheses\[0\] is a string"),
        (lambda: bleu([["a"]], [["a"], "a b"]), DataError, r"references\[1\] is a string"),
        (lambda: self_bleu([["a"]]), DataError, "at least two sentences"),
        (lambda: self_bleu([]), DataError, "sentences is empty"),
        (lambda: bleu([["a"]], [["a"]], min_n=0), ConfigError, "at least 1"),
        (lambda: bleu([["a"]], [["a"]], max_n=1), ConfigError, "max_n must be at least min_n"),
        (lambda: bleu([["a"]], [["a"]], smoothing="method7"), ConfigError, "unknown BLEU smoothing 'method7'"),
        (lambda: self_bleu([["a"], ["b"]], smoothing="add-one"), ConfigError, "unknown BLEU smoothing"),
        (lambda: self_bleu([["a"], ["b"]], sample_size=0), ConfigError, "sample_size must be at least 1"),
        (lambda: self_bleu([["a"], ["b"]], subset="first"), ConfigError, "unknown Self-BLEU subset 'first'"),
        (lambda: self_bleu([["a"], ["b"]], sample_size=1, subset="truncate"), DataError, "at least two sentences"),
        (lambda: SelfBleuCorpus([["a"], ["b"]]).score(indices=[2]), ConfigError, "index 2 is out of range"),
    ],
)
def test_clear_errors(call, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
