"""Scheduled sampling (Bengio et al., 2015): what the MLE step feeds the model, and the schedules."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from conftest import SMALL

from seqgan_rl.config import PRESETS, SCHEDULED_SAMPLING, PretrainConfig
from seqgan_rl.data.oracle_data import Dataset
from seqgan_rl.errors import ConfigError
from seqgan_rl.mle import pretrain_mle, sampling_probability
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle


def real_tokens(rows: int = 32) -> torch.Tensor:
    return torch.randint(0, SMALL.vocab_size, (rows, SMALL.seq_len), generator=torch.Generator().manual_seed(1))


def test_probability_zero_is_teacher_forcing_bit_for_bit() -> None:
    generator, tokens = Generator(SMALL), real_tokens()
    rng = torch.Generator().manual_seed(0)
    before = rng.get_state()
    loss = generator.scheduled_sampling_loss(tokens, 0.0, generator=rng)
    loss.backward()
    grads = [p.grad.clone() for p in generator.parameters()]
    generator.zero_grad()
    expected = generator.mle_loss(tokens)
    expected.backward()
    assert loss.item() == expected.item()
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, generator.parameters()))
    assert torch.equal(rng.get_state(), before)  # no coin and no draw at all

    # the step-by-step pass itself, with p = 0, feeds the real tokens and computes the same states
    hidden, fed = generator.scheduled_sampling_pass(tokens, 0.0, generator=rng)
    assert torch.equal(fed, generator._shifted_inputs(tokens))
    torch.testing.assert_close(hidden, generator.hidden_states(tokens), rtol=1e-5, atol=1e-6)


def test_probability_one_feeds_only_the_models_own_tokens() -> None:
    generator, tokens = Generator(SMALL), real_tokens()
    with torch.no_grad():  # a near-deterministic model: its own sample is its argmax
        generator.output.weight.mul_(1e4)
    hidden, fed = generator.scheduled_sampling_pass(tokens, 1.0, generator=torch.Generator().manual_seed(0))
    own = fed[:, 1:]  # what was fed after the start token
    assert torch.equal(fed[:, 0], generator.start_tokens(len(tokens)))
    logits, _ = generator(own)  # teacher forcing on the fed tokens: logits[:, t] predicts own[:, t]
    assert torch.equal(logits.argmax(-1), own)  # every input was the model's own choice given what it was fed
    assert (own != tokens[:, :-1]).float().mean() > 0.9  # not the real tokens
    padded = torch.cat([own, tokens[:, -1:]], dim=1)
    torch.testing.assert_close(hidden, generator.hidden_states(padded), rtol=1e-5, atol=1e-5)
    loss = generator.scheduled_sampling_loss(tokens, 1.0, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert generator.embedding.weight.grad.abs().sum() > 0  # the loss trains the model through what it fed


def test_a_probability_between_mixes_real_and_own_tokens_at_that_rate() -> None:
    generator, tokens = Generator(SMALL), real_tokens(400)
    with torch.no_grad():
        generator.output.weight.mul_(1e4)  # its own tokens: its argmax, which rarely equals the random real one
    _, fed = generator.scheduled_sampling_pass(tokens, 0.3, generator=torch.Generator().manual_seed(0))
    own_rate = (fed[:, 1:] != tokens[:, :-1]).float().mean().item()
    assert own_rate == pytest.approx(0.3 * (1 - 1 / SMALL.vocab_size), abs=0.03)


@pytest.mark.parametrize("schedule", SCHEDULED_SAMPLING[1:])
def test_each_schedule_grows_to_its_final_probability(schedule: str) -> None:
    config = replace(PRESETS["paper"], scheduled_sampling=schedule, ss_final=0.25)
    probabilities = [sampling_probability(config, epoch) for epoch in range(1, config.epochs + 1)]
    assert all(0 <= a <= b for a, b in zip(probabilities, probabilities[1:]))
    assert probabilities[-1] == pytest.approx(0.25, abs=1e-9)
    assert probabilities[0] < 0.05
    steps = [b - a for a, b in zip(probabilities, probabilities[1:])]
    if schedule == "linear":
        assert all(math.isclose(step, 0.25 / config.epochs) for step in steps)
    elif schedule == "exponential":  # epsilon = k^e: the largest steps come first
        assert steps[0] > steps[-1]
    else:  # inverse sigmoid: the start of an S-curve (its middle is at p = 0.5): slow at first
        assert steps[-1] > 4 * steps[0]
    assert sampling_probability(replace(config, scheduled_sampling="none"), config.epochs) == 0.0


def test_schedule_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="scheduled_sampling must be one of"):
        PretrainConfig(scheduled_sampling="cosine").validate()
    with pytest.raises(ConfigError, match=r"ss_final must be in \[0, 1\]"):
        PretrainConfig(ss_final=1.5).validate()


def test_mle_with_a_zero_schedule_trains_the_same_weights_as_teacher_forcing() -> None:
    oracle = Oracle.random(SMALL, seed=3)
    data = Dataset(oracle.sample(256, generator=torch.Generator().manual_seed(0)),
                   oracle.sample(64, generator=torch.Generator().manual_seed(1)), SMALL.vocab_size, oracle, "test")
    base = PretrainConfig(epochs=2, eval_every=2, num_eval_samples=64, batch_size=32)
    weights = []
    for config in (base, replace(base, scheduled_sampling="linear", ss_final=0.0)):
        torch.manual_seed(0)
        generator = Generator(SMALL)
        pretrain_mle(generator, data, config, progress=False)
        weights.append([p.detach().clone() for p in generator.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))

    torch.manual_seed(0)
    generator = Generator(SMALL)
    records = pretrain_mle(generator, data, replace(base, scheduled_sampling="linear", ss_final=0.5), progress=False)
    assert records[-1]["train/ss_probability"] == pytest.approx(0.5)
    assert not all(torch.equal(a, p) for a, p in zip(weights[0], generator.parameters()))
