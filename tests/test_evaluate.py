"""``seqgan-rl evaluate``: text metrics, checkpoint evaluation and the temperature sweep, end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from seqgan_rl.bleu import bleu, self_bleu
from seqgan_rl.commands.cli import main
from seqgan_rl.commands.evaluate import parse_temperatures
from seqgan_rl.config import get_preset
from seqgan_rl.data import prepare_text_dataset, read_token_table
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.mle import run_pretraining
from seqgan_rl.runs import load_generator
from seqgan_rl.text_metrics import distinct_n, read_sentences

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate"], "needs --checkpoint"),
        (["evaluate", "--samples", "nope.txt"], "file not found: nope.txt"),
        (["evaluate", "--samples", "s.txt", "--temperatures", "0.5,1"], "--temperatures samples a generator"),
        (["evaluate", "--samples", "s.txt", "--references", "blank.txt"], "blank.txt: no sentence"),
        (["evaluate", "--samples", "s.txt", "--references", "t.parquet"], "needs its vocabulary"),
        (["evaluate", "--samples", "s.txt", "--limit", "1"], "--limit must be >= 2"),
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
