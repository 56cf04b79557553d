"""BLEU-2..5 and Self-BLEU on real captions: seqgan_rl.evaluation.bleu against NLTK, time and scores.

Hypotheses are the first ``--hypotheses`` lines of the Image COCO captions and
the references the remaining lines (up to ``--references``), tokenised with
``tokenize_line(line, "word")``. NLTK is the common implementation: one
``sentence_bleu(all_references, hypothesis, weights=[BLEU-2..5 weights])`` per
hypothesis (all four orders in one call, its cheapest use). Its cost is
proportional to hypotheses x references, so it is timed on the first
``--nltk-hypotheses`` hypotheses only and extrapolated linearly to all of them
(the JSON says so); scores are compared sentence by sentence on that subset.
Self-BLEU is timed on the first ``--self-bleu-sentences`` hypotheses, NLTK
again on a subset. Prints a JSON object as its last line.

    python benchmarks/bleu.py [--smoothing method1] [--nltk-hypotheses 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_seconds  # noqa: E402
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu  # noqa: E402

from seqgan_rl.data.text import tokenize_line  # noqa: E402
from seqgan_rl.evaluation.bleu import SMOOTHING_METHODS, BleuReferences, SelfBleuCorpus, bleu, self_bleu  # noqa: E402
from seqgan_rl.models.oracle import default_data_dir  # noqa: E402

ORDERS = (2, 3, 4, 5)
WEIGHTS = [(1 / n,) * n for n in ORDERS]


def nltk_sentence_scores(
    references: list[list[str]], hypotheses: list[list[str]], smoothing: str | None
) -> tuple[dict[int, list[float]], float]:
    """NLTK BLEU-2..5 of every hypothesis against all ``references``, and the seconds it took."""
    function = None if smoothing is None else getattr(SmoothingFunction(), smoothing)
    scores: dict[int, list[float]] = {n: [] for n in ORDERS}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns on every zero count
        for hypothesis in hypotheses:
            for n, score in zip(ORDERS, sentence_bleu(references, hypothesis, WEIGHTS, function)):
                scores[n].append(score)
    return scores, time.perf_counter() - start


def max_abs_difference(ours: dict[int, list[float]], theirs: dict[int, list[float]]) -> float:
    return max(abs(a - b) for n in ORDERS for a, b in zip(ours[n], theirs[n], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_dir = default_data_dir()
    default_data = data_dir / "image_coco_train.txt" if data_dir else None
    parser.add_argument("--data", type=Path, default=default_data, help="captions, one per line")
    parser.add_argument("--hypotheses", type=int, default=1_000)
    parser.add_argument("--references", type=int, default=10_000, help="at most the lines left after the hypotheses")
    parser.add_argument("--nltk-hypotheses", type=int, default=20, help="hypotheses NLTK scores (then extrapolated)")
    parser.add_argument("--self-bleu-sentences", type=int, default=1_000)
    parser.add_argument("--nltk-self-bleu-hypotheses", type=int, default=50)
    parser.add_argument("--smoothing", choices=SMOOTHING_METHODS, default=None, help="default: none (NLTK method0)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.data is None or not args.data.is_file():
        parser.error(f"captions file not found ({args.data}); pass --data")

    lines = [tokenize_line(line, "word") for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    hypotheses = lines[: args.hypotheses]
    references = lines[args.hypotheses : args.hypotheses + args.references]
    nltk_subset = hypotheses[: args.nltk_hypotheses]

    ours_s = median_seconds(lambda: bleu(hypotheses, references, smoothing=args.smoothing), repeats=args.repeats)
    ours = bleu(hypotheses, references, smoothing=args.smoothing)
    ours_subset = BleuReferences(references).sentence_scores(nltk_subset, smoothing=args.smoothing)
    nltk_subset_scores, nltk_subset_s = nltk_sentence_scores(references, nltk_subset, args.smoothing)
    nltk_s = nltk_subset_s * len(hypotheses) / len(nltk_subset)

    sentences = lines[: args.self_bleu_sentences]
    self_s = median_seconds(lambda: self_bleu(sentences, smoothing=args.smoothing), repeats=args.repeats)
    self_scores = self_bleu(sentences, smoothing=args.smoothing)
    self_indices = range(args.nltk_self_bleu_hypotheses)
    ours_self_subset = SelfBleuCorpus(sentences).sentence_scores(smoothing=args.smoothing, indices=self_indices)
    nltk_self_subset: dict[int, list[float]] = {n: [] for n in ORDERS}
    nltk_self_s = 0.0
    for i in self_indices:
        scores, seconds = nltk_sentence_scores(sentences[:i] + sentences[i + 1 :], [sentences[i]], args.smoothing)
        nltk_self_s += seconds
        for n in ORDERS:
            nltk_self_subset[n] += scores[n]
    nltk_self_s *= len(sentences) / len(self_indices)

    result = {
        "setting": {
            "data": args.data.name,
            "tokenizer": 'tokenize_line(line, "word")',
            "hypotheses": len(hypotheses),
            "references": len(references),
            "smoothing": args.smoothing or "none (NLTK method0)",
            "nltk": "sentence_bleu(all references, hypothesis, [BLEU-2..5 weights]) per hypothesis",
        },
        "bleu": {
            "ours_s": ours_s,
            "ours": {f"bleu{n}": ours[n] for n in ORDERS},
            "nltk_s_extrapolated": nltk_s,
            "nltk_timed_hypotheses": len(nltk_subset),
            "nltk_timed_s": nltk_subset_s,
            "speedup_extrapolated": nltk_s / ours_s,
            "subset_ours": {f"bleu{n}": sum(ours_subset[n]) / len(nltk_subset) for n in ORDERS},
            "subset_nltk": {f"bleu{n}": sum(nltk_subset_scores[n]) / len(nltk_subset) for n in ORDERS},
            "subset_max_abs_diff_per_sentence": max_abs_difference(ours_subset, nltk_subset_scores),
        },
        "self_bleu": {
            "sentences": len(sentences),
            "ours_s": self_s,
            "ours": {f"self_bleu{n}": self_scores[n] for n in ORDERS},
            "nltk_s_extrapolated": nltk_self_s,
            "nltk_timed_hypotheses": len(self_indices),
            "speedup_extrapolated": nltk_self_s / self_s,
            "subset_max_abs_diff_per_sentence": max_abs_difference(ours_self_subset, nltk_self_subset),
        },
        "machine": machine("cpu"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
