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

import pytest
import torch

from seqgan_rl.checkpoint import save_checkpoint
from seqgan_rl.config import TrainConfig
from seqgan_rl.data import write_token_table
from seqgan_rl.discriminator import Discriminator
from seqgan_rl.distributed.weights import module_weights
from seqgan_rl.generator import Generator, GeneratorConfig

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


def test_seqgan_learner_gradient_equals_the_reference(tiny_run) -> None:
    from ray.rllib.core import DEFAULT_MODULE_ID

    from envs import TokenGenerationEnv
    from seqgan_rl.rllib.build import build_algorithm_config

    real, mle = tiny_run
    options = TrainConfig(discriminator=FIXED_D, grad_clip=1e9)  # no clipping: the raw gradient
    config = build_algorithm_config(options, TINY, mle, real, discriminator_threads=1)
    env = TokenGenerationEnv(vocab_size=TINY.vocab_size, seq_len=TINY.seq_len, scorer=lambda tokens: 0.5)
    spaces = (env.observation_space, env.action_space)
    learner = config.build_learner(env=None, spaces={"__env__": spaces, DEFAULT_MODULE_ID: spaces})
    learner.build()
    module = learner.module[DEFAULT_MODULE_ID]

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
@pytest.mark.parametrize(("algo_name", "iterations"), [("seqgan", 24), ("ppo", 16), ("appo", 16), ("impala", 16)])
def test_every_algorithm_learns_a_reward_with_a_known_optimum(ray_local, tiny_run, algo_name: str,
                                                              iterations: int) -> None:
    from seqgan_rl.rllib.build import build_algorithm_config

    real, mle = tiny_run
    options = TrainConfig(algo=algo_name, reward="shaped", episodes_per_batch=32, num_rollouts=4, d_steps=0,
                          d_pretrain_rounds=0, discriminator=FIXED_D, discriminator_num_cpus=0.5, seed=0)
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
