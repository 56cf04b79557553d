"""MLE pretraining learns, writes its metrics, plot and a versioned checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import SMALL

from seqgan_rl.config import PRESETS, PretrainConfig, get_preset
from seqgan_rl.data.oracle_data import Dataset, load_dataset, sample_oracle_data
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.mle import make_generator_optimizer, pretrain_mle, run_pretraining
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.storage.checkpoint import load_checkpoint, save_checkpoint


def test_short_mle_run_lowers_nll_oracle(small_oracle: Oracle) -> None:
    config = PretrainConfig(epochs=6, eval_every=3, num_eval_samples=2000, batch_size=32, lr=0.01)
    train, test = sample_oracle_data(small_oracle, 1500, 500, seed=0)
    data = Dataset(train, test, SMALL.vocab_size, small_oracle, "small oracle")
    generator = Generator(GeneratorConfig(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len))
    records = pretrain_mle(generator, data, config, progress=False)
    assert [r["epoch"] for r in records] == [0, 3, 6]
    first, last = records[0], records[-1]
    assert last["eval/nll_oracle"] < first["eval/nll_oracle"] - 0.3
    assert last["eval/nll_test"] < first["eval/nll_test"] - 0.3
    assert last["train/nll"] < records[1]["train/nll"]


def test_run_pretraining_writes_run_dir(tmp_path: Path, small_oracle: Oracle) -> None:
    small_oracle.save_npz(tmp_path / "oracle.npz")
    config = get_preset("smoke").with_overrides(num_train=300, num_valid=100, num_eval_samples=200, epochs=2)
    summary = run_pretraining(config, tmp_path / "run", oracle_params=tmp_path / "oracle.npz", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1, 2]
    assert summary["nll_oracle"] == lines[-1]["eval/nll_oracle"]
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = load_checkpoint(tmp_path / "run" / "checkpoint.pt", "mle")
    assert record["epoch"] == 2 and record["config"]["epochs"] == 2

    # the checkpoint holds the trained weights: the same training redone in memory, bit for bit
    torch.manual_seed(config.seed)
    data = load_dataset(config, None, tmp_path / "oracle.npz")
    trained = Generator(GeneratorConfig(**record["generator_config"]))
    initial = {k: v.clone() for k, v in trained.state_dict().items()}
    pretrain_mle(trained, data, config, progress=False, optimizer=make_generator_optimizer(trained, config.lr))
    for name, value in trained.state_dict().items():
        assert torch.equal(record["generator"][name], value), name
        assert not torch.equal(initial[name], value), f"{name} was not trained"
    restored = Generator(GeneratorConfig(**record["generator_config"]), init_std=None)
    restored.load_state_dict(record["generator"])
    assert restored.nll(data.valid) == pytest.approx(summary["nll_test"], rel=1e-6)  # the logged NLL-test


def test_same_seed_same_result(small_oracle: Oracle) -> None:
    config = PretrainConfig(epochs=1, eval_every=1, num_eval_samples=100, batch_size=64)
    train, test = sample_oracle_data(small_oracle, 200, 50, seed=0)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        generator = Generator(GeneratorConfig(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len))
        data = Dataset(train, test, SMALL.vocab_size, small_oracle, "small")
        results.append(pretrain_mle(generator, data, config, progress=False)[-1])
    for key in ("train/nll", "eval/nll_oracle", "eval/nll_test"):
        assert results[0][key] == results[1][key]


@pytest.mark.parametrize(
    ("override", "message"),
    [({"batch_size": 0}, "batch_size must be > 0"), ({"lr": -1.0}, "lr must be > 0"),
     ({"epochs": -2}, "epochs must be > 0"), ({"bogus": 1}, "unknown config field")],
)
def test_impossible_configs(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PRESETS["paper"].with_overrides(**override)


def test_unknown_preset() -> None:
    with pytest.raises(ConfigError, match="known presets: paper, smoke"):
        get_preset("huge")


def test_checkpoint_versioning(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "a.pt", "mle", {"x": torch.ones(2)})
    assert torch.equal(load_checkpoint(tmp_path / "a.pt", "mle")["x"], torch.ones(2))
    with pytest.raises(DataError, match="a 'mle' checkpoint, expected 'seqgan'"):
        load_checkpoint(tmp_path / "a.pt", "seqgan")
    torch.save({"format": "seqgan-rl-checkpoint", "version": 99, "kind": "mle"}, tmp_path / "old.pt")
    with pytest.raises(DataError, match="version 99"):
        load_checkpoint(tmp_path / "old.pt", "mle")
    torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(DataError, match="not a seqgan-rl checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt", "mle")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "a.pt").read_bytes()[:50])
    with pytest.raises(DataError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt", "mle")
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "none.pt", "mle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "cut.pt", "foreign.pt", "old.pt"]


def test_curves_put_each_quantity_on_an_axis_of_its_own(tmp_path: Path) -> None:
    """A training run's loss (~4,000) never shares an axis with NLL (~9): one panel per unit."""
    from seqgan_rl.evaluation.metrics_log import curve_panels, plot_curves

    records = [{"iteration": 0, "eval/nll_oracle": 9.06, "eval/nll_test": 9.05, "train/d_accuracy": 0.53}]
    records += [{"iteration": i, "train/policy_loss": 4000.0 - i, "train/d_accuracy": 0.5 + i / 100,
                 "train/mean_q": 0.45, "train/kl_to_mle": 0.01 * i, "time/iteration_s": 8.0,
                 **({"eval/nll_oracle": 9.0 - i / 100, "eval/nll_test": 9.1} if i % 2 == 0 else {})}
                for i in range(1, 5)]
    panels = {title: (unit, keys) for title, unit, keys in curve_panels(records, "iteration")}
    assert panels["Likelihood"] == ("nats per token", ["eval/nll_oracle", "eval/nll_test"])
    assert panels["Discriminator"] == ("probability", ["train/d_accuracy", "train/mean_q"])
    assert set(panels) == {"Likelihood", "Discriminator", "Distance from the MLE generator", "Time"}
    assert all("train/policy_loss" not in keys for _, keys in panels.values())
    mle = [{"epoch": 0, "eval/nll_oracle": 11.4}, {"epoch": 5, "train/nll": 6.1, "time/epoch_s": 2.5}]
    assert [title for title, _, _ in curve_panels(mle, "epoch")] == ["Likelihood", "Time"]
    assert plot_curves(records, tmp_path / "curves.png", x_key="iteration").read_bytes()[:4] == b"\x89PNG"
