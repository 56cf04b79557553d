"""The algorithms learn, and SeqGAN's gradient is the paper's: tests that fail when the algorithm is wrong.

* ``test_seqgan_learner_gradient_equals_the_reference``: on a fixed batch of episodes with
  fixed Q, the gradient SeqGAN's Learner computes is the gradient of −Σ_t log G(y_t | y_<t)·Q_t
  taken directly from the core generator in float64: its sign, its scale (a sum over tokens,
  as the original release) and its use of Q.
* ``test_every_algorithm_learns_a_reward_with_a_known_optimum``: the discriminator is set by
  hand to a fixed function whose optimum is known (P(real) ≈ 0.95 when every token of the
  sequence is in a chosen half of the vocabulary, ≈ 0.05 otherwise) and never trained
  (``d_steps=0``); a short run of each of seqgan, ppo, appo and impala on a tiny vocabulary
  must raise the mean reward of fresh samples by a stated margin.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from seqgan_rl.config import TrainConfig
from seqgan_rl.data.tables import write_token_table
from seqgan_rl.distributed.weights import module_weights
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.storage.checkpoint import save_checkpoint

TINY = GeneratorConfig(vocab_size=6, seq_len=3, emb_dim=8, hidden_dim=8)
GOOD_TOKENS = (0, 1, 2)
"""The half of the vocabulary the fixed reward asks for: optimum = every token from here."""
FIXED_D = {"emb_dim": 1, "filter_sizes": (1,), "num_filters": (1,)}
LEARNING_MARGIN = 0.15
"""Mean reward of fresh samples after training minus before, required of every algorithm (start ≈ 0.16)."""


def fixed_reward_discriminator() -> Discriminator:
    """D(y) = sigmoid(3) ≈ 0.95 if every token of y is in ``GOOD_TOKENS``, else sigmoid(−3) ≈ 0.05.

    One width-1 filter whose embedding is 1 on the other tokens: its max over time is 1 when any
    token is outside ``GOOD_TOKENS``; the highway layer carries it through (gate closed) and the
    output turns it into (fake, real) logits (0, 3 − 6·x)."""
    disc = Discriminator(TINY.vocab_size, TINY.seq_len, **FIXED_D)
    with torch.no_grad():
        for parameter in disc.parameters():
            parameter.zero_()
        disc.embedding.weight[:, 0] = torch.tensor([0.0 if v in GOOD_TOKENS else 1.0 for v in range(TINY.vocab_size)])
        disc.convs[0].weight.fill_(1.0)
        disc.highway.bias[disc.num_features:] = -30.0  # gate ≈ 0: y = x
        disc.output.weight[1, 0] = -6.0
        disc.output.bias[1] = 3.0
    return disc.eval()


@pytest.fixture()
def tiny_run(tmp_path: Path) -> tuple[str, str]:
    """Real data (unused by d-steps here, required by the algorithm) and a fresh generator as the MLE start."""
    torch.manual_seed(2)
    generator = Generator(TINY)
    write_token_table(tmp_path / "real.parquet", generator.sample(64).numpy(), TINY.vocab_size)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": generator.state_dict(),
                                                  "generator_config": asdict(TINY)})
    return str(tmp_path / "real.parquet"), str(tmp_path / "mle.pt")


def test_the_fixed_reward_is_what_it_says() -> None:
    disc = fixed_reward_discriminator()
    tokens = torch.cartesian_prod(*[torch.arange(TINY.vocab_size)] * TINY.seq_len)  # every sequence
    good = torch.isin(tokens, torch.tensor(GOOD_TOKENS)).all(dim=1)
    scores = disc.score(tokens)
    assert torch.allclose(scores[good], torch.sigmoid(torch.tensor(3.0)))
    assert torch.allclose(scores[~good], torch.sigmoid(torch.tensor(-3.0)))


def learner_batch(tokens: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> dict:
    """The train batch SeqGAN's Learner gets for whole episodes ``tokens`` [B, T]: observations (prefix so far and
    its length per step), actions, the initial LSTM state, Q [B, T] and the loss mask [B, T]."""
    from ray.rllib.core.columns import Columns

    from seqgan_rl.rllib.monte_carlo import MC_Q

    batch_size, steps = tokens.shape
    prefix = torch.zeros(batch_size, steps, steps, dtype=torch.long)  # (B, T, T): step t sees y_1..y_t-1
    for t in range(steps):
        prefix[:, t, :t] = tokens[:, :t]
    zeros = torch.zeros(batch_size, TINY.hidden_dim)
    return {Columns.OBS: {"prefix": prefix, "length": torch.arange(steps).expand(batch_size, steps)},
            Columns.ACTIONS: tokens, Columns.STATE_IN: {"h": zeros, "c": zeros.clone()}, MC_Q: q,
            Columns.LOSS_MASK: mask}


def tiny_learner(options: TrainConfig, tiny_run: tuple[str, str]) -> tuple[Any, Any]:
    """The run's Learner for ``options`` built in this process (no Ray), and its generator module."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    from seqgan_rl.rllib.build import build_algorithm_config
    from seqgan_rl_envs import TokenGenerationEnv

    real, mle = tiny_run
    config = build_algorithm_config(options.resolved(), TINY, mle, real, discriminator_threads=1)  # a run's start
    env = TokenGenerationEnv(vocab_size=TINY.vocab_size, seq_len=TINY.seq_len, scorer=lambda tokens: 0.5)
    spaces = (env.observation_space, env.action_space)
    learner = config.build_learner(env=None, spaces={"__env__": spaces, DEFAULT_MODULE_ID: spaces})
    learner.build()
    return learner, learner.module[DEFAULT_MODULE_ID]


def test_seqgan_learner_gradient_equals_the_reference(tiny_run) -> None:
    from ray.rllib.core import DEFAULT_MODULE_ID

    options = TrainConfig().with_overrides(discriminator=FIXED_D, grad_clip=1e9)  # no clipping: the raw gradient
    learner, module = tiny_learner(options, tiny_run)

    rng = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, TINY.vocab_size, (5, TINY.seq_len), generator=rng)  # (B, T)
    q = torch.rand(5, TINY.seq_len, generator=rng)  # (B, T), a fixed Q
    mask = torch.ones(5, TINY.seq_len, dtype=torch.bool)
    mask[4, -1] = False  # an episode one token shorter (zero-padded, as RLlib pads it)
    batch = learner_batch(tokens, q, mask)
    losses = learner.compute_losses(fwd_out={DEFAULT_MODULE_ID: module.forward_train(batch)},
                                    batch={DEFAULT_MODULE_ID: batch})
    learner.compute_gradients(losses)
    applied = {name.removeprefix("generator."): p.grad for name, p in module.named_parameters()}

    reference = Generator(TINY, init_std=None).double()
    reference.load_state_dict({k: v.double() for k, v in module.generator.state_dict().items()})
    loss = -(reference.log_prob(tokens) * q.double() * mask).sum()  # −Σ_t log G(y_t | y_<t)·Q_t, summed
    loss.backward()
    assert float(losses[DEFAULT_MODULE_ID]) == pytest.approx(float(loss), rel=1e-5)
    for name, parameter in reference.named_parameters():
        assert applied[name] is not None and float(parameter.grad.abs().max()) > 0, name
        torch.testing.assert_close(applied[name].double(), parameter.grad, rtol=1e-4, atol=1e-6, msg=name)


def mean_reward(algo, samples: int = 2000, seed: int = 7) -> float:
    """Mean fixed reward of fresh samples of the algorithm's current generator."""
    from seqgan_rl.experiment.run import generator_from_algorithm

    generator = generator_from_algorithm(algo, TINY, "cpu")
    tokens = generator.sample(samples, generator=torch.Generator().manual_seed(seed))
    return float(fixed_reward_discriminator().score(tokens).mean())


@pytest.mark.slow
@pytest.mark.parametrize(("algo_name", "iterations", "lr"), [("seqgan", 24, None), ("ppo", 8, 3e-3),
                                                             ("appo", 16, 3e-3), ("impala", 24, 3e-3)])
def test_every_algorithm_learns_a_reward_with_a_known_optimum(ray_local, tiny_run, algo_name: str,
                                                              iterations: int, lr: float | None) -> None:
    """Each algorithm with its own settings, except the step of PPO, APPO and IMPALA: 3e-3 instead of their
    1e-3 (sized for the paper's generator), so that this 6-token generator gets there in a few batches."""
    from seqgan_rl.rllib.build import build_algorithm_config

    real, mle = tiny_run
    options = TrainConfig().with_overrides(
        algo=algo_name, reward="shaped", episodes_per_batch=32, num_rollouts=4, d_steps=0, d_pretrain_rounds=0,
        discriminator=FIXED_D, discriminator_num_cpus=0.5, seed=0, adversarial_lr=lr,
    ).resolved()
    algo = build_algorithm_config(options, TINY, mle, real, discriminator_threads=1).build_algo()
    try:
        algo.set_discriminator_weights(module_weights(fixed_reward_discriminator(), version=1))
        before = mean_reward(algo)
        for _ in range(iterations):
            algo.train()
        after = mean_reward(algo)
    finally:
        algo.stop()
    assert before < 0.3  # the start is far from the optimum (≈ 0.95)
    assert after - before >= LEARNING_MARGIN, f"{algo_name}: mean reward {before:.3f} -> {after:.3f}"


# ------------------------------------------------------------------ the KL penalty toward the MLE generator


def episodes_of(tokens: torch.Tensor, rewards: torch.Tensor) -> list:
    """Whole episodes [B] of ``tokens`` [B, T] with per-step ``rewards`` [B, T] (observations unused here)."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    episodes = []
    for row in range(tokens.shape[0]):
        steps = tokens.shape[1]
        episodes.append(SingleAgentEpisode(observations=[0] * (steps + 1), actions=tokens[row].tolist(),
                                           rewards=rewards[row].tolist(), terminated=True, len_lookback_buffer=0))
    return episodes


def moved_away(module: Any, seed: int = 5) -> None:
    """Perturb the module's generator so it differs from the MLE reference (a non-zero log-ratio)."""
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.generator.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=rng))


def direct_log_probs(generator: Generator, tokens: torch.Tensor) -> torch.Tensor:
    """log G(y_t | y_<t) [B, T] from the full logits, the textbook way (float64)."""
    model = Generator(TINY, init_std=None).double()
    model.load_state_dict({k: v.double() for k, v in generator.state_dict().items()})
    logits, _ = model(tokens)  # (B, T, V)
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def test_kl_penalty_is_the_log_ratio_of_the_two_models(tiny_run) -> None:
    """reward="terminal": each token's reward loses c·(log G − log G_MLE), computed directly from both models."""
    from seqgan_rl.runs import load_generator

    coef = 0.3
    options = TrainConfig().with_overrides(algo="ppo", reward="terminal", discriminator=FIXED_D, kl_coef=coef,
                                           value_warmup_steps=0)
    learner, module = tiny_learner(options, tiny_run)
    moved_away(module)
    piece = learner.monte_carlo_connector()
    rng = torch.Generator().manual_seed(4)
    tokens = torch.randint(0, TINY.vocab_size, (6, TINY.seq_len), generator=rng)  # (B, T)
    rewards = torch.zeros(6, TINY.seq_len)
    rewards[:, -1] = torch.rand(6, generator=rng)  # the discriminator's terminal reward
    episodes = episodes_of(tokens, rewards)
    piece(rl_module=learner.module, batch={}, episodes=episodes)
    reference = load_generator(tiny_run[1], "cpu")
    ratio = direct_log_probs(module.generator, tokens) - direct_log_probs(reference, tokens)  # (B, T)
    assert float(ratio.abs().min()) > 1e-3
    got = torch.tensor([episode.get_rewards() for episode in episodes], dtype=torch.float64)
    torch.testing.assert_close(got, rewards.double() - coef * ratio, rtol=1e-5, atol=1e-6)


def q_column(batch: dict) -> np.ndarray:
    """The ``MC_Q`` column a piece added, as [B, T] (one list of T values per episode)."""
    from seqgan_rl.rllib.monte_carlo import MC_Q

    return np.stack([np.concatenate(values) for values in batch[MC_Q].values()])


def test_seqgan_q_loses_the_penalty_return_and_c0_is_exactly_the_monte_carlo_q(ray_local, tiny_run) -> None:
    """reward="q": MC_Q = Q − c·Σ_{s≥t} k_s; with c = 0 it is the Monte Carlo Q itself, bit for bit."""
    from seqgan_rl.rewards import return_to_go
    from seqgan_rl.rllib.monte_carlo import kl_log_ratio
    from seqgan_rl.runs import load_generator

    tokens = torch.randint(0, TINY.vocab_size, (5, TINY.seq_len), generator=torch.Generator().manual_seed(6))
    columns, pieces = {}, {}
    for coef in (0.0, 0.4):
        options = TrainConfig().with_overrides(discriminator=FIXED_D, kl_coef=coef, num_rollouts=4, seed=3)
        learner, module = tiny_learner(options, tiny_run)
        moved_away(module)
        piece = pieces[coef] = learner.monte_carlo_connector()
        piece.update_rollout_policy(learner.module)
        piece.set_discriminator_weights(module_weights(fixed_reward_discriminator(), version=1))
        batch: dict = {}
        piece(rl_module=learner.module, batch=batch, episodes=episodes_of(tokens, torch.zeros(5, TINY.seq_len)))
        columns[coef] = q_column(batch)
    # c = 0: exactly the Monte Carlo Q of a pool with the same seed, policy and discriminator
    learner, module = tiny_learner(TrainConfig().with_overrides(discriminator=FIXED_D, num_rollouts=4, seed=3),
                                   tiny_run)
    moved_away(module)
    plain = learner.monte_carlo_connector()
    plain.update_rollout_policy(learner.module)
    plain.set_discriminator_weights(module_weights(fixed_reward_discriminator(), version=1))
    q = plain._ensure_pool(module.generator).compute_q(tokens.numpy())  # (B, T)
    assert np.array_equal(columns[0.0], q)
    ratio = kl_log_ratio(module.generator, load_generator(tiny_run[1], "cpu"), tokens).double().numpy()
    assert float(np.abs(ratio).min()) > 1e-3
    np.testing.assert_allclose(columns[0.4], q - 0.4 * return_to_go(ratio), rtol=1e-5, atol=1e-6)


def test_adaptive_kl_coefficient_moves_toward_the_target(tiny_run) -> None:
    """kl_target: a KL above the target raises the coefficient, one below lowers it (Ziegler et al.'s rule)."""
    tokens = torch.randint(0, TINY.vocab_size, (8, TINY.seq_len), generator=torch.Generator().manual_seed(8))
    for target, direction in ((1e-4, 1), (1e3, -1)):
        options = TrainConfig().with_overrides(algo="ppo", reward="terminal", discriminator=FIXED_D, kl_coef=0.2,
                                               kl_target=target, value_warmup_steps=0)
        learner, module = tiny_learner(options, tiny_run)
        moved_away(module)
        piece = learner.monte_carlo_connector()
        piece(rl_module=learner.module, batch={}, episodes=episodes_of(tokens, torch.zeros(8, TINY.seq_len)))
        assert (piece.kl_coef - 0.2) * direction == pytest.approx(0.2 * 0.1 * 0.2)  # the clipped 20 % step


def test_value_warmup_lowers_the_value_loss(ray_local, tiny_run) -> None:
    """The warm-up fits the value head to the returns of the generator's samples; the generator stays as it was."""
    # terminal rewards: G_t = D(y), which a prefix holding a token outside GOOD_TOKENS already decides
    options = TrainConfig().with_overrides(algo="ppo", reward="terminal", discriminator=FIXED_D, num_rollouts=4, seed=1)
    learner, module = tiny_learner(options, tiny_run)
    piece = learner.monte_carlo_connector()
    piece.update_rollout_policy(learner.module)
    piece.set_discriminator_weights(module_weights(fixed_reward_discriminator(), version=1))
    before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    report = learner.warm_up_value_head(100, 64, seed=0)
    assert report["loss_last"] < 0.7 * report["loss_first"], report
    for name, value in module.generator.state_dict().items():
        assert torch.equal(value, before[name]), name
