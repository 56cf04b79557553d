"""The reference reward models, the reward transforms, SeqGAN's baselines and the information measure.

Each is checked against its formula computed directly:

* ``ideal`` = p_oracle / (p_oracle + p_G) from float64 log-likelihoods of both models, for the
  generator weights it was last sent, with another model's density in p_oracle's place (``ideal_density``);
* ``constant``: Q_t is the constant for every token, and one SeqGAN update under it is one Adam step
  (lr 0.01, global-norm clip 5) on −Σ_t log G(y_t | y_<t)·c, the control's update;
* each transform of D, the MaliGAN normalisation, the batch-mean and moving-average baselines;
* Spearman's rank correlation and the accuracies of ``discriminator_information``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SMALL
from test_learning import TINY, episodes_of, learner_batch, q_column, tiny_learner, tiny_run  # noqa: F401

from seqgan_rl.config import TrainConfig
from seqgan_rl.distributed.rollout_workers import RolloutPool
from seqgan_rl.distributed.weights import module_weights
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.evaluation.information import discriminator_information, spearman
from seqgan_rl.mc import MonteCarloQ
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.rewards import (
    IdealDiscriminator,
    RewardModelSpec,
    probability_logits,
    transform_logits,
    transformed_scorer,
)


def sequence_log_likelihood(model: Generator, tokens: torch.Tensor) -> torch.Tensor:
    """log p(y) [B] from the full float64 logits, the textbook way."""
    copy = Generator(model.config, init_std=None).double()
    copy.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    logits, _ = copy(tokens)  # (B, T, V)
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(dim=1)


def test_ideal_equals_the_optimal_discriminator_computed_in_float64() -> None:
    oracle = Oracle.random(SMALL, seed=3)
    generator = Generator(SMALL)
    tokens = torch.cat([oracle.sample(16), generator.sample(16)])  # (32, T): real and generated
    ideal = IdealDiscriminator(oracle, SMALL)  # its own generator differs until it is sent G's weights
    before = ideal.logit(tokens)
    ideal.load_generator_weights(module_weights(generator, 1)["state"])
    log_oracle, log_generator = sequence_log_likelihood(oracle, tokens), sequence_log_likelihood(generator, tokens)
    expected = torch.exp(log_oracle - torch.logaddexp(log_oracle, log_generator))  # p_o / (p_o + p_G)
    torch.testing.assert_close(ideal.logit(tokens).double(), log_oracle - log_generator, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(ideal.score(tokens).double(), expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(before, ideal.logit(tokens))  # it scores against the generator it was sent


def test_ideal_noise_is_a_fixed_error_of_the_stated_size_added_to_the_exact_logit() -> None:
    oracle = Oracle.random(SMALL, seed=3)
    generator = Generator(SMALL)
    weights = module_weights(generator, 1)["state"]
    tokens = torch.cat([oracle.sample(256), generator.sample(256)])  # (512, T)
    exact = IdealDiscriminator(oracle, SMALL)
    noisy = IdealDiscriminator(oracle, SMALL, noise=2.0, noise_seed=7)
    for model in (exact, noisy):
        model.load_generator_weights(weights)
    error = (noisy.logit(tokens) - exact.logit(tokens)).double()
    table = torch.randn((SMALL.seq_len, SMALL.vocab_size), generator=torch.Generator().manual_seed(7)) * (
        2.0 / SMALL.seq_len ** 0.5)
    expected = table.double()[torch.arange(SMALL.seq_len), tokens].sum(dim=1)  # e(y) = Σ_t E[t, y_t]
    torch.testing.assert_close(error, expected, rtol=1e-4, atol=1e-3)
    assert 1.5 < float(error.std()) < 2.5  # Var e(y) = σ² for distinct tokens per position
    torch.testing.assert_close(noisy.logit(tokens), noisy.logit(tokens))  # the same error at every call
    again = IdealDiscriminator(oracle, SMALL, noise=2.0, noise_seed=7)
    again.load_generator_weights(weights)
    torch.testing.assert_close(again.logit(tokens), noisy.logit(tokens))  # every scorer of a run: one error
    other = IdealDiscriminator(oracle, SMALL, noise=2.0, noise_seed=8)
    other.load_generator_weights(weights)
    assert not torch.allclose(other.logit(tokens), noisy.logit(tokens))
    assert "error" not in noisy.state_dict()  # never sent with the generator's weights
    with pytest.raises(ConfigError, match="ideal_noise=0.5 .*reward_model='discriminator'"):
        TrainConfig().with_overrides(ideal_noise=0.5).validate()


def test_ideal_refuses_data_without_an_oracle(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="oracle.npz not found.*text corpus"):
        RewardModelSpec("ideal", str(tmp_path / "train.parquet"), SMALL.vocab_size, SMALL.seq_len) \
            .ideal_discriminator(SMALL)


def test_ideal_density_puts_another_language_model_in_the_oracles_place(tmp_path: Path) -> None:
    """``ideal_density``: D*'s logit is log q − log p_G with q the saved model (of its own sizes), not the data's
    oracle; a missing file, a relative path or another reward model is one error."""
    oracle, generator = Oracle.random(SMALL, seed=3), Generator(SMALL)
    density = Oracle.random(SMALL.__class__(**{**asdict(SMALL), "hidden_dim": 5}), seed=4)
    density.save_npz(tmp_path / "q.npz")
    oracle.save_npz(tmp_path / "oracle.npz")
    options = TrainConfig().with_overrides(reward_model="ideal", ideal_density=str(tmp_path / "q.npz")).validate()
    spec = RewardModelSpec.of_run(options, str(tmp_path / "train.parquet"), SMALL.vocab_size, SMALL.seq_len)
    ideal = spec.ideal_discriminator(SMALL)
    ideal.load_generator_weights(module_weights(generator, 1)["state"])
    tokens = torch.cat([oracle.sample(16), generator.sample(16)])
    expected = sequence_log_likelihood(density, tokens) - sequence_log_likelihood(generator, tokens)
    torch.testing.assert_close(ideal.logit(tokens).double(), expected, rtol=1e-5, atol=1e-3)
    with pytest.raises(DataError, match="ideal_density: .*absent.npz not found"):
        RewardModelSpec("ideal", str(tmp_path / "train.parquet"), SMALL.vocab_size, SMALL.seq_len,
                        ideal_density=str(tmp_path / "absent.npz")).ideal_discriminator(SMALL)
    with pytest.raises(ConfigError, match="ideal_density='q.npz' must be an absolute path"):
        TrainConfig().with_overrides(reward_model="ideal", ideal_density="q.npz").validate()
    with pytest.raises(ConfigError, match="is the density of the ideal discriminator; reward_model='ratio'"):
        TrainConfig().with_overrides(reward_model="ratio", ideal_density=str(tmp_path / "q.npz")).validate()


def test_each_transform_equals_its_formula() -> None:
    p = torch.tensor([0.01, 0.3, 0.5, 0.9, 0.999], dtype=torch.float64)
    x = probability_logits(p)
    expected = {"d": p, "2d-1": 2 * p - 1, "log_d": torch.log(p), "maligan": p / (1 - p)}
    for name, value in expected.items():
        torch.testing.assert_close(transform_logits(x, name).double(), value, rtol=1e-6, atol=1e-7, msg=name)
    # from logits, where D itself has saturated in float32: log D and D / (1 − D) stay exact
    saturated = torch.tensor([-60.0, -30.0, 40.0])
    assert torch.sigmoid(saturated)[2] == 1.0
    torch.testing.assert_close(transform_logits(saturated, "log_d").double(),
                               torch.tensor([-60.0, -30.0, -4.248e-18], dtype=torch.float64), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(transform_logits(saturated, "maligan"), torch.exp(saturated))
    with pytest.raises(ConfigError, match="unknown reward_transform"):
        transform_logits(x, "sqrt_d")


def test_a_transformed_discriminator_keeps_its_shared_prefix_path_and_transforms_each_completion() -> None:
    discriminator = Discriminator(SMALL.vocab_size, SMALL.seq_len, emb_dim=8, filter_sizes=(1, 2, 3),
                                  num_filters=(4, 4, 4)).eval()
    policy = Generator(SMALL).eval()
    sequences = policy.sample(3)
    engine = MonteCarloQ(4)
    rollouts = engine.rollouts(sequences, policy, engine.draw_uniforms(3, SMALL.seq_len))  # (T−1, B, N, T)
    scorer = transformed_scorer(discriminator, "log_d")
    direct = torch.log(discriminator.score(rollouts.reshape(-1, SMALL.seq_len)).double().clamp(min=1e-7))
    torch.testing.assert_close(scorer.score_prefix_rollouts(sequences, rollouts).reshape(-1).double(), direct,
                               rtol=1e-4, atol=1e-5)
    assert transformed_scorer(discriminator, "d") is discriminator  # the paper's reward: untouched


def constant_pool(value: float, transform: str = "d") -> RolloutPool:
    spec = RewardModelSpec("constant", "unused.parquet", SMALL.vocab_size, SMALL.seq_len, constant_reward=value)
    pool = RolloutPool(0, SMALL, {}, num_rollouts=4, reward_model=spec, reward_transform=transform)
    pool.sync(policy=module_weights(Generator(SMALL), 1))
    return pool


def test_the_constant_reward_is_q_for_every_token_through_the_monte_carlo_search() -> None:
    sequences = Generator(SMALL).sample(5).numpy()
    assert np.all(constant_pool(0.3).compute_q(sequences) == np.float32(0.3))
    np.testing.assert_allclose(constant_pool(0.3, "2d-1").compute_q(sequences), -0.4, rtol=1e-6)


def test_one_seqgan_update_under_the_constant_reward_is_the_controls_update(ray_local, tiny_run) -> None:  # noqa: F811
    """The Learner's step with ``reward_model=constant`` equals one Adam step (lr 0.01, global-norm clip 5) on
    −Σ_t log G(y_t | y_<t)·c taken directly from the generator: the sharpening control's update."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    value = 0.45
    options = TrainConfig().with_overrides(reward_model="constant", constant_reward=value, num_rollouts=4,
                                           discriminator={})
    learner, module = tiny_learner(options, tiny_run)
    reference = Generator(TINY, init_std=None)
    reference.load_state_dict(module.generator.state_dict())
    piece = learner.monte_carlo_connector()
    piece.update_rollout_policy(learner.module)
    tokens = torch.randint(0, TINY.vocab_size, (6, TINY.seq_len), generator=torch.Generator().manual_seed(2))
    columns: dict = {}
    piece(rl_module=learner.module, batch=columns, episodes=episodes_of(tokens, torch.zeros(6, TINY.seq_len)))
    q = torch.as_tensor(q_column(columns))
    assert torch.all(q == value)
    batch = learner_batch(tokens, q, torch.ones_like(q, dtype=torch.bool))
    losses = learner.compute_losses(fwd_out={DEFAULT_MODULE_ID: module.forward_train(batch)},
                                    batch={DEFAULT_MODULE_ID: batch})
    learner.apply_gradients(learner.postprocess_gradients(learner.compute_gradients(losses)))

    optimizer = torch.optim.Adam(reference.parameters(), lr=0.01)
    loss = -(reference.log_prob(tokens) * value).sum()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 5.0)
    optimizer.step()
    for name, parameter in reference.named_parameters():
        torch.testing.assert_close(module.generator.state_dict()[name], parameter.detach(), rtol=1e-4, atol=1e-6,
                                   msg=name)


def seqgan_piece(**options: object):
    from seqgan_rl.rllib.monte_carlo import MonteCarloQConnector
    from seqgan_rl.rllib.settings import SeqGANSettings

    settings = SeqGANSettings(TrainConfig().with_overrides(**options).resolved(), "unused.parquet", asdict(SMALL))
    return MonteCarloQConnector(settings=settings)


def test_baselines_subtract_the_batch_mean_or_its_moving_average_at_each_position() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([SMALL.seq_len, SMALL.seq_len - 3, SMALL.seq_len])
    valid = np.arange(SMALL.seq_len)[None, :] < lengths[:, None]
    first, second = rng.random((3, SMALL.seq_len)), rng.random((3, SMALL.seq_len))

    def means(q: np.ndarray) -> np.ndarray:
        return np.array([q[valid[:, t], t].mean() for t in range(SMALL.seq_len)])

    piece = seqgan_piece(baseline="batch_mean")
    np.testing.assert_allclose(piece._baselined(first, lengths), first - means(first))
    decay = 0.7
    piece = seqgan_piece(baseline="ema", baseline_decay=decay)
    np.testing.assert_allclose(piece._baselined(first, lengths), first - means(first))  # b starts at the mean
    np.testing.assert_allclose(piece._baselined(second, lengths), second - means(first))
    expected = decay * means(first) + (1 - decay) * means(second)
    restored = seqgan_piece(baseline="ema", baseline_decay=decay)
    restored.set_state(piece.get_state())  # the moving average comes back from a checkpoint
    np.testing.assert_allclose(restored._baseline, expected)
    assert seqgan_piece()._baselined(first, lengths) is first  # none: Q itself
    prefix = seqgan_piece(baseline="prefix")._baselined(first, lengths)
    np.testing.assert_allclose(prefix[:, 1:], first[:, 1:] - first[:, :-1])  # Q_t − Q_{t−1}
    np.testing.assert_allclose(prefix[:, 0], first[:, 0] - first[:, 0].mean())


def test_maligan_weights_have_mean_one_at_each_position() -> None:
    from seqgan_rl.rewards import maligan_normalised

    rng = np.random.default_rng(1)
    q = np.exp(rng.normal(-30, 5, size=(4, SMALL.seq_len)))  # D / (1 − D) of a sharp discriminator
    valid = np.ones_like(q, dtype=bool)
    valid[2, -2:] = False
    weights = maligan_normalised(q, valid)
    for t in range(SMALL.seq_len):
        assert weights[valid[:, t], t].mean() == pytest.approx(1.0)
        np.testing.assert_allclose(weights[:, t] / weights[0, t], q[:, t] / q[0, t])


@pytest.mark.parametrize(("options", "message"), [
    ({"algo": "ppo", "baseline": "ema"}, "baseline='ema' is for algo=seqgan"),
    ({"algo": "impala", "reward_transform": "maligan"}, "'maligan' is MaliGAN's estimator for algo=seqgan"),
    ({"algo": "ppo", "reward": "terminal", "reward_transform": "log_d"}, "reward=terminal has none"),
    ({"algo": "appo", "reward": "terminal", "reward_model": "ideal"}, "reward=terminal skips it"),
])
def test_a_transform_or_baseline_the_algorithm_cannot_use_is_one_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig().with_overrides(**options).resolved().validate()


def test_spearman_and_the_accuracies_of_the_information_measure() -> None:
    x = np.array([0.1, 0.4, 0.4, 2.0, -1.0])
    assert spearman(x, 3 * x + 1) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert spearman(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)
    assert np.isnan(spearman(np.full(5, 0.45), x))  # a constant reward ranks nothing
    is_real = np.array([True, True, False, False])
    log_ratio = np.array([5.0, -1.0, -4.0, -2.0])  # D* errs on the second real sequence
    measure = discriminator_information(np.array([2.0, 1.0, -3.0, 0.5]), is_real, log_ratio)
    assert measure == {"eval/d_accuracy": 0.75, "eval/ideal_accuracy": 0.75,
                       "eval/d_spearman": pytest.approx(spearman(np.array([2.0, 1.0, -3.0, 0.5]), log_ratio)),
                       "eval/d_spearman_generated": pytest.approx(1.0),  # the two fakes in D*'s order
                       "eval/d_slope": pytest.approx(1.75), "eval/d_error_std": pytest.approx(0.0)}  # 3.5 / 2
    backwards = discriminator_information(np.array([2.0, 1.0, 0.5, -3.0]), is_real, log_ratio)
    assert backwards["eval/d_spearman_generated"] == pytest.approx(-1.0)  # the fakes reversed: nothing to follow
    assert backwards["eval/d_spearman"] > 0  # while on the mixture D still looks informative
    assert discriminator_information(log_ratio, is_real, log_ratio)["eval/d_spearman"] == pytest.approx(1.0)


def test_the_slope_and_error_of_a_logit_against_the_ideal_one() -> None:
    """logit = 0.3 · log_ratio + r over the generated sequences (r orthogonal to log_ratio, mean 0): the slope is
    0.3 and the error's standard deviation r's, whatever the real sequences score."""
    log_ratio = np.random.default_rng(0).normal(0.0, 5.0, 400)
    noise = np.random.default_rng(1).normal(0.0, 2.0, 400)
    centred = log_ratio - log_ratio.mean()
    residual = noise - noise.mean() - centred * (centred @ noise) / (centred @ centred)  # orthogonal to log_ratio
    is_real = np.arange(800) < 400
    logits = np.concatenate([np.full(400, 9.0), 1.5 + 0.3 * log_ratio + residual])
    measure = discriminator_information(logits, is_real, np.concatenate([np.zeros(400), log_ratio]))
    assert measure["eval/d_slope"] == pytest.approx(0.3)
    assert measure["eval/d_error_std"] == pytest.approx(float(np.std(residual)))
    constant = discriminator_information(np.full(800, 0.4), is_real, np.concatenate([np.zeros(400), log_ratio]))
    assert constant["eval/d_slope"] == 0 and constant["eval/d_error_std"] == 0  # a constant follows nothing
    flat = discriminator_information(logits, is_real, np.ones(800))
    assert np.isnan(flat["eval/d_slope"]) and np.isnan(flat["eval/d_error_std"])


def exact_nll_oracle(generator: Generator, oracle: Oracle) -> float:
    """E_{y~G}[−log p_oracle(y)] / T over every sequence of the vocabulary (no sampling noise)."""
    tokens = torch.cartesian_prod(*[torch.arange(generator.vocab_size)] * generator.seq_len)  # (V^T, T)
    with torch.no_grad():
        p_generator = generator.log_prob(tokens).sum(dim=1).exp()
        return float((p_generator * -oracle.log_prob(tokens).sum(dim=1)).sum()) / generator.seq_len


@pytest.mark.slow
def test_ppo_under_the_ideal_discriminator_lowers_nll_oracle(ray_local, tmp_path: Path) -> None:
    """PPO with the reward log D* (the reverse KL to the oracle, as a return) on a tiny oracle moves a fresh
    generator toward it: the exact NLL-oracle falls by a stated margin."""
    from seqgan_rl.data.tables import write_token_table
    from seqgan_rl.experiment.run import generator_from_algorithm
    from seqgan_rl.rllib.build import build_algorithm_config
    from seqgan_rl.storage.checkpoint import save_checkpoint

    oracle = Oracle.random(TINY, seed=5)
    oracle.save_npz(tmp_path / "oracle.npz")
    write_token_table(tmp_path / "train.parquet", oracle.sample(64).numpy(), TINY.vocab_size)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(TINY).state_dict(),
                                                  "generator_config": asdict(TINY)})
    options = TrainConfig().with_overrides(algo="ppo", reward_model="ideal", reward_transform="log_d",
                                           episodes_per_batch=32, num_rollouts=4, seed=0).resolved()
    algo = build_algorithm_config(options, TINY, str(tmp_path / "mle.pt"), str(tmp_path / "train.parquet"),
                                  discriminator_threads=1).build_algo()
    try:
        before = exact_nll_oracle(generator_from_algorithm(algo, TINY, "cpu"), oracle)
        for _ in range(12):
            algo.train()
        after = exact_nll_oracle(generator_from_algorithm(algo, TINY, "cpu"), oracle)
    finally:
        algo.stop()
    assert before - after >= 0.1, f"NLL-oracle {before:.3f} -> {after:.3f}"
