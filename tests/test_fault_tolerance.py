"""Failures on a real local Ray: dead rollout workers, discriminator and EnvRunners; NaN from the discriminator.

Actors are killed with ``ray.kill`` or their process with SIGKILL, never mocked;
each test checks what training gets afterwards (the same Q, the latest
discriminator, a reward for every episode) or that it stops with a clear error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import numpy as np
import pytest
import torch
from conftest import SMALL
from test_seqgan_algorithm import SMALL_D, generator_state, small_config

from seqgan_rl.errors import SeqGANError
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator

DISC = {"vocab_size": SMALL.vocab_size, "seq_len": SMALL.seq_len, **SMALL_D}


KILL_DEADLINE_S = 60.0


def kill(actor) -> None:
    """``ray.kill``, then wait until the actor's calls fail (the kill itself is asynchronous), at most
    ``KILL_DEADLINE_S``."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError

    ray.kill(actor)
    deadline = time.monotonic() + KILL_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            ray.get(actor.__ray_call__.remote(lambda _: None), timeout=5.0)
        except RayActorError:
            return
        except GetTimeoutError:
            continue
        time.sleep(0.05)
    pytest.fail(f"the actor still answered {KILL_DEADLINE_S:g} s after ray.kill")


def replacements_recorded(supervisor, expected: int) -> int:
    """The supervisor's count of replacements once it reaches ``expected`` (at most ``KILL_DEADLINE_S``).

    The replacement answers by name (the env's reward call finds it) a moment before the supervisor's watcher,
    which started it, records it: the count is read once the watcher is done."""
    deadline = time.monotonic() + KILL_DEADLINE_S
    while supervisor.restarts < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return supervisor.restarts


def kill_process(actor) -> int:
    """SIGKILL the actor's process (a crash, not a request); returns its pid."""
    import ray

    pid = ray.get(actor.__ray_call__.remote(lambda _: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    return pid


def synced_pool(seed: int = 11, **options):
    from seqgan_rl.distributed import RolloutPool, module_weights

    torch.manual_seed(0)
    policy, disc = Generator(SMALL, init_std=0.5), Discriminator(**DISC)
    pool = RolloutPool(2, SMALL, DISC, num_rollouts=4, num_cpus=0.5, seed=seed, **options)
    pool.sync(module_weights(policy, 4), module_weights(disc, 2))
    return pool, policy.sample(9).numpy()


# ------------------------------------------------------------------ rollout workers

def test_dead_rollout_workers_are_replaced_and_q_is_unchanged(ray_local) -> None:
    ray = ray_local
    undisturbed, sequences = synced_pool()
    expected = [undisturbed.compute_q(sequences) for _ in range(2)]
    undisturbed.shutdown()

    pool, _ = synced_pool()
    kill(pool.workers[0])  # between the weight sync and the Q of an iteration
    first = pool.compute_q(sequences)
    kill_process(pool.workers[1])
    second = pool.compute_q(sequences)
    assert np.array_equal(first, expected[0]) and np.array_equal(second, expected[1])
    assert pool.num_restarts == 2
    # the replacements hold the latest weights, and later syncs reach them
    assert ray.get([w.ping.remote() for w in pool.workers]) == [(4, 2), (4, 2)]
    pool.sync(discriminator={"version": 3, "state": {k: v.numpy() for k, v in
                                                     Discriminator(**DISC).state_dict().items()}})
    assert ray.get([w.ping.remote() for w in pool.workers]) == [(4, 3), (4, 3)]
    pool.shutdown()


def test_a_rollout_worker_dying_beyond_its_retries_is_a_clear_error(ray_local) -> None:
    from seqgan_rl.errors import TrainingError

    pool, sequences = synced_pool(max_retries=0)
    kill(pool.workers[1])
    with pytest.raises(TrainingError,
                       match=r"rollout worker 1 \(of 2\) died or hung during compute_q .*ActorDiedError"):
        pool.compute_q(sequences)
    pool.shutdown()


def stop_process(actor) -> int:
    """SIGSTOP the actor's process: alive, holding its resources, answering nothing (a hung actor)."""
    import ray

    pid = ray.get(actor.__ray_call__.remote(lambda _: os.getpid()))
    os.kill(pid, signal.SIGSTOP)
    return pid


HUNG_DEADLINE_S = 2.0
"""``actor_timeout_s`` of the hung-actor tests: short, so the test waits seconds for its deadline."""


def test_a_hung_rollout_worker_is_replaced_at_its_deadline_and_q_is_unchanged(ray_local) -> None:
    """A worker stopped with SIGSTOP (not dead: Ray sees it alive) misses its deadline, is killed and
    replaced, and its shard is computed again with the same uniforms: the same Q."""
    undisturbed, sequences = synced_pool()
    expected = undisturbed.compute_q(sequences)
    undisturbed.shutdown()

    pool, _ = synced_pool(call_timeout_s=HUNG_DEADLINE_S)
    pid = stop_process(pool.workers[0])
    try:
        started = time.monotonic()
        q = pool.compute_q(sequences)
        waited = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already when the pool's ray.kill was reaped first
            os.kill(pid, signal.SIGKILL)
    assert np.array_equal(q, expected) and pool.num_restarts == 1
    assert waited >= HUNG_DEADLINE_S  # it was the deadline that ended the wait, nothing else
    pool.shutdown()


# ------------------------------------------------------------------ the discriminator actor

def d_step(actor, real: np.ndarray):
    """A d-step's call on the discriminator actor (its object ref, for ``DiscriminatorSupervisor.run``)."""
    fake = np.random.default_rng(7).integers(0, SMALL.vocab_size, real.shape)
    return actor.train.remote(real, fake, 1)


def test_a_dead_discriminator_comes_back_with_its_latest_state_and_the_env_gets_its_reward(ray_local) -> None:
    """Killed after a d-step: the env's reward call finds the replacement by name; it scores as the last D."""
    from seqgan_rl.distributed.discriminator_actor import DiscriminatorSupervisor
    from seqgan_rl_envs import TokenGenerationEnv

    real = np.random.default_rng(1).integers(0, SMALL.vocab_size, (32, SMALL.seq_len))
    supervisor = DiscriminatorSupervisor("disc-ft-latest", SMALL.vocab_size, SMALL.seq_len, real_data=real,
                                         num_cpus=0.5, discriminator_kwargs=SMALL_D, check_interval_s=0.2)
    try:
        supervisor.run(lambda actor: d_step(actor, real), changes_state=True)
        trained = supervisor.run(lambda actor: actor.get_state.remote())
        sequence = np.arange(1, SMALL.seq_len + 1)
        env = TokenGenerationEnv(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len, scorer="disc-ft-latest")
        rewards = []
        for episode in range(2):
            env.reset()
            for token in sequence[:-1]:
                env.step(int(token))
            if episode == 1:
                kill(supervisor.handle)  # the env holds the dead actor's handle from its first reward
            _, reward, terminated, _, _ = env.step(int(sequence[-1]))
            rewards.append(reward)
            assert terminated

        assert replacements_recorded(supervisor, 1) == 1
        assert rewards[1] == rewards[0]  # the same discriminator: the trained one, not a fresh one
        restored = supervisor.run(lambda actor: actor.get_state.remote())
        assert restored["weights"]["version"] == trained["weights"]["version"] == 1
        for name, value in trained["weights"]["state"].items():
            assert np.array_equal(restored["weights"]["state"][name], value), name
        # the optimiser's moments and the RNGs came back too: the next d-step is the one the dead actor would make
        for slot, moments in trained["optimizer"]["state"].items():
            for name, value in moments.items():
                assert torch.equal(restored["optimizer"]["state"][slot][name], value), (slot, name)
        for rng in ("shuffle_rng", "sampling_rng", "torch_rng"):
            assert torch.equal(restored[rng], trained[rng]), rng
    finally:
        supervisor.stop()


def test_a_discriminator_that_cannot_be_restarted_stops_training_with_a_clear_error(ray_local) -> None:
    from seqgan_rl.distributed.discriminator_actor import DiscriminatorSupervisor
    from seqgan_rl.errors import TrainingError

    real = np.random.default_rng(1).integers(0, SMALL.vocab_size, (8, SMALL.seq_len))
    # a replacement has no time to start (0 s): every attempt fails
    supervisor = DiscriminatorSupervisor("disc-ft-gone", SMALL.vocab_size, SMALL.seq_len, real_data=real,
                                         num_cpus=0.5, discriminator_kwargs=SMALL_D, restart_attempts=1,
                                         start_timeout_s=0.0, check_interval_s=0.1)
    kill(supervisor.handle)
    with pytest.raises(TrainingError, match=r"discriminator actor 'disc-ft-gone' died or hung .* 1 attempt\(s\) to "
                                            r"start a replacement failed: GetTimeoutError"):
        supervisor.run(lambda actor: actor.ping.remote())
    supervisor.stop()


def test_a_hung_discriminator_is_replaced_at_its_deadline_with_its_latest_state(ray_local) -> None:
    """Stopped with SIGSTOP after a d-step: the next call misses its deadline, the supervisor kills the actor
    and starts a replacement from the snapshot, and the call answers as the hung actor would have; the env,
    whose own reward call also missed its deadline, finds the replacement by name."""
    from seqgan_rl.distributed.discriminator_actor import DiscriminatorSupervisor
    from seqgan_rl_envs import TokenGenerationEnv

    real = np.random.default_rng(1).integers(0, SMALL.vocab_size, (32, SMALL.seq_len))
    supervisor = DiscriminatorSupervisor("disc-ft-hung", SMALL.vocab_size, SMALL.seq_len, real_data=real,
                                         num_cpus=0.5, discriminator_kwargs=SMALL_D, check_interval_s=0.2,
                                         call_timeout_s=HUNG_DEADLINE_S)
    pid = None
    try:
        supervisor.run(lambda actor: d_step(actor, real), changes_state=True)
        expected = supervisor.run(lambda actor: actor.score.remote(real[:4]))
        env = TokenGenerationEnv(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len, scorer="disc-ft-hung",
                                 scorer_timeout_s=HUNG_DEADLINE_S, scorer_recovery_s=120.0)
        env.reset()
        for token in real[0, :-1]:
            env.step(int(token))
        pid = stop_process(supervisor.handle)
        _, reward, terminated, _, _ = env.step(int(real[0, -1]))
        assert terminated and reward == pytest.approx(float(expected[0]))
        scores = supervisor.run(lambda actor: actor.score.remote(real[:4]))
        assert np.array_equal(scores, expected) and replacements_recorded(supervisor, 1) == 1
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # gone already when its replacement's kill was reaped
                os.kill(pid, signal.SIGKILL)
        supervisor.stop()


def test_the_env_waits_for_the_discriminator_as_long_as_its_supervisor_may_take() -> None:
    """The env's wait for a reward covers the supervisor's worst case: a hung actor noticed at its deadline,
    every start of a replacement, and the call on it."""
    from seqgan_rl.config import TrainConfig
    from seqgan_rl.distributed.discriminator_actor import (
        CHECK_INTERVAL_S,
        RESTART_ATTEMPTS,
        START_TIMEOUT_S,
        discriminator_recovery_s,
    )
    from seqgan_rl.rllib.settings import SeqGANSettings

    options = TrainConfig().with_overrides(actor_timeout_s=90.0).resolved()
    env = SeqGANSettings(options, "real.parquet", {"vocab_size": 10, "seq_len": 3}).env_config()
    assert env["scorer_timeout_s"] == 90.0
    assert env["scorer_recovery_s"] == discriminator_recovery_s(90.0) == \
        90.0 + RESTART_ATTEMPTS * (START_TIMEOUT_S + CHECK_INTERVAL_S) + 90.0


def test_an_env_whose_scorer_actor_never_comes_back_fails_instead_of_a_zero_reward(ray_local) -> None:
    from seqgan_rl.distributed import start_discriminator_actor
    from seqgan_rl_envs import TokenGenerationEnv

    actor = start_discriminator_actor("disc-ft-unsupervised", 10, 3, num_cpus=0.5, discriminator_kwargs=SMALL_D)
    env = TokenGenerationEnv(vocab_size=10, seq_len=3, scorer="disc-ft-unsupervised", scorer_recovery_s=0.5)
    rewards = []
    for attempt in range(2):
        env.reset()
        env.step(1)
        env.step(2)
        if attempt == 0:
            rewards.append(env.step(3)[1])
    assert 0.0 < rewards[0] < 1.0
    kill(actor)  # and nobody brings it back
    with pytest.raises(SeqGANError, match=r"the scorer actor 'disc-ft-unsupervised' died \(ActorDiedError\) and none "
                                          r"answered within scorer_recovery_s=0.5; the finished sequence \[1, 2, 3\] "
                                          r"has no reward"):
        env.step(3)


# ------------------------------------------------------------------ NaN

def test_nan_discriminator_output_is_a_clear_error(ray_local) -> None:
    """NaN weights (set through the actor): the env's terminal reward and the Monte Carlo step both refuse them."""
    from seqgan_rl.config import TrainConfig
    from seqgan_rl.distributed import start_discriminator_actor
    from seqgan_rl.errors import TrainingError
    from seqgan_rl.rllib.monte_carlo import MonteCarloQConnector
    from seqgan_rl.rllib.settings import SeqGANSettings
    from seqgan_rl_envs import TokenGenerationEnv

    ray = ray_local
    actor = start_discriminator_actor("disc-ft-nan", SMALL.vocab_size, SMALL.seq_len, num_cpus=0.5,
                                      discriminator_kwargs=SMALL_D)
    try:
        weights = ray.get(actor.get_weights.remote())
        nan = {"version": weights["version"] + 1,
               "state": {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v
                         for k, v in weights["state"].items()}}
        ray.get(actor.set_weights.remote(nan))

        env = TokenGenerationEnv(vocab_size=SMALL.vocab_size, seq_len=SMALL.seq_len, scorer="disc-ft-nan")
        env.reset()
        for token in range(SMALL.seq_len - 1):
            env.step(token)
        with pytest.raises(SeqGANError, match=r"the discriminator actor 'disc-ft-nan' returned NaN for the finished "
                                              r"sequence \[0, 1, 2, 3, 4, 5, 6, 7\]"):
            env.step(SMALL.seq_len - 1)

        # the same weights, as the algorithm hands them to the Monte Carlo step after its d-steps
        options = TrainConfig().with_overrides(num_rollouts=2, discriminator=SMALL_D).resolved()
        settings = SeqGANSettings(options=options, real_data="",
                                  generator_config={"vocab_size": SMALL.vocab_size, "seq_len": SMALL.seq_len})
        connector = MonteCarloQConnector(settings=settings)
        with pytest.raises(TrainingError, match=r"MonteCarloQConnector: the discriminator's weights \(version 1\) "
                                                r"hold NaN or inf in \d+ of \d+ tensors \(embedding.weight, "):
            connector.set_discriminator_weights(ray.get(actor.get_weights.remote()))
    finally:
        ray.kill(actor)


# ------------------------------------------------------------------ the algorithm

def test_training_goes_on_after_the_discriminator_and_a_rollout_worker_die(ray_local, inputs) -> None:
    from seqgan_rl.experiment.run import flatten_result

    algo = small_config(inputs, num_mc_workers=1, mc_worker_num_cpus=0.5).build_algo()
    try:
        algo.train()
        before = generator_state(algo)
        kill(algo.discriminator_actor)  # the env's next reward call finds it dead
        kill_process(algo.learner_group._learner.monte_carlo_connector()._pool.workers[0])
        result = algo.train()
        after = generator_state(algo)
        assert any(not np.array_equal(before[k], after[k]) for k in before), "the policy gradient changed nothing"
        assert result["discriminator"]["restarts"] == 1 and result["learners"]["mc_worker_restarts"] == 1
        record = flatten_result(result)  # what metrics.jsonl gets, under the names the docs give
        assert record["train/discriminator_restarts"] == 1 and record["train/mc_worker_restarts"] == 1
        # restored, not re-initialised: 1 pretraining + 2 batches of 1 d-step (a fresh actor would be at 1)
        assert result["discriminator"]["version"] == 3
        assert 0.0 < result["env_runners"]["episode_return_mean"] < 1.0
    finally:
        algo.stop()


def test_the_dense_discriminator_killed_mid_run_comes_back_with_its_state(ray_local, inputs) -> None:
    """Its actor's process is SIGKILLed between two batches: a replacement restored from the latest snapshot
    trains on (its version goes on from 1 pretraining round + 1 d-step), and the Learner scores the next
    batch's prefixes with the weights it sends."""
    import ray

    algo = small_config(inputs, reward_model="dense", dense_discriminator={"emb_dim": 8, "hidden_dim": 8}).build_algo()
    try:
        algo.train()
        before = ray.get(algo.discriminator_actor.get_weights.remote())
        kill_process(algo.discriminator_actor)
        result = algo.train()
        assert result["discriminator"]["restarts"] == 1 and result["discriminator"]["version"] == 3
        piece = algo.learner_group._learner.monte_carlo_connector()
        after = ray.get(algo.discriminator_actor.get_weights.remote())
        assert any(not np.array_equal(before["state"][k], after["state"][k]) for k in before["state"])
        for name, value in piece._dense_model.state_dict().items():  # the copy that scored: the latest weights
            assert np.array_equal(value.numpy(), after["state"][name]), name
        assert piece._pool is None and "mc_worker_restarts" not in result["learners"]
    finally:
        algo.stop()


def test_training_goes_on_after_an_env_runner_dies(ray_local, inputs) -> None:
    ray = ray_local
    config = small_config(inputs).env_runners(num_env_runners=1, num_envs_per_env_runner=12)
    assert config.restart_failed_env_runners and config.max_num_env_runner_restarts > 0
    algo = config.build_algo()
    try:
        algo.train()
        before = generator_state(algo)
        (runner,) = algo.env_runner_group._worker_manager.actors().values()
        dead_pid = kill_process(runner)  # Ray restarts it (RLlib's max_restarts)
        result = algo.train()
        after = generator_state(algo)
        assert any(not np.array_equal(before[k], after[k]) for k in before), "the policy gradient changed nothing"
        # a whole batch of complete episodes, sampled by the restarted runner with the generator of this
        # iteration (its constructor's would be the MLE checkpoint's, which the first iteration moved away from)
        assert result["env_runners"]["num_episodes"] == 12
        assert result["env_runners"]["num_env_steps_sampled"] == 12 * SMALL.seq_len
        runner_weights = algo.env_runner_group.foreach_env_runner(
            lambda r: r.module.get_state(inference_only=True), local_env_runner=False)[0]
        for name, value in runner_weights.items():
            assert np.array_equal(np.asarray(value), before[name]), name
        assert algo.env_runner_group.num_healthy_remote_env_runners() == 1
        assert ray.get(runner.__ray_call__.remote(lambda _: os.getpid())) != dead_pid
    finally:
        algo.stop()


def test_env_runner_fault_tolerance_is_on_for_every_algorithm() -> None:
    from seqgan_rl.rllib import SeqGANConfig
    from seqgan_rl.rllib.adversarial import ENV_RUNNER_FAULT_TOLERANCE
    from seqgan_rl.rllib.with_seqgan import CONFIG_CLASSES, build_config

    for config in [SeqGANConfig(), *(build_config(name) for name in CONFIG_CLASSES)]:
        for key, value in ENV_RUNNER_FAULT_TOLERANCE.items():
            assert getattr(config, key) == value, (type(config).__name__, key)
    assert ENV_RUNNER_FAULT_TOLERANCE["restart_failed_env_runners"] is True
