"""The generator's text at each evaluation: samples.txt and TensorBoard text, in both phases, ids or words."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from conftest import SMALL
from test_docs_metrics import tensorboard_tags

from seqgan_rl.commands.cli import main
from seqgan_rl.config import get_preset
from seqgan_rl.data.text import prepare_text_dataset
from seqgan_rl.evaluation.event_files import event_frames
from seqgan_rl.evaluation.generation import TextDecoder
from seqgan_rl.evaluation.sample_log import (
    NUM_SHOWN_SAMPLES,
    SAMPLES_FILE,
    SampleLog,
    read_samples,
    shown_samples,
    trim_samples,
)
from seqgan_rl.mle import run_pretraining
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import save_checkpoint

WORDS = ["a", "the", "dog", "cat", "man", "sits", "runs", "on", "grass", "."]
"""The tiny corpus's words: every sentence is made of them."""


def tensorboard_texts(directory: Path) -> dict[int, str]:
    """step → the text of every TensorBoard text summary in ``directory``."""
    return {event.step: value.tensor.string_val[0].decode() for path in directory.glob("events.out.tfevents.*")
            for _, event in event_frames(path) for value in event.summary.value
            if value.metadata.plugin_data.plugin_name == "text"}


def assert_shown_in_tensorboard(run_dir: Path, blocks: list[tuple[str, str, int, list[str]]]) -> None:
    """Each block of samples.txt is the TensorBoard text of its step, as a Markdown code block."""
    texts = tensorboard_texts(run_dir / "tensorboard" / "samples")
    assert texts == {step: "\n".join(f"    {line}" for line in lines) for _, _, step, lines in blocks}


def test_pretraining_shows_token_ids_at_each_evaluation(tmp_path: Path, small_oracle: Oracle) -> None:
    small_oracle.save_npz(tmp_path / "oracle.npz")
    config = get_preset("smoke").with_overrides(num_train=200, num_valid=50, num_eval_samples=100, epochs=2)
    run_pretraining(config, tmp_path / "run", oracle_params=tmp_path / "oracle.npz", progress=False)
    blocks = read_samples(tmp_path / "run" / SAMPLES_FILE)
    assert [(phase, name, step) for phase, name, step, _ in blocks] == [("mle", "epoch", e) for e in (0, 1, 2)]
    for _, _, _, lines in blocks:
        assert len(lines) == NUM_SHOWN_SAMPLES
        rows = [[int(token) for token in line.split()] for line in lines]  # the synthetic oracle: token ids
        assert all(len(row) == SMALL.seq_len and all(0 <= t < SMALL.vocab_size for t in row) for row in rows)
    assert blocks[0][3] != blocks[-1][3]  # the text follows the training
    assert_shown_in_tensorboard(tmp_path / "run", blocks)
    # the MLE phase's records are TensorBoard scalars too, every key but the epoch
    assert tensorboard_tags(tmp_path / "run" / "tensorboard") == {
        "train/nll", "eval/nll_oracle", "eval/nll_test", "time/epoch_s", "time/eval_s", "time/elapsed_s"}


def test_a_text_corpus_shows_words(tmp_path: Path) -> None:
    rng = random.Random(0)
    (tmp_path / "corpus.txt").write_text("".join(" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) + "\n"
                                                 for _ in range(200)))
    prepare_text_dataset(tmp_path / "corpus.txt", tmp_path / "data", valid_fraction=0.2, seed=0)
    config = get_preset("smoke").with_overrides(epochs=3, eval_every=3, emb_dim=16, hidden_dim=32)
    run_pretraining(config, tmp_path / "run", data_dir=tmp_path / "data", progress=False)
    blocks = read_samples(tmp_path / "run" / SAMPLES_FILE)
    assert [step for _, _, step, _ in blocks] == [0, 3]
    words = {word for _, _, _, lines in blocks for line in lines for word in line.split()}
    # words of the corpus's vocabulary, cut at <eos>, without <pad>
    assert words and words <= {*WORDS, "<unk>"}
    assert_shown_in_tensorboard(tmp_path / "run", blocks)


def test_samples_draw_nothing_from_the_global_rng_and_depend_on_seed_and_step_only(tmp_path: Path) -> None:
    generator = Generator(SMALL)
    decoder = TextDecoder(None, "word", None)
    state = torch.get_rng_state()
    first = shown_samples(generator, decoder, seed=7, step=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert shown_samples(generator, decoder, seed=7, step=3) == first
    assert shown_samples(generator, decoder, seed=7, step=4) != first


def test_a_restarted_log_keeps_the_blocks_up_to_its_step(tmp_path: Path) -> None:
    log = SampleLog(tmp_path, "adversarial", "iteration", TextDecoder(None, "word", None), seed=0)
    generator = Generator(SMALL)
    shown = {step: log.write(generator, step) for step in range(4)}
    log.close()
    with (tmp_path / SAMPLES_FILE).open("a") as stream:
        stream.write("== adversarial iteration 4 ==\n  1 2")  # a block a crash cut short
    trim_samples(tmp_path / SAMPLES_FILE, 1)
    log = SampleLog(tmp_path, "adversarial", "iteration", TextDecoder(None, "word", None), seed=0)
    log.write(generator, 2)
    log.close()
    assert read_samples(tmp_path / SAMPLES_FILE) == [("adversarial", "iteration", s, shown[s]) for s in (0, 1, 2)]


@pytest.mark.slow
def test_training_shows_samples_at_each_evaluation_once_across_a_resume(tmp_path: Path, ray_local) -> None:
    Oracle.random(SMALL, seed=3).save_npz(tmp_path / "small.npz")
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(SMALL).state_dict(),
                                                 "generator_config": SMALL.__dict__})
    run_dir = tmp_path / "run"
    assert main(["train", "--preset", "smoke", "--oracle-params", str(tmp_path / "small.npz"), "--generator-checkpoint",
                 str(tmp_path / "mle.pt"), "--run-dir", str(run_dir), "--batches", "2", "--no-progress",
                 "--device", "cpu"]) == 0
    with (run_dir / SAMPLES_FILE).open("a") as stream:
        stream.write("== adversarial iteration 3 ==\n  1 2")  # a crash after the checkpoint of batch 2
    assert main(["train", "--resume", str(run_dir), "--batches", "3", "--no-progress"]) == 0
    blocks = read_samples(run_dir / SAMPLES_FILE)
    assert [(phase, name, step) for phase, name, step, _ in blocks] == [
        ("adversarial", "iteration", i) for i in range(4)]  # the smoke preset evaluates every batch
    for _, _, _, lines in blocks:
        assert len(lines) == NUM_SHOWN_SAMPLES
        assert all(len(line.split()) == SMALL.seq_len for line in lines)
    assert_shown_in_tensorboard(run_dir, blocks)
