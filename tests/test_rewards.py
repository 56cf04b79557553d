"""Reward models: the BLEU reward is BLEU, a user's scorer trains end to end, bad scorers get one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL
from test_cli import run_cli

from seqgan_rl.config import TrainConfig
from seqgan_rl.data.tables import write_token_table
from seqgan_rl.data.vocabulary import Vocabulary
from seqgan_rl.errors import ConfigError, ScorerError
from seqgan_rl.evaluation.bleu import BleuReferences, bleu
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.rewards import RewardModel, RewardModelSpec, TokenBleu, import_reward_function

SCORERS = '''
import numpy as np

def low_ids(tokens):
    """The share of ids below 20: a reward any generator can learn to raise."""
    return (tokens < 20).mean(axis=1)

def wrong_shape(tokens):
    return np.zeros((len(tokens), 2))

def nan(tokens):
    return np.full(len(tokens), np.nan)

def above_one(tokens):
    return np.full(len(tokens), 1.5)

not_callable = 3
'''


@pytest.fixture
def scorer_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of scorers importable as ``user_scorers`` (in this process and in a CLI run from tmp_path)."""
    (tmp_path / "user_scorers.py").write_text(SCORERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_scorers"


def oracle_like(rng: np.random.Generator, rows: int, length: int = 12, vocab: int = 30) -> np.ndarray:
    """Ids with many shared n-grams (a small vocabulary, a skewed draw), so every order has matches and misses."""
    return np.minimum(rng.geometric(0.25, size=(rows, length)) - 1, vocab - 1)


@pytest.mark.parametrize("smoothing", [None, "method1"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_bleu_reward_equals_bleu_on_the_same_sequences(n: int, smoothing: str | None) -> None:
    rng = np.random.default_rng(n)
    references, hypotheses = oracle_like(rng, 300), oracle_like(rng, 200)
    reward = TokenBleu(references, n, vocab_size=30, smoothing=smoothing)(hypotheses)
    as_tuples = [tuple(row) for row in hypotheses.tolist()]
    expected = BleuReferences([tuple(row) for row in references.tolist()]).sentence_scores(
        as_tuples, max_n=n, min_n=n, smoothing=smoothing)[n]
    assert reward.tolist() == expected  # bit for bit, sentence by sentence
    assert np.isclose(reward.mean(), bleu(as_tuples, [tuple(r) for r in references.tolist()], n, n, smoothing)[n])
    assert 0 < reward.min() < reward.max() <= 1  # the test cases do exercise both matches and misses


def test_bleu_reward_scores_text_as_its_words(tmp_path: Path) -> None:
    """With a vocabulary beside the real data, a sequence is its ids before <eos>, <pad> dropped (as evaluate)."""
    vocab = Vocabulary.build([["a", "b", "c", "d", "e"]])
    eos, pad = vocab.eos_id, vocab.pad_id
    rng = np.random.default_rng(0)
    words = rng.integers(3, len(vocab), size=(60, 10))
    ends = rng.integers(2, 10, size=60)
    tokens = np.where(np.arange(10)[None, :] < ends[:, None], words, pad)
    tokens[np.arange(60), ends - 1] = eos
    tokens[::7, 0] = pad  # a stray pad inside a sentence is dropped, not scored
    write_token_table(tmp_path / "train.parquet", tokens[:40], len(vocab))
    vocab.save(tmp_path / "vocab.json")
    spec = RewardModelSpec("bleu", str(tmp_path / "train.parquet"), len(vocab), 10, bleu_n=2)
    reward = RewardModel(spec)(tokens[40:])
    sentences = [vocab.decode(row) for row in tokens]
    expected = BleuReferences(sentences[:40]).sentence_scores(sentences[40:], max_n=2, min_n=2)[2]
    assert reward.tolist() == expected


def test_reward_model_options_are_checked() -> None:
    assert TrainConfig().reward.reward_model == "discriminator"
    TrainConfig().with_overrides(reward_model="bleu", bleu_n=3, bleu_smoothing="method1").validate()
    TrainConfig().with_overrides(reward_model="my.module:score").validate()
    for bad, message in [({"reward_model": "bleu4"}, "unknown reward_model 'bleu4'"),
                         ({"reward_model": "module:"}, "unknown reward_model"),
                         ({"bleu_n": 0}, "bleu_n must be in [1, 5]"),
                         ({"bleu_smoothing": "add1"}, "bleu_smoothing must be one of")]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            TrainConfig().with_overrides(**bad).validate()
    with pytest.raises(ConfigError, match="too high for a vocabulary"):
        TokenBleu(np.zeros((2, 4), dtype=np.int64), 5, vocab_size=10**5)


@pytest.mark.parametrize(("function", "error", "message"), [
    ("missing_module:f", ConfigError, "cannot import module 'missing_module'"),
    ("user_scorers:nope", ConfigError, "'user_scorers' has no attribute 'nope'"),
    ("user_scorers:not_callable", ConfigError, "is a int, not a callable"),
    ("user_scorers:wrong_shape", ScorerError, r"returned shape \(3, 2\) for 3 sequences; expected \(3,\)"),
    ("user_scorers:nan", ScorerError, r"returned 3 non-finite reward\(s\) \(NaN or inf\)"),
    ("user_scorers:above_one", ScorerError, "returned 1.5 at row 0, outside"),
])
def test_a_bad_scorer_gets_one_clear_error(scorer_module: str, function: str, error: type, message: str) -> None:
    spec = RewardModelSpec(function, "unused.parquet", 30, 12)
    with pytest.raises(error, match=message) as raised:
        RewardModel(spec)(np.zeros((3, 12), dtype=np.int64))
    assert function in str(raised.value)  # the option's value is named


def test_a_user_scorer_is_called_on_token_ids(scorer_module: str) -> None:
    function = import_reward_function("user_scorers:low_ids")
    model = RewardModel(RewardModelSpec("user_scorers:low_ids", "unused.parquet", 30, 12))
    tokens = np.arange(24, dtype=np.int64).reshape(2, 12)
    assert model(tokens).tolist() == function(tokens).tolist() == [1.0, 8 / 12]
    import torch

    scores = model.score(torch.from_numpy(tokens))  # the Monte Carlo engine's side: torch in, float32 out
    assert scores.dtype == torch.float32 and scores.tolist() == pytest.approx([1.0, 8 / 12])


def run_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize(("reward_model", "algo"), [("user_scorers:low_ids", "ppo"), ("bleu", "seqgan")])
def test_a_fixed_reward_model_trains_end_to_end_without_a_discriminator(
        tmp_path: Path, scorer_module: str, reward_model: str, algo: str, ray_local, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The smoke preset with a user's scorer (PPO) and with PG-BLEU (SeqGAN's update), run by the CLI's ``main``
    on the tests' local Ray: the env, the Monte Carlo rollouts and the Learner score with it; no
    discriminator is started, pretrained or trained."""
    from seqgan_rl.commands.cli import main

    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "smoke", "--oracle-params", "small.npz", "--run-dir", "run", "--algo", algo,
                 "--reward-model", reward_model, "--device", "cpu"]) == 0
    records = run_records(tmp_path / "run")
    assert [r["iteration"] for r in records] == [0, 1, 2, 3]
    keys = set().union(*records)
    assert not {"train/d_accuracy", "train/d_loss", "time/d_steps_s"} & keys
    assert "D pretrain" not in capsys.readouterr().err  # no progress bar of a discriminator pretraining
    for record in records[1:]:
        assert 0 < record["train/d_fake_mean"] <= 1  # the env's terminal rewards: the reward model's scores
        assert np.isfinite(record["eval/nll_oracle"])
    if reward_model == "bleu":
        assert all(0 < r["train/mean_q"] <= 1 for r in records[1:])  # Monte Carlo BLEU values


def test_a_bad_scorer_stops_a_run_before_the_mle_phase(tmp_path: Path, scorer_module: str) -> None:
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    result = run_cli("train", "--preset", "smoke", "--oracle-params", "small.npz", "--run-dir", "run",
                     "--reward-model", "user_scorers:nan", "--no-progress", cwd=tmp_path)
    assert result.returncode != 0
    assert "reward_model 'user_scorers:nan' returned 4 non-finite reward(s)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # refused before the oracle data is written, let alone the MLE phase
