"""A pool of Monte Carlo rollout workers: each a Ray actor running ``MonteCarloQ`` on a shard.

Every worker holds a copy of the rollout policy and of the discriminator (or,
with a fixed reward model, that model, built in the worker). They
are refreshed by ``RolloutPool.sync``, which puts each set of weights in the
object store once and hands every worker the same reference (never per call).
``compute_q`` splits a batch into K balanced shards (sizes differ by at most
one), runs them concurrently and reassembles Q in the input order. The
uniforms of the whole batch are drawn once by the pool, so Q does not depend
on K: K = 1 and K = 4 give the same numbers. K = 0 runs the engine in-process.

A worker that dies (its process killed, its node lost, ``ray.kill``) is
replaced by a new actor, which first gets the latest weights the pool synced
(the pool keeps their object-store references for this) and then recomputes
the dead worker's shard with the same uniforms: Q is exactly what an
undisturbed pool gives. Each shard is retried at most ``max_retries`` times
per call; then ``compute_q`` fails with a ``TrainingError`` naming the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from seqgan_rl.distributed.devices import (
    actor_description,
    resolve_device,
    sampling_chunk_rows,
    score_precision_on,
)
from seqgan_rl.distributed.discriminator_actor import (
    CHECK_INTERVAL_S,
    START_TIMEOUT_S,
    ActorHungError,
    failure_cause,
)
from seqgan_rl.distributed.weights import Weights, load_module_weights
from seqgan_rl.errors import ConfigError, TrainingError
from seqgan_rl.mc import DEFAULT_MAX_BATCH, DEFAULT_NUM_ROLLOUTS, MonteCarloQ
from seqgan_rl.models.categorical import SAMPLING_CHUNK_ROWS
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.rewards import IDEAL, IdealDiscriminator, RewardModel, RewardModelSpec, transformed_scorer

logger = logging.getLogger(__name__)


class MonteCarloWorker:
    """Computes Q for shards of a batch with its copies of the rollout policy and the discriminator (or a fixed
    reward model: ``reward_model``, built here on first use; its discriminator version is then 0 for good).

    With ``reward_model`` ``ideal`` the "discriminator" is an ``IdealDiscriminator`` and its weights are the
    generator's, sent before every Q. Every score passes through ``reward_transform`` before it is averaged.

    ``device="auto"``: the GPU Ray gave this worker, else the CPU (``seqgan_rl.distributed.devices``; one
    warning when it holds a GPU torch cannot use); its engine samples in chunks sized for that device.
    """

    def __init__(
        self,
        generator_config: dict[str, Any],
        discriminator_kwargs: dict[str, Any],
        num_rollouts: int,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        device: str = "auto",
        score_precision: str = "fp32",
        num_threads: int | None = None,
        reward_model: RewardModelSpec | None = None,
        reward_transform: str = "d",
    ) -> None:
        if num_threads:
            torch.set_num_threads(num_threads)
        device = resolve_device(device, "a Monte Carlo rollout worker", option="--mc-worker-num-gpus")
        # the weights come from set_weights: building must not draw from the global RNG, which in-process
        # (K = 0) is the driver's, restored from a checkpoint and shared with the local EnvRunner's sampling
        with torch.random.fork_rng(devices=[]):
            self.policy = Generator(GeneratorConfig(**generator_config), init_std=None).to(device).eval()
            self.discriminator: Discriminator | IdealDiscriminator | None = None
            if reward_model is None:
                self.discriminator = Discriminator(**discriminator_kwargs).to(device).eval()
                self.discriminator.score_precision = score_precision_on(device, score_precision, "a rollout worker")
            elif reward_model.name == IDEAL:
                self.discriminator = reward_model.ideal_discriminator(self.policy.config).to(device).eval()
        learned = self.discriminator is not None
        self.reward_model = None if learned else RewardModel(reward_model)
        self.reward_transform = reward_transform
        self.engine = MonteCarloQ(num_rollouts, max_batch=max_batch,
                                  chunk_rows=sampling_chunk_rows(device, SAMPLING_CHUNK_ROWS))
        self.versions = (-1, -1 if learned else 0)

    def __repr__(self) -> str:
        """Its device and Ray GPUs (Ray keeps an actor's repr: ``ray list actors --detail`` shows where it ran)."""
        return actor_description(type(self).__name__, self.policy.device)

    def set_weights(self, policy: Weights | None = None, discriminator: Weights | None = None) -> tuple[int, int]:
        """Load new rollout-policy and/or discriminator weights; returns the (policy, discriminator) versions."""
        policy_version, discriminator_version = self.versions
        if policy is not None:
            policy_version = load_module_weights(self.policy, policy)
        if discriminator is not None:
            if self.discriminator is None:
                raise RuntimeError("MonteCarloWorker: discriminator weights sent to a worker scoring with the "
                                   f"fixed reward model {self.reward_model.spec.name!r}")
            if isinstance(self.discriminator, IdealDiscriminator):  # the generator's weights
                discriminator_version = load_module_weights(self.discriminator.generator, discriminator)
            else:
                discriminator_version = load_module_weights(self.discriminator, discriminator)
        self.versions = (policy_version, discriminator_version)
        return self.versions

    def compute_q(self, sequences: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Q [b, T] float32 for a shard of sequences [b, T] with its uniforms [b, T−1, N, T]."""
        if min(self.versions) < 0:
            raise RuntimeError(f"MonteCarloWorker.compute_q needs both the rollout-policy and the discriminator "
                               f"weights first (versions {self.versions}; -1 = never set)")
        scorer = self.discriminator if self.reward_model is None else self.reward_model.score
        scorer = transformed_scorer(scorer, self.reward_transform)
        q = self.engine(torch.from_numpy(sequences), self.policy, scorer, uniforms=torch.from_numpy(uniforms))
        return q.cpu().numpy()

    def ping(self) -> tuple[int, int]:
        return self.versions

    def node_id(self) -> str:
        """The Ray node this worker runs on (where the scheduler placed it)."""
        return ray.get_runtime_context().get_node_id()


class RolloutPool:
    """K Monte Carlo workers (Ray actors) or, with K = 0, one in-process worker.

    Args:
        num_workers: K.
        generator_config: the rollout policy's sizes.
        discriminator_kwargs: ``Discriminator`` arguments (vocab_size, seq_len, sizes).
        num_rollouts: N.
        num_cpus, num_gpus: Ray resources of each worker (e.g. ``num_gpus=0.25``:
            four workers share a GPU). Workers are placed with Ray's SPREAD
            strategy: on a cluster they go to as many nodes as have the resources.
        max_batch: rollout rows per engine chunk inside a worker (memory bound).
        score_precision: discriminator precision inside the workers ("fp32"/"int8").
        reward_model: a fixed reward model the workers score with instead of a discriminator
            (``discriminator_kwargs`` is then unused and ``sync`` takes no discriminator weights, except for
            ``ideal``, whose "discriminator" weights are the generator's).
        reward_transform: what every score becomes before it is averaged into Q (``transformed_scorer``).
        seed: seeds the pool's RNG for the uniforms.
        max_retries: how many times one call retries a dead worker's shard on a
            replacement before it gives up (a worker that dies on every try is a
            bug or a lack of memory, not bad luck).
        call_timeout_s: the deadline of one call on a worker; a worker that misses it is taken
            for hung and treated as dead: killed, replaced, its shard computed again
            (``None``: no deadline).
    """

    def __init__(
        self,
        num_workers: int,
        generator_config: GeneratorConfig,
        discriminator_kwargs: dict[str, Any],
        *,
        num_rollouts: int = DEFAULT_NUM_ROLLOUTS,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_batch: int = DEFAULT_MAX_BATCH,
        score_precision: str = "fp32",
        seed: int = 0,
        max_retries: int = 3,
        reward_model: RewardModelSpec | None = None,
        reward_transform: str = "d",
        call_timeout_s: float | None = None,
    ) -> None:
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        if num_cpus < 0 or num_gpus < 0:
            raise ConfigError(f"num_cpus and num_gpus must be >= 0, got {num_cpus} and {num_gpus}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.num_rollouts = num_rollouts
        self.seq_len = generator_config.seq_len
        self.max_retries = max_retries
        self.call_timeout_s = call_timeout_s
        self.num_restarts = 0
        """Workers replaced so far (after they died); reported as ``mc_worker_restarts``."""
        self.rng = torch.Generator().manual_seed(seed)
        self._sampler = MonteCarloQ(num_rollouts)
        # the latest weights sent to the workers, re-sent to a worker that replaces a dead one
        self._policy_ref: ray.ObjectRef | None = None
        self._discriminator_ref: ray.ObjectRef | None = None
        args = (asdict(generator_config), dict(discriminator_kwargs), num_rollouts)
        options = {"max_batch": max_batch, "score_precision": score_precision, "reward_model": reward_model,
                   "reward_transform": reward_transform}
        if num_workers == 0:
            self.local: MonteCarloWorker | None = MonteCarloWorker(*args, **options)
            self.workers: list[ray.actor.ActorHandle] = []
        else:
            self.local = None
            # no Ray restarts: a restarted actor would come back without weights; ``_replace`` does it whole
            remote_class = ray.remote(MonteCarloWorker).options(num_cpus=num_cpus, num_gpus=num_gpus,
                                                                scheduling_strategy="SPREAD", max_restarts=0)
            threads = max(1, int(num_cpus)) if num_gpus == 0 else None
            self._new_worker: Callable[[], ray.actor.ActorHandle] = (
                lambda: remote_class.remote(*args, **options, num_threads=threads))
            self.workers = [self._new_worker() for _ in range(num_workers)]
            # the first start waits for resources without a deadline: an autoscaler may still add the nodes, and
            # the pre-flight check refused what no node can ever hold
            ray.get([worker.ping.remote() for worker in self.workers])

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    def worker_nodes(self) -> list[str]:
        """The Ray node id of each worker (the local node's for K = 0)."""
        if self.local is not None:
            return [self.local.node_id()]
        return self._gather(lambda i: self.workers[i].node_id.remote(), range(self.num_workers), "node_id")

    def sync(self, policy: Weights | None = None, discriminator: Weights | None = None) -> None:
        """Send new rollout-policy and/or discriminator weights to every worker.

        Each set of weights is put in the object store once and every worker
        receives the same reference; ``None`` leaves that model unchanged (the
        discriminator, ~24 MB in the paper setting, is only sent after d-steps).
        """
        if self.local is not None:
            self.local.set_weights(policy, discriminator)
            return
        policy_ref = None if policy is None else ray.put(policy)
        discriminator_ref = None if discriminator is None else ray.put(discriminator)
        if policy_ref is not None:
            self._policy_ref = policy_ref
        if discriminator_ref is not None:
            self._discriminator_ref = discriminator_ref
        self._gather(lambda i: self.workers[i].set_weights.remote(policy_ref, discriminator_ref),
                     range(self.num_workers), "set_weights")

    def compute_q(self, sequences: np.ndarray) -> np.ndarray:
        """Q [B, T] float32 for sequences [B, T], in the input order."""
        sequences = np.ascontiguousarray(sequences, dtype=np.int64)
        if sequences.ndim != 2 or sequences.shape[1] != self.seq_len:
            raise ConfigError(f"sequences must have shape [B, {self.seq_len}], got {sequences.shape}")
        uniforms = self._sampler.draw_uniforms(sequences.shape[0], self.seq_len, generator=self.rng).numpy()
        if self.local is not None:
            return self.local.compute_q(sequences, uniforms)
        bounds = np.linspace(0, sequences.shape[0], self.num_workers + 1).round().astype(int)
        shards = [i for i in range(self.num_workers) if bounds[i + 1] > bounds[i]]
        return np.concatenate(self._gather(
            lambda i: self.workers[i].compute_q.remote(sequences[bounds[i]:bounds[i + 1]],
                                                       uniforms[bounds[i]:bounds[i + 1]]),
            shards, "compute_q"))

    def _gather(self, submit: Callable[[int], ray.ObjectRef], indices: Iterable[int], what: str) -> list[Any]:
        """``submit(i)`` on the workers ``indices`` concurrently; their results in that order.

        A worker that died, or did not answer within ``call_timeout_s``, is
        replaced and its call submitted again (the same arguments: for
        ``compute_q`` the same shard and uniforms, so the same Q), at most
        ``max_retries`` times. Errors raised by the worker's code are not
        failures of the worker and propagate unchanged.
        """
        indices = list(indices)
        refs = {i: submit(i) for i in indices}
        results = []
        for i in indices:
            for attempt in range(self.max_retries + 1):
                try:
                    results.append(ray.get(refs[i], timeout=self.call_timeout_s))
                    break
                except (RayActorError, GetTimeoutError) as failure:
                    error = failure if isinstance(failure, RayActorError) else ActorHungError(
                        f"no answer within actor_timeout_s={self.call_timeout_s:g}")
                    if attempt == self.max_retries:
                        raise TrainingError(
                            f"RolloutPool: rollout worker {i} (of {self.num_workers}) died or hung during {what} "
                            f"{attempt + 1} time(s) in a row, retried on {attempt} replacement(s) "
                            f"(max_retries={self.max_retries}); last cause: {failure_cause(error)}") from error
                    self._replace(i, error)
                    refs[i] = submit(i)
        return results

    def _replace(self, index: int, cause: BaseException) -> None:
        """Start a new worker in place of dead or hung worker ``index`` and give it the latest synced weights.

        The new actor is waited for (starts tried for ``START_TIMEOUT_S`` in all: one placed on a node
        that is gone but not yet known dead dies at once), so its start does not count against the
        retried call's deadline; the weights are sent before
        anything else is submitted to it, and a Ray actor runs one caller's
        calls in order, so the retried call sees them.
        """
        ray.kill(self.workers[index], no_restart=True)  # in case it is only unreachable or hung, not dead
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # up before the retried call's deadline starts to count
            worker = self._new_worker()
            try:
                ray.get(worker.ping.remote(), timeout=max(0.0, deadline - time.monotonic()))
                break
            except (RayActorError, GetTimeoutError) as error:
                # a start on a node that is lost but not yet known dead dies at once: try again elsewhere
                ray.kill(worker, no_restart=True)
                if time.monotonic() + CHECK_INTERVAL_S >= deadline:
                    raise TrainingError(
                        f"RolloutPool: rollout worker {index} died or hung ({failure_cause(cause)}) and no "
                        f"replacement started within {START_TIMEOUT_S:g} s ({failure_cause(error)})") from error
                time.sleep(CHECK_INTERVAL_S)
        worker.set_weights.remote(self._policy_ref, self._discriminator_ref)
        self.workers[index] = worker
        self.num_restarts += 1
        logger.warning("RolloutPool: rollout worker %d died or hung (%s); replaced it with a new actor holding the "
                       "latest weights (%d replacement(s) so far)", index, failure_cause(cause), self.num_restarts)

    def rng_state(self) -> torch.Tensor:
        """State of the RNG drawing the uniforms (for checkpoints: a restored pool draws the same next Q)."""
        return self.rng.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.rng.set_state(state)

    def shutdown(self) -> None:
        for worker in self.workers:
            ray.kill(worker)
        self.workers = []
