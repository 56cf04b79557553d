"""The dense discriminator: every prefix scored in one pass, its loss, its reward path, its options.

Each is checked against its formula computed directly:

* the logit of every prefix from one forward pass equals the logit of that prefix scored alone
  (float64), so no position reads a later token;
* the training objective is the mean sigmoid cross-entropy over every position plus the L2 term;
* ``dense_values`` (Q_t = Σ_{s≥t} γ^(s−t)·f(D(y_≤s)), masked beyond each length) under each transform;
* the Learner's reward step writes SeqGAN's ``MC_Q`` and PPO's per-token rewards from them, with no
  rollout pool;
* a Monte Carlo option given with ``reward_model=dense`` is one error before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_bad_input import fails
from test_learning import TINY, episodes_of, q_column, tiny_learner, tiny_run  # noqa: F401

from seqgan_rl.config import TrainConfig, refuse_monte_carlo_options
from seqgan_rl.distributed.weights import module_weights
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.models.dense_discriminator import DenseDiscriminator
from seqgan_rl.models.discriminator import make_discriminator_optimizer, train_discriminator
from seqgan_rl.rewards import dense_values, return_to_go

SMOKE = ("--preset", "smoke", "--no-progress", "--device", "cpu")


def small_dense(seed: int = 0, **sizes) -> DenseDiscriminator:
    torch.manual_seed(seed)
    return DenseDiscriminator(vocab_size=11, seq_len=7, emb_dim=5, hidden_dim=6, **sizes)


@pytest.mark.parametrize("sizes", [{}, {"num_layers": 2, "layer_norm": True}])
def test_every_prefix_scored_in_one_pass_equals_each_prefix_scored_alone(sizes: dict) -> None:
    model = small_dense(**sizes).double()
    tokens = torch.randint(0, 11, (4, 7), generator=torch.Generator().manual_seed(1))
    logits = model.prefix_logits(tokens)  # (4, 7)
    assert logits.shape == (4, 7) and logits.dtype == torch.float64
    for t in range(1, 8):
        alone = model.prefix_logits(tokens[:, :t])[:, -1]  # the prefix y_1..y_t, nothing after it
        torch.testing.assert_close(logits[:, t - 1], alone, rtol=0, atol=1e-12)
    changed = tokens.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 11  # later tokens do not move an earlier prefix's score
    torch.testing.assert_close(model.prefix_logits(changed)[:, :4], logits[:, :4], rtol=0, atol=1e-12)
    torch.testing.assert_close(model.score(tokens).double(), torch.sigmoid(logits[:, -1]))


def test_the_objective_is_the_cross_entropy_at_every_position_plus_l2() -> None:
    model = small_dense(l2_reg=0.3, dropout_keep=1.0).double()
    tokens = torch.randint(0, 11, (6, 7), generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([1, 0, 1, 1, 0, 0])
    logits = model(tokens)
    expected = torch.stack([
        -(labels[m] * F.logsigmoid(logits[m, t]) + (1 - labels[m]) * F.logsigmoid(-logits[m, t]))
        for m in range(6) for t in range(7)]).mean()
    weights = [model.embedding.weight, model.lstm.weight_ih_l0, model.lstm.weight_hh_l0, model.output.weight]
    expected = expected + 0.15 * sum(w.square().sum() for w in weights)
    torch.testing.assert_close(model.objective(logits, labels), expected)
    assert int(model.correct(logits, labels)) == int(((logits[:, -1] > 0).long() == labels).sum())


def test_d_steps_teach_it_real_from_generated_at_every_position() -> None:
    """Real sequences use tokens 0–4, generated ones 5–10: after 20 epochs every prefix is told apart."""
    model = small_dense(seed=3)
    rng = torch.Generator().manual_seed(4)
    real, fake = torch.randint(0, 5, (128, 7), generator=rng), torch.randint(5, 11, (128, 7), generator=rng)
    optimizer = make_discriminator_optimizer(model, lr=1e-2)
    stats = train_discriminator(model, optimizer, real, fake, epochs=20, batch_size=32, generator=rng)
    assert stats["accuracy"] > 0.95
    probabilities = torch.sigmoid(model.prefix_logits(torch.cat([real, fake])))  # (256, 7)
    assert float(probabilities[:128].min()) > 0.5 > float(probabilities[128:].max())


def test_a_bad_size_or_token_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="hidden_dim must be positive"):
        DenseDiscriminator(11, 7, hidden_dim=0)
    with pytest.raises(ConfigError, match=r"dropout_keep must be in \(0, 1\]"):
        DenseDiscriminator(11, 7, dropout_keep=0.0)
    with pytest.raises(DataError, match=r"token ids must be in \[0, 11\)"):
        small_dense().prefix_logits(torch.full((2, 7), 11))
    with pytest.raises(DataError, match="0 < t <= 7"):
        small_dense().prefix_logits(torch.zeros(2, 8, dtype=torch.long))


@pytest.mark.parametrize("transform", ["d", "2d-1", "log_d", "maligan"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_dense_values_are_the_discounted_transformed_prefix_scores(transform: str, gamma: float) -> None:
    rng = np.random.default_rng(5)
    logits = torch.from_numpy(rng.normal(0.0, 2.0, size=(5, 4)))
    valid = np.arange(4)[None, :] < np.array([4, 4, 3, 2, 4])[:, None]  # three rows end early
    q, rewards = dense_values(logits, valid, transform, gamma)
    d = 1.0 / (1.0 + np.exp(-logits.numpy()))
    expected = {"d": d, "2d-1": 2 * d - 1, "log_d": np.log(d), "maligan": d / (1 - d)}[transform]
    expected = np.where(valid, expected, 0.0)
    if transform == "maligan":
        for t in range(4):
            expected[valid[:, t], t] /= expected[valid[:, t], t].mean()
    np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-6)
    for row in range(5):
        for t in range(4):
            direct = sum(gamma ** (s - t) * expected[row, s] for s in range(t, 4))
            assert q[row, t] == pytest.approx(direct, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(return_to_go(rewards, gamma), q, rtol=1e-12)


@pytest.mark.parametrize("transform", ["d", "log_d"])
def test_increments_add_up_to_the_sequences_score_minus_the_prefix_before_the_token(transform: str) -> None:
    """``dense_rewards=increment``: r_t = f_t − f_(t−1) (f_0: the batch's mean f_1), 0 beyond each length; with
    γ = 1, Q_t = f(D(y)) − f_(t−1), y's score at its own last step."""
    rng = np.random.default_rng(6)
    logits = torch.from_numpy(rng.normal(0.0, 3.0, size=(5, 4)))
    lengths = np.array([4, 4, 3, 2, 4])
    valid = np.arange(4)[None, :] < lengths[:, None]
    q, rewards = dense_values(logits, valid, transform, 1.0, "increment")
    d = 1.0 / (1.0 + np.exp(-logits.numpy()))
    f = np.where(valid, {"d": d, "log_d": np.log(d)}[transform], 0.0)
    first = f[:, 0].mean()
    for row in range(5):
        end = lengths[row] - 1
        for t in range(4):
            before = first if t == 0 else f[row, t - 1]
            if t <= end:
                assert rewards[row, t] == pytest.approx(f[row, t] - before, rel=1e-5, abs=1e-6)
                assert q[row, t] == pytest.approx(f[row, end] - before, rel=1e-5, abs=1e-6)
            else:
                assert rewards[row, t] == 0.0 and q[row, t] == 0.0
    with pytest.raises(ConfigError, match="MaliGAN's normalised weights are not scores"):
        TrainConfig().with_overrides(reward_model="dense", dense_rewards="increment",
                                     reward_transform="maligan").validate()


def test_the_learners_reward_step_reads_q_and_per_token_rewards_from_the_dense_discriminator(tiny_run) -> None:  # noqa: F811
    """SeqGAN's MC_Q and PPO's rewards are the formula's, from the weights the piece was sent, without a pool."""
    torch.manual_seed(8)
    dense = DenseDiscriminator(TINY.vocab_size, TINY.seq_len, emb_dim=4, hidden_dim=5)
    tokens = torch.randint(0, TINY.vocab_size, (6, TINY.seq_len), generator=torch.Generator().manual_seed(9))
    logits = dense.double().prefix_logits(tokens)  # float64 reference, (B, T)
    dense.float()
    valid = np.ones(tokens.shape, dtype=bool)
    for algo, transform, gamma in (("seqgan", "log_d", 0.0), ("seqgan", "2d-1", 0.6), ("ppo", "2d-1", 0.6)):
        options = TrainConfig().with_overrides(algo=algo, reward_model="dense", reward_transform=transform,
                                               dense_gamma=gamma, dense_discriminator={"emb_dim": 4, "hidden_dim": 5},
                                               value_warmup_steps=0)
        learner, _ = tiny_learner(options, tiny_run)
        piece = learner.monte_carlo_connector()
        piece.update_rollout_policy(learner.module)
        piece.set_discriminator_weights(module_weights(dense, version=1))
        episodes = episodes_of(tokens, torch.zeros(tokens.shape))
        batch: dict = {}
        piece(rl_module=learner.module, batch=batch, episodes=episodes)
        q, rewards = dense_values(logits, valid, transform, gamma)
        if algo == "seqgan":
            np.testing.assert_allclose(q_column(batch), q, rtol=1e-4, atol=1e-5)
        else:
            got = np.array([episode.get_rewards() for episode in episodes])
            np.testing.assert_allclose(got, rewards, rtol=1e-4, atol=1e-5)
            assert learner.config.gamma == gamma  # PPO's return of these rewards is the same Q
        assert piece._pool is None  # no Monte Carlo search ran


def test_monte_carlo_options_with_the_dense_discriminator_are_refused() -> None:
    refuse_monte_carlo_options("discriminator", {"num_rollouts"})  # the search uses them
    with pytest.raises(ConfigError, match="--num-rollouts, --num-mc-workers .*would do nothing"):
        refuse_monte_carlo_options("dense", {"num_rollouts", "num_mc_workers", "seed"})
    with pytest.raises(ConfigError, match="num_mc_workers=2 would start rollout workers"):
        TrainConfig().with_overrides(reward_model="dense", num_mc_workers=2).validate()
    with pytest.raises(ConfigError, match="its LSTM trains and scores in fp32"):
        TrainConfig().with_overrides(reward_model="dense", d_precision="bf16").validate()


def test_the_cli_refuses_a_monte_carlo_option_with_dense_before_any_work(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    line = fails(capsys, "train", *SMOKE, "--reward-model", "dense", "--num-rollouts", "8", "--run-dir",
                 tmp_path / "r1")
    assert line.startswith("seqgan-rl train: error: reward_model='dense'") and "--num-rollouts would do nothing" in line
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize(("sizes", "message"), [
    ('{"hiden_dim": 3}', "unknown size(s) 'hiden_dim'; the DenseDiscriminator takes emb_dim, hidden_dim, num_layers, "
                         "dropout_keep, l2_reg, layer_norm"),
    ('{"layer_norm": 1}', "layer_norm must be true or false, got 1"),
    ('{"dropout_keep": 0}', "dropout_keep must be in (0, 1]"),
])
def test_dense_sizes_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str], ray_local: Any,
                                                 sizes: str, message: str) -> None:
    line = fails(capsys, "train", *SMOKE, "--reward-model", "dense", "--dense-discriminator", sizes, "--run-dir",
                 tmp_path / "r1")
    assert line.startswith("seqgan-rl train: error: dense_discriminator {") and message in line, line
    assert not (tmp_path / "r1").exists()


@pytest.mark.slow
def test_the_dense_discriminators_reward_raises_the_generators_mean_reward(ray_local, tmp_path: Path) -> None:
    """Real sequences use only the tokens ``GOOD_TOKENS``; a fresh generator and a fresh dense discriminator,
    trained against each other by SeqGAN's update: the fixed reward whose optimum is known (every token
    good) rises by the learning tests' margin."""
    from dataclasses import asdict

    from test_learning import GOOD_TOKENS, LEARNING_MARGIN, mean_reward

    from seqgan_rl.data.tables import write_token_table
    from seqgan_rl.models.generator import Generator
    from seqgan_rl.rllib.build import build_algorithm_config
    from seqgan_rl.storage.checkpoint import save_checkpoint

    rng = torch.Generator().manual_seed(0)
    good = torch.tensor(GOOD_TOKENS)
    write_token_table(tmp_path / "real.parquet", good[torch.randint(0, 3, (512, TINY.seq_len), generator=rng)].numpy(),
                      TINY.vocab_size)
    torch.manual_seed(2)
    save_checkpoint(tmp_path / "mle.pt", "mle", {"generator": Generator(TINY).state_dict(),
                                                  "generator_config": asdict(TINY)})
    options = TrainConfig().with_overrides(
        reward_model="dense", episodes_per_batch=32, d_steps=1, d_epochs=1, d_num_negatives=256, d_pretrain_rounds=3,
        d_lr=1e-2, dense_discriminator={"emb_dim": 8, "hidden_dim": 16}, discriminator_num_cpus=0.5, seed=0,
    ).resolved()
    algo = build_algorithm_config(options, TINY, str(tmp_path / "mle.pt"), str(tmp_path / "real.parquet"),
                                  discriminator_threads=1).build_algo()
    try:
        before = mean_reward(algo)
        algo.pretrain_discriminator()
        for _ in range(24):
            algo.train()
        after = mean_reward(algo)
    finally:
        algo.stop()
    assert before < 0.3
    assert after - before >= LEARNING_MARGIN, f"dense: mean reward {before:.3f} -> {after:.3f}"
