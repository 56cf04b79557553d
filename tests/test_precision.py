"""``--precision exact|fast``: what it sets, where the hardware falls back, and the tolerances it keeps.

The fast mode's parts have their own tolerance tests: bf16 d-steps learn like fp32
(``test_discriminator.test_bf16_training_tracks_fp32``), int8 scores stay within 0.015 of fp32
(``test_discriminator.test_int8_precision_stays_close_to_fp32_at_paper_size``). Here: the Monte
Carlo Q of the fast mode stays within the Monte Carlo noise of fp32's, from the same uniforms.
The generator's sampling, rollouts and MLE step are float32 in both modes (``seqgan_rl.models.precision``
says why); the sampler's exactness is ``test_sampling``'s chi-square test.
"""

from __future__ import annotations

import math

import pytest
import torch

from seqgan_rl.config import FAST_MIN_FEATURES, PRECISION_PARTS, TRAIN_PRESETS, TrainConfig, discriminator_features
from seqgan_rl.config.options import flat_dict
from seqgan_rl.distributed.devices import score_precision_on, train_precision_on
from seqgan_rl.errors import ConfigError
from seqgan_rl.experiment.run import precision_report
from seqgan_rl.mc import MonteCarloQ
from seqgan_rl.models import precision
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator, GeneratorConfig


def precisions(config: TrainConfig) -> tuple[str | None, str | None]:
    """The precision of the d-steps and of the Monte Carlo scoring."""
    return config.discriminator.d_precision, config.rollouts.score_precision


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_precision_sets_each_part_left_unset(mode: str) -> None:
    resolved = TRAIN_PRESETS["paper"].with_overrides(precision=mode).resolved()
    assert {name: flat_dict(resolved)[name] for name in PRECISION_PARTS[mode]} == PRECISION_PARTS[mode]
    assert PRECISION_PARTS["exact"] == {"d_precision": "fp32", "score_precision": "fp32"}
    assert PRECISION_PARTS["fast"] == {"d_precision": "bf16", "score_precision": "int8"}


def test_fast_keeps_a_narrow_discriminator_in_fp32() -> None:
    """Below FAST_MIN_FEATURES bf16 and int8 are slower than fp32: fast leaves such a discriminator exact,
    says so in the run's report, and a part asked for on its own is still given."""
    cpu = TRAIN_PRESETS["cpu"].with_overrides(precision="fast")
    assert discriminator_features(cpu.discriminator.cnn_sizes) == 430 < FAST_MIN_FEATURES
    assert precisions(cpu.resolved()) == ("fp32", "fp32")
    assert "430 features" in precision_report(cpu.resolved())["note"]
    assert "note" not in precision_report(TRAIN_PRESETS["paper"].with_overrides(precision="fast").resolved())
    wide = cpu.with_overrides(discriminator={"num_filters": [100] * 12})  # 1,200 features
    assert precisions(wide.resolved()) == ("bf16", "int8")
    assert cpu.with_overrides(d_precision="bf16").resolved().discriminator.d_precision == "bf16"


def test_a_part_set_on_its_own_overrides_the_mode() -> None:
    resolved = TrainConfig().with_overrides(precision="fast", d_precision="fp32").resolved()
    assert precisions(resolved) == ("fp32", "int8")
    assert TrainConfig().resolved().precision == "exact"  # the default stays exact


def test_unknown_precision_is_named() -> None:
    with pytest.raises(ConfigError, match="precision must be one of 'exact', 'fast', got 'half'"):
        TrainConfig().with_overrides(precision="half")


def test_bf16_d_steps_fall_back_to_fp32_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    # this host's own answer, whatever it is, follows its CPU flags
    expected = "bf16" if precision.cpu_flags() & {"avx512_bf16", "amx_bf16"} else "fp32"
    assert train_precision_on(cpu, "bf16", "a test") == expected
    # a CPU with AVX2 only (no bf16 dot products): the d-steps run in fp32
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert not precision.cpu_has_bf16()
    assert train_precision_on(cpu, "bf16", "a test on an AVX2 CPU") == "fp32"
    assert train_precision_on(cpu, "fp32", "a test on an AVX2 CPU") == "fp32"


def test_int8_scoring_is_a_cpu_path() -> None:
    assert score_precision_on(torch.device("cpu"), "int8", "a test") == "int8"
    assert score_precision_on(torch.device("cuda"), "int8", "a test on a GPU") == "fp32"


def test_fast_monte_carlo_q_is_within_monte_carlo_noise_of_exact() -> None:
    """Same rollouts (same uniforms), int8 scoring: every Q_t moves by less than its own Monte Carlo
    standard error (the spread of its N rollout scores / sqrt(N)), at the paper's sizes."""
    torch.manual_seed(0)
    vocab, length, batch, rollouts = 5000, 20, 16, 16
    policy = Generator(GeneratorConfig(vocab_size=vocab, seq_len=length)).eval()
    discriminator = Discriminator(vocab, length).eval()
    sequences = policy.sample(batch, generator=torch.Generator().manual_seed(1))
    engine = MonteCarloQ(num_rollouts=rollouts)
    uniforms = engine.draw_uniforms(batch, length, generator=torch.Generator().manual_seed(2))

    q = {}
    for mode, score in (("exact", "fp32"), ("fast", "int8")):
        discriminator.score_precision = score
        q[mode] = engine(sequences, policy, discriminator, uniforms=uniforms)  # (B, T)
    discriminator.score_precision = "fp32"
    scores = discriminator.score(engine.rollouts(sequences, policy, uniforms).reshape(-1, length))
    standard_error = (scores.view(length - 1, batch, rollouts).std(2) / math.sqrt(rollouts)).t()  # (B, T − 1)

    moved = (q["fast"] - q["exact"]).abs()
    assert (moved[:, :-1] <= standard_error).all(), float((moved[:, :-1] / standard_error).max())
    assert moved[:, -1].max() <= 0.015  # the finished sequences: int8's stated tolerance
    assert moved.max() > 0  # and int8 really ran
