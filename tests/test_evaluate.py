"""``seqgan-rl evaluate``: text metrics, checkpoint evaluation and the temperature sweep, end to end."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch

from seqgan_rl.commands.cli import main
from seqgan_rl.commands.evaluate import format_table, over_seeds, parse_temperatures
from seqgan_rl.config import get_preset
from seqgan_rl.data.tables import read_token_table
from seqgan_rl.data.text import prepare_text_dataset
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.bleu import bleu, self_bleu
from seqgan_rl.evaluation.text_quality import PROTOCOLS, distinct_n, read_sentences
from seqgan_rl.mle import run_pretraining
from seqgan_rl.runs import load_generator

NOUNS = ["man", "dog", "cat", "horse", "woman", "bike", "table", "plate", "street", "kitchen"]
VERBS = ["sits", "stands", "runs", "rides", "waits", "sleeps"]
ADJECTIVES = ["small", "red", "old", "white", "big"]


def captions(count: int, seed: int) -> list[str]:
    """Caption-like sentences from a small grammar: structured enough for BLEU to reward a model."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = ["a", rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS)]
        if rng.random() < 0.6:
            words += ["on", "the", rng.choice(NOUNS)]
        lines.append(" ".join(words) + " .")
    return lines


def run_json(capsys: pytest.CaptureFixture[str], *args: object) -> dict:
    assert main([str(a) for a in args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_distinct_n_counts_unique_ngrams_over_the_whole_set() -> None:
    sentences = [["a", "b", "a", "b"], ["a", "b"]]
    assert distinct_n(sentences, 1) == 2 / 6
    assert distinct_n(sentences, 2) == 2 / 4  # ab, ba, ab | ab
    assert distinct_n(sentences, 5) == 0.0
    with pytest.raises(ConfigError):
        distinct_n(sentences, 0)


def test_evaluate_samples_file_equals_the_bleu_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples, references = captions(60, seed=1), captions(200, seed=2)
    (tmp_path / "samples.txt").write_text("\n".join(samples) + "\n")
    (tmp_path / "refs.txt").write_text("\n".join(references) + "\n\n")  # a blank reference line is skipped
    result = run_json(capsys, "evaluate", "--samples", tmp_path / "samples.txt", "--references",
                      tmp_path / "refs.txt", "--json")
    assert result["num_references"] == 200 and len(result["results"]) == 1  # one input: a list of one
    result = {**result, **result["results"][0]}
    hypotheses, refs = [s.split() for s in samples], [r.split() for r in references]
    expected_bleu, expected_self = bleu(hypotheses, refs), self_bleu(hypotheses)
    for n in range(2, 6):
        assert result[f"bleu{n}"] == expected_bleu[n]
        assert result[f"self_bleu{n}"] == expected_self[n]
    assert result["num_samples"] == 60 and result["num_references"] == 200
    assert result["avg_length"] == pytest.approx(sum(map(len, hypotheses)) / 60)
    assert result["distinct2"] == distinct_n(hypotheses, 2)

    # scoring the references themselves: every n-gram matches, BLEU-n = 1
    same = run_json(capsys, "evaluate", "--samples", tmp_path / "refs.txt", "--references", tmp_path / "refs.txt",
                    "--json", "--limit", 50)["results"][0]
    assert all(same[f"bleu{n}"] == pytest.approx(1.0) for n in range(2, 6))
    assert same["num_samples"] == 50


# One hypothesis against one reference of the same length (no brevity penalty): clipped matches 3 of 4 unigrams,
# 2 of 3 bigrams, 1 of 2 trigrams, 0 of 1 4-gram and 0 of 0 5-grams (NLTK's denominator is then max(1, 0) = 1).
HYPOTHESIS, REFERENCE = "a b c e".split(), "a b c d".split()
HYPOTHESIS_PRECISIONS = (3 / 4, 2 / 3, 1 / 2, 0.0, 0.0)
COPY_PRECISIONS = (1.0, 1.0, 1.0, 1.0, 0.0)  # REFERENCE against itself: a 4-token sentence has no 5-gram
EPSILON = 0.1  # NLTK's SmoothingFunction().method1: a zero count's numerator becomes epsilon, the denominator stays
NO_SMOOTHING = sys.float_info.min  # what unsmoothed NLTK puts in place of a zero precision (above unigrams)


def by_hand(precisions: tuple[float, ...], n: int, zero: float) -> float:
    """BLEU-n from its precisions p_1..p_n (denominator 1 where p is 0): their geometric mean, each 0 -> ``zero``."""
    return math.exp(math.fsum(math.log(p or zero) / n for p in precisions[:n]))


def test_method1_smoothing_follows_nltks_definition_by_hand() -> None:
    smoothed = bleu([HYPOTHESIS], [REFERENCE], smoothing="method1")
    plain = bleu([HYPOTHESIS], [REFERENCE])
    for n in (2, 3):  # every order up to n matches: smoothing changes nothing
        assert smoothed[n] == plain[n] == pytest.approx(by_hand(HYPOTHESIS_PRECISIONS, n, EPSILON), rel=1e-12)
    assert smoothed[4] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 0.1) ** (1 / 4), rel=1e-12)  # 0.398
    assert smoothed[5] == pytest.approx((3 / 4 * 2 / 3 * 1 / 2 * 0.1 * 0.1) ** (1 / 5), rel=1e-12)  # 0.302
    # unsmoothed, the zero precision becomes the smallest float: tiny, not 0
    for n in (4, 5):
        assert plain[n] == pytest.approx(by_hand(HYPOTHESIS_PRECISIONS, n, NO_SMOOTHING), rel=1e-9)
        assert 0 < plain[n] < 1e-70
    # no unigram matches at all: 0 with or without smoothing (NLTK returns before smoothing)
    assert bleu([["x", "y"]], [REFERENCE], smoothing="method1") == {2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0}


def test_texygen_protocol_differs_from_none_exactly_where_smoothing_matters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "samples.txt").write_text(" ".join(HYPOTHESIS) + "\n" + " ".join(REFERENCE) + "\n")
    (tmp_path / "refs.txt").write_text(" ".join(REFERENCE) + "\n")
    args = ["evaluate", "--samples", tmp_path / "samples.txt", "--references", tmp_path / "refs.txt", "--json"]
    none, texygen = (run_json(capsys, *args, "--protocol", name) for name in ("none", "texygen"))
    assert none == run_json(capsys, *args)  # none is the default
    assert (none["protocol"], texygen["protocol"]) == ("none", "texygen")
    assert none["scoring"] == {**texygen["scoring"], "smoothing": "none", "self_bleu_subset": "sample",
                               "source": PROTOCOLS["none"].source}
    assert texygen["scoring"]["smoothing"] == "method1" and texygen["scoring"]["self_bleu_sample_size"] == "all"
    assert texygen["scoring"]["bleu_orders"] == [2, 3, 4, 5] and texygen["scoring"]["overridden"] == []
    for result, zero in ((none["results"][0], NO_SMOOTHING), (texygen["results"][0], EPSILON)):
        for n in range(2, 6):
            # BLEU: the samples are HYPOTHESIS and REFERENCE itself; Self-BLEU: each against the other is
            # HYPOTHESIS against REFERENCE or its mirror image, with the same matches
            pair = (by_hand(HYPOTHESIS_PRECISIONS, n, zero), by_hand(COPY_PRECISIONS, n, zero))
            assert result[f"bleu{n}"] == pytest.approx(sum(pair) / 2, rel=1e-12)
            assert result[f"self_bleu{n}"] == pytest.approx(pair[0], rel=1e-12)
    plain, smoothed = none["results"][0], texygen["results"][0]
    differ = {key for key in plain if plain[key] != smoothed[key]}
    assert differ == {"bleu4", "bleu5", "self_bleu4", "self_bleu5"}  # the orders with a zero count
    assert smoothed["bleu4"] > 0.69 and plain["bleu4"] == pytest.approx(0.5)


def test_an_explicit_option_overrides_the_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    samples, references = captions(12, seed=3), captions(40, seed=4)
    (tmp_path / "samples.txt").write_text("\n".join(samples) + "\n")
    (tmp_path / "refs.txt").write_text("\n".join(references) + "\n")
    hypotheses, refs = [s.split() for s in samples], [r.split() for r in references]
    args = ["evaluate", "--samples", tmp_path / "samples.txt", "--references", tmp_path / "refs.txt", "--json",
            "--protocol", "texygen"]

    unsmoothed = run_json(capsys, *args, "--smoothing", "none")
    assert unsmoothed["protocol"] == "texygen" and unsmoothed["scoring"]["overridden"] == ["smoothing"]
    assert unsmoothed["scoring"]["smoothing"] == "none" and unsmoothed["scoring"]["self_bleu_subset"] == "truncate"
    expected = bleu(hypotheses, refs)
    assert all(unsmoothed["results"][0][f"bleu{n}"] == expected[n] for n in range(2, 6))

    # a sample size under Texygen's protocol takes its first samples, as Texygen's code does with 500
    first_five = run_json(capsys, *args, "--self-bleu-sample-size", "5")
    assert first_five["scoring"]["self_bleu_sample_size"] == 5
    assert first_five["scoring"]["overridden"] == ["self_bleu_sample_size"]
    expected = self_bleu(hypotheses[:5], smoothing="method1")
    assert all(first_five["results"][0][f"self_bleu{n}"] == expected[n] for n in range(2, 6))

    # ... or, with --self-bleu-subset sample, 5 random samples, each against all the others
    sampled = run_json(capsys, *args, "--self-bleu-sample-size", "5", "--self-bleu-subset", "sample", "--seed", 2)
    assert sampled["scoring"]["overridden"] == ["self_bleu_sample_size", "self_bleu_subset"]
    expected = self_bleu(hypotheses, smoothing="method1", sample_size=5, seed=2)
    assert all(sampled["results"][0][f"self_bleu{n}"] == expected[n] for n in range(2, 6))
    assert expected != self_bleu(hypotheses[:5], smoothing="method1")


def test_tokenisations_of_text_files(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("A man, riding.\n\n秦 川 雄\n")
    assert read_sentences(tmp_path / "t.txt") == [["A", "man,", "riding."], [], ["秦", "川", "雄"]]
    assert read_sentences(tmp_path / "t.txt", tokenization="word", lowercase=True, keep_blank=False)[0] == [
        "a", "man", ",", "riding", "."]
    assert read_sentences(tmp_path / "t.txt", tokenization="char", keep_blank=False)[1] == ["秦", "川", "雄"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator MLE-trained for a few epochs on a caption-like corpus (its run directory)."""
    root = tmp_path_factory.mktemp("text_run")
    (root / "corpus.txt").write_text("\n".join(captions(600, seed=0)) + "\n")
    prepare_text_dataset(root / "corpus.txt", root / "data", valid_fraction=0.2, seed=0)
    config = get_preset("smoke").with_overrides(epochs=8, eval_every=4, emb_dim=16, hidden_dim=32)
    run_pretraining(config, root / "mle", data_dir=root / "data", progress=False)
    return root


def test_checkpoint_evaluation_and_temperature_sweep(text_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = text_run / "mle" / "checkpoint.pt"
    plot = text_run / "sweep.png"
    result = run_json(capsys, "evaluate", "--checkpoint", f"mle={checkpoint}", "--checkpoint", text_run / "mle",
                      "--temperatures", "0.2,1.0,2.0", "--n", 300, "--plot", plot, "--json", "--device", "cpu")
    assert result["references"].endswith("valid.parquet")  # the run's held-out split by default
    assert result["num_references"] == 120
    records = result["results"]
    assert [(r["label"], r["temperature"]) for r in records] == [
        ("mle", 0.2), ("mle", 1.0), ("mle", 2.0), ("mle", 0.2), ("mle", 1.0), ("mle", 2.0)]
    assert records[:3] == [{**r, "label": "mle"} for r in records[3:]]  # seeded: the same checkpoint, same numbers
    # two checkpoints under one label are seeds of one model: one record per temperature, their mean and sd
    assert [(r["label"], r["temperature"], r["seeds"]) for r in result["over_seeds"]] == [
        ("mle", 0.2, 2), ("mle", 1.0, 2), ("mle", 2.0, 2)]
    assert all(r["bleu4"] == records[i]["bleu4"] and r["bleu4_sd"] == 0 for i, r in enumerate(result["over_seeds"]))
    by_t = {r["temperature"]: r for r in records[:3]}
    # lower temperature: higher quality, lower diversity
    assert by_t[0.2]["bleu4"] > by_t[2.0]["bleu4"]
    assert by_t[0.2]["self_bleu4"] > by_t[1.0]["self_bleu4"] > by_t[2.0]["self_bleu4"]
    assert by_t[0.2]["distinct2"] < by_t[2.0]["distinct2"]
    # NLL-test is the model's NLL of the held-out split at each temperature
    generator = load_generator(checkpoint)
    valid = torch.from_numpy(read_token_table(text_run / "data" / "valid.parquet").tokens.astype("int64"))
    for temperature, record in by_t.items():
        assert record["nll_test"] == pytest.approx(generator.nll(valid, temperature=temperature), rel=1e-6)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # samples decode to words of the corpus's vocabulary, ending before <eos>
    sample = run_json(capsys, "sample", "--checkpoint", checkpoint, "--out", text_run / "s.txt", "--n", 20,
                      "--device", "cpu")
    assert sample["format"] == "text" and sample["level"] == "word"
    words = {w for line in (text_run / "s.txt").read_text().splitlines() for w in line.split()}
    assert words and words <= set(NOUNS + VERBS + ADJECTIVES + ["a", "on", "the", ".", "<unk>"])


def test_records_of_one_label_and_temperature_are_averaged_over_seeds() -> None:
    records = [{"label": "gan", "temperature": 1.0, "bleu4": 0.2, "self_bleu4": 0.5},
               {"label": "gan", "temperature": 1.0, "bleu4": 0.4, "self_bleu4": 0.7},
               {"label": "mle", "temperature": 1.0, "bleu4": 0.3, "self_bleu4": 0.6}]
    gan, mle = over_seeds(records)
    assert gan == {"label": "gan", "temperature": 1.0, "seeds": 2, "bleu4": pytest.approx(0.3),
                   "bleu4_sd": pytest.approx(0.2 / math.sqrt(2)), "self_bleu4": pytest.approx(0.6),
                   "self_bleu4_sd": pytest.approx(0.2 / math.sqrt(2))}
    assert mle == {"label": "mle", "temperature": 1.0, "seeds": 1, "bleu4": 0.3, "bleu4_sd": 0.0, "self_bleu4": 0.6,
                   "self_bleu4_sd": 0.0}
    table = format_table([gan, mle]).splitlines()
    assert table[1].split() == ["gan", "1.000", "0.300", "±", "0.141", "0.600", "±", "0.141", "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate"], "needs --checkpoint"),
        (["evaluate", "--samples", "nope.txt"], "file not found: nope.txt"),
        (["evaluate", "--samples", "s.txt", "--temperatures", "0.5,1"], "--temperatures samples a generator"),
        (["evaluate", "--samples", "s.txt", "--references", "blank.txt"], "blank.txt: no sentence"),
        (["evaluate", "--samples", "s.txt", "--references", "t.parquet"], "needs its vocabulary"),
        (["evaluate", "--samples", "s.txt", "--limit", "1"], "--limit must be >= 2"),
        (["evaluate", "--samples", "s.txt", "--protocol", "texygn"],
         "--protocol: unknown scoring protocol 'texygn'; use one of none, paper, texygen"),
        (["evaluate", "--samples", "s.txt", "--self-bleu-sample-size", "0"], "--self-bleu-sample-size must be"),
        (["evaluate", "--samples", "s.txt", "--self-bleu-sample-size", "some"], "--self-bleu-sample-size must be"),
        (["evaluate", "--checkpoint", "nope.pt"], "nope.pt"),
    ],
)
def test_bad_evaluate_input_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], args: list[str],
                                              message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.txt").write_text("a b c\nb c d\n")
    (tmp_path / "blank.txt").write_text("\n \n")
    (tmp_path / "corpus.txt").write_text("a b c\nb c d\nc d e\n")
    prepare_text_dataset(tmp_path / "corpus.txt", tmp_path / "d", valid_fraction=0.0)
    (tmp_path / "d" / "train.parquet").rename(tmp_path / "t.parquet")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_temperature_lists_are_checked() -> None:
    assert parse_temperatures("0.5,0.7,1") == [0.5, 0.7, 1.0]
    for bad in ("0.5,x", "0", "-1", "inf"):
        with pytest.raises(ConfigError):
            parse_temperatures(bad)
    with pytest.raises(DataError):
        read_sentences("missing.txt")
