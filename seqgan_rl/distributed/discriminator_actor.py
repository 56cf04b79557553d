"""The discriminator as a named Ray actor: the single source of rewards and its training.

Environments (one score per finished episode), Monte Carlo rollout workers
(their own copy of the weights, refreshed once per sync) and the algorithm
(d-steps, checkpoints) all talk to this one actor. Everything crossing the
actor boundary is a NumPy batch, never a sequence at a time.

``DiscriminatorSupervisor`` keeps the actor alive for the process that owns
it (the algorithm): when it dies, a new actor of the same name starts from
the latest state (see the class for why not Ray's own actor restarts).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from seqgan_rl.distributed.devices import (
    actor_description,
    resolve_device,
    score_precision_on,
    train_precision_on,
)
from seqgan_rl.distributed.weights import Weights, load_module_weights, module_weights
from seqgan_rl.errors import ConfigError, DataError, TrainingError
from seqgan_rl.models.discriminator import (
    TRAIN_PRECISIONS,
    build_discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)
from seqgan_rl.models.generator import Generator, GeneratorConfig
from seqgan_rl.models.oracle import Oracle
from seqgan_rl.models.ratio_discriminator import RatioDiscriminator
from seqgan_rl.rewards import probability_logits

logger = logging.getLogger(__name__)


def failure_cause(error: BaseException) -> str:
    """The first line of a Ray failure (its full text repeats the actor's whole description)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


class ActorHungError(Exception):
    """An actor that did not answer a call within its deadline (``actor_timeout_s``): alive, maybe, but of
    no use. It is treated as dead: killed, and replaced like one."""


RESTART_ATTEMPTS = 3
"""Starts of a replacement discriminator tried per death (``DiscriminatorSupervisor``)."""
START_TIMEOUT_S = 300.0
"""How long one start of a discriminator actor may wait for its resources and its state."""
CHECK_INTERVAL_S = 1.0
"""How often the supervisor's watcher pings the discriminator (and the pause between starts)."""


def discriminator_recovery_s(call_timeout_s: float, *, restart_attempts: int = RESTART_ATTEMPTS,
                             start_timeout_s: float = START_TIMEOUT_S,
                             check_interval_s: float = CHECK_INTERVAL_S) -> float:
    """The longest the discriminator can be away, from the moment it hangs or dies to a replacement's
    first answer: noticed within a call's deadline (the watcher's ping), then every start tried, then the
    call on the replacement. The token env waits this long for a reward (``scorer_recovery_s``) before it
    gives up, so it never gives up while the supervisor may still bring the actor back."""
    return call_timeout_s + restart_attempts * (start_timeout_s + check_interval_s) + call_timeout_s


class DiscriminatorActor:
    """Holds a discriminator and its Adam optimiser; run it with ``start_discriminator_actor``.

    Args:
        vocab_size, seq_len: the token space (as the generator's).
        architecture: ``cnn`` (the paper's ``Discriminator``), ``dense`` (``DenseDiscriminator``) or ``ratio``
            (``RatioDiscriminator``, whose reference each ``train_on_generator`` sets to the generator it is
            given). The last two score every prefix; their ``score`` is the complete sequence's, and the
            Learner scores the prefixes with a copy of their weights.
        discriminator_kwargs: the architecture's other arguments (sizes; its defaults when empty).
        lr: Adam learning rate (original: 1e-4).
        seed: seeds initialisation and the d-step shuffling.
        device: "cpu", "cuda" or "auto": a GPU when Ray gave the actor one and CUDA is there, else the CPU
            (``seqgan_rl.distributed.devices``: one warning when it holds a GPU that torch cannot use).
        score_precision: "fp32" or "int8" (CPU) for ``score``.
        num_threads: torch CPU threads (Ray gives an actor as many as its ``num_cpus``; on a
            small machine where the driver waits during d-steps, more can be faster).
        train_precision: "fp32" or "bf16" (bfloat16 autocast for the d-steps' forward and
            backward, see ``train_discriminator``); "bf16" becomes "fp32" on a device without
            native bfloat16 (``train_precision_on``).
        state: a ``get_state`` result loaded before the actor serves any call (a replacement
            for a dead actor starts from it, never from fresh weights).
        real_data: token ids [n, T] for ``set_real_data``, given the same way.
        oracle: the synthetic oracle's arrays (``Oracle.to_arrays``) for fresh positives: each d-step of
            ``train_on_generator`` then draws its real sequences from the oracle (as many as its negatives)
            instead of the fixed real set, so the discriminator cannot memorise its positives
            (``TrainConfig.discriminator.d_fresh_real``).
        q_start: a language model's arrays in the oracle's layout (``Oracle.to_arrays``) for the ratio
            discriminator's q to start from (``TrainConfig.discriminator.ratio_start``); ``state`` overrides it.
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        *,
        architecture: str = "cnn",
        discriminator_kwargs: dict[str, Any] | None = None,
        lr: float = 1e-4,
        seed: int = 0,
        device: str = "auto",
        score_precision: str = "fp32",
        num_threads: int | None = None,
        train_precision: str = "fp32",
        state: dict[str, Any] | None = None,
        real_data: np.ndarray | None = None,
        oracle: dict[str, np.ndarray] | None = None,
        q_start: dict[str, np.ndarray] | None = None,
    ) -> None:
        if train_precision not in TRAIN_PRECISIONS:
            raise ConfigError(f"train_precision must be one of {TRAIN_PRECISIONS}, got {train_precision!r}")
        if num_threads:
            torch.set_num_threads(num_threads)
        device = resolve_device(device, "the discriminator actor", option="--discriminator-num-gpus")
        self.architecture = architecture
        self.train_precision = train_precision_on(device, train_precision, "the discriminator actor")
        torch.manual_seed(seed)
        self.model = build_discriminator(architecture, vocab_size, seq_len, **(discriminator_kwargs or {})).to(device)
        self.score_precision = score_precision_on(self.model.device, score_precision, "the discriminator actor")
        self.optimizer = make_discriminator_optimizer(self.model, lr=lr)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.sampling = torch.Generator(device=device).manual_seed(seed + 1)
        """Draws the negatives of ``train_on_generator`` (checkpointed with the rest)."""
        self.real: torch.Tensor | None = None
        self.oracle: Oracle | None = None
        self.oracle_sampling = torch.Generator(device=device).manual_seed(seed + 2)
        """Draws the fresh positives when an oracle is given (checkpointed with the rest)."""
        if oracle is not None:
            with torch.random.fork_rng(devices=[]):
                self.oracle = Oracle.from_arrays(oracle, "the run's oracle", seq_len=seq_len).to(device)
        if q_start is not None:
            if not isinstance(self.model, RatioDiscriminator):
                raise ConfigError(f"q_start is where the ratio discriminator's q starts; the {architecture!r} "
                                  "discriminator has no q")
            with torch.random.fork_rng(devices=[]):
                self.model.start(Oracle.from_arrays(q_start, "q's start", seq_len=seq_len).state_dict())
        self._generator: Generator | None = None
        self.version = 0
        """Incremented by every ``train`` / ``set_weights``: tells holders of a copy that it is stale."""
        if real_data is not None:
            self.set_real_data(real_data)
        if state is not None:
            self.set_state(state)

    def __repr__(self) -> str:
        """Its device and Ray GPUs (Ray keeps an actor's repr: ``ray list actors --detail`` shows where it ran)."""
        return actor_description(type(self).__name__, self.model.device)

    def score(self, tokens: np.ndarray) -> np.ndarray:
        """P(real) of each sequence: int array [M, T] → float32 [M]."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2:
            raise DataError(f"DiscriminatorActor.score: expected token ids [M, T], got shape {tokens.shape}")
        tokens = torch.from_numpy(tokens.astype(np.int64, copy=False))
        scores = self.model.score(tokens, precision=self.score_precision) if self.architecture == "cnn" else \
            self.model.score(tokens)
        return scores.cpu().numpy()

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """log D − log(1 − D) of each sequence: int array [M, T] → float64 [M], for the information measure.

        The dense and ratio discriminators give their last prefix's logit itself: their probabilities saturate
        in float32 where the logit still orders sequences (the ratio one's is a log-likelihood ratio of tens of
        nats). The CNN's comes from its probability (``probability_logits``)."""
        if self.architecture == "cnn":
            return probability_logits(torch.from_numpy(self.score(tokens)).double()).numpy()
        tokens = np.asarray(tokens)
        if tokens.ndim != 2:
            raise DataError(f"DiscriminatorActor.logits: expected token ids [M, T], got shape {tokens.shape}")
        logits = self.model.prefix_logits(torch.from_numpy(tokens.astype(np.int64, copy=False)))[:, -1]
        return logits.double().cpu().numpy()

    def train(self, real: np.ndarray, fake: np.ndarray, epochs: int, batch_size: int = 64) -> dict[str, float]:
        """One d-step of the paper's schedule: ``epochs`` passes over real (1) vs fake (0)."""
        stats = train_discriminator(
            self.model, self.optimizer, torch.as_tensor(real, dtype=torch.long),
            torch.as_tensor(fake, dtype=torch.long), epochs=epochs, batch_size=batch_size,
            generator=self.shuffle, precision=self.train_precision,
        )
        self.version += 1
        return {**stats, "version": self.version}

    def set_real_data(self, tokens: np.ndarray) -> int:
        """Keep the real sequences [n, T] for ``train_on_generator`` (sent once; returns n)."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[0] == 0 or tokens.shape[1] != self.model.seq_len:
            raise DataError(f"DiscriminatorActor.set_real_data: expected a non-empty [n, {self.model.seq_len}] "
                            f"token array, got shape {tokens.shape}")
        if tokens.min() < 0 or tokens.max() >= self.model.vocab_size:
            raise DataError(f"DiscriminatorActor.set_real_data: token ids must be in [0, {self.model.vocab_size}), "
                            f"got [{tokens.min()}, {tokens.max()}]")
        self.real = torch.from_numpy(tokens.astype(np.int64, copy=False)).to(self.model.device)
        return int(tokens.shape[0])

    def train_on_generator(
        self, generator_config: dict[str, Any], generator_state: dict[str, Any], num_negatives: int, epochs: int,
        batch_size: int = 64,
    ) -> dict[str, float]:
        """One d-step of the paper: ``num_negatives`` fresh samples of the given generator vs the real data.

        The classes are balanced: with fewer negatives than real sequences, a
        fresh random subset of the real ones of the same size is used (the
        paper: 10,000 of each, the whole real set), so the discriminator cannot
        win by predicting the majority class.

        The negatives are sampled here, next to the model that trains on them, so
        only the generator's weights (~0.7 MB in the paper setting) cross the
        actor boundary, not 10,000 sequences per d-step. Returns the d-step's
        loss and accuracy, how many real and fake sequences it used, the seconds
        spent sampling and training, and the new version.
        """
        if self.real is None:
            raise RuntimeError("DiscriminatorActor.train_on_generator: call set_real_data first")
        if num_negatives <= 0:
            raise ConfigError(f"num_negatives must be > 0, got {num_negatives}")
        config = GeneratorConfig(**generator_config)
        if self._generator is None or self._generator.config != config:
            with torch.random.fork_rng(devices=[]):  # its init is overwritten: leave the dropout RNG untouched
                self._generator = Generator(config, init_std=None).to(self.model.device).eval()
        self._generator.load_state_dict({k: torch.as_tensor(v) for k, v in generator_state.items()})
        if isinstance(self.model, RatioDiscriminator):  # its reference: the generator it is trained against
            self.model.set_reference(generator_state)
        started = time.perf_counter()
        fake = self._generator.sample(num_negatives, generator=self.sampling)  # (num_negatives, T)
        real = self.real
        if self.oracle is not None:  # fresh positives, as many as the negatives
            real = self.oracle.sample(num_negatives, generator=self.oracle_sampling)
        elif num_negatives < real.shape[0]:  # balanced classes: as many real sequences as fakes
            real = real[torch.randperm(real.shape[0], generator=self.shuffle)[:num_negatives].to(real.device)]
        sampled = time.perf_counter()
        stats = self.train(real, fake, epochs, batch_size)
        return {**stats, "num_real": int(real.shape[0]), "num_fake": num_negatives, "sample_s": sampled - started,
                "train_s": time.perf_counter() - sampled}

    def get_weights(self) -> Weights:
        """The weights and their version, for rollout workers (put once in the object store per sync)."""
        return module_weights(self.model, self.version)

    def set_weights(self, weights: Weights) -> None:
        self.version = load_module_weights(self.model, weights)

    def get_state(self) -> dict[str, Any]:
        """Everything a checkpoint needs: weights, optimiser, the shuffling RNG and the
        process RNGs that dropout draws from (so a restored actor's next d-step is the same)."""
        state = {"weights": self.get_weights(), "optimizer": self.optimizer.state_dict(),
                 "shuffle_rng": self.shuffle.get_state(), "sampling_rng": self.sampling.get_state(),
                 "oracle_sampling_rng": self.oracle_sampling.get_state(),
                 "torch_rng": torch.get_rng_state(),
                 "score_precision": self.score_precision}
        if self.model.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.model.device)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_weights(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.shuffle.set_state(state["shuffle_rng"])
        self.sampling.set_state(state["sampling_rng"])
        if "oracle_sampling_rng" in state:
            self.oracle_sampling.set_state(state["oracle_sampling_rng"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.model.device)
        self.score_precision = score_precision_on(self.model.device, state["score_precision"],
                                                  "the discriminator actor")

    def ping(self) -> bool:
        """Liveness check used by callers before they depend on the actor."""
        return True


def start_discriminator_actor(
    name: str,
    vocab_size: int,
    seq_len: int,
    *,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_restarts: int = 0,
    start_timeout_s: float | None = None,
    **kwargs: Any,
) -> ray.actor.ActorHandle:
    """Start the named discriminator actor (``ray.get_actor(name)`` finds it) and wait until it is up.

    ``num_cpus`` / ``num_gpus`` are its Ray resources (e.g. ``num_gpus=0.5`` to
    share a GPU with rollout workers); ``start_timeout_s`` bounds the wait
    (``None``: as long as it takes to get the resources); other keyword
    arguments go to ``DiscriminatorActor``.
    """
    if num_cpus < 0 or num_gpus < 0:
        raise ConfigError(f"num_cpus and num_gpus must be >= 0, got {num_cpus} and {num_gpus}")
    actor_class = ray.remote(DiscriminatorActor)
    handle = actor_class.options(
        name=name, num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, lifetime=None,
    ).remote(vocab_size, seq_len, **kwargs)
    try:
        ray.get(handle.ping.remote(), timeout=start_timeout_s)
    except GetTimeoutError:
        ray.kill(handle, no_restart=True)
        raise
    return handle


class DiscriminatorSupervisor:
    """Owns the named discriminator actor and replaces it, with its latest state, when it dies.

    The discriminator is the one source of rewards, so a dead actor stops every
    env; and a restart that loses its weights would train the generator against
    a fresh, random discriminator without any error. Ray's own actor restarts
    (``max_restarts``) run the constructor again, and the restarted actor would
    serve the envs' reward calls with those fresh weights before anyone could
    send it the trained ones. So the actor runs with ``max_restarts=0`` and a
    replacement is started here, under the same name, whose constructor loads
    the latest snapshot (weights, optimiser, RNGs, taken after every call that
    changes them: ``run(..., changes_state=True)``) and the real data before it
    answers anything; envs find it by name (``seqgan_rl_envs.token_env``).

    Deaths are noticed by the caller of ``run`` and by a watcher thread that
    pings the actor every ``check_interval_s``: the algorithm's thread may be
    blocked on EnvRunners (or, with a local EnvRunner, be the env itself)
    whose envs wait for the discriminator to come back.

    Args:
        name, vocab_size, seq_len, num_cpus, num_gpus, actor_kwargs: as ``start_discriminator_actor``.
        real_data: the real sequences [n, T] (the d-steps' positives), given to every actor started.
        restart_attempts: starts of a replacement tried per death (then the supervisor has
            failed for good: every ``run`` raises a ``TrainingError`` with the causes), and
            replacements one ``run`` call may go through.
        start_timeout_s: how long one start may wait for resources and the snapshot's loading.
        check_interval_s: how often the watcher pings the actor (and the pause between starts).
        call_timeout_s: the deadline of one call (``run``) and of the watcher's ping (queued behind
            at most one call, so answered within it); an actor that misses it is taken for hung,
            killed and replaced (``None``: no deadline).
    """

    def __init__(
        self,
        name: str,
        vocab_size: int,
        seq_len: int,
        *,
        real_data: np.ndarray,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        restart_attempts: int = RESTART_ATTEMPTS,
        start_timeout_s: float = START_TIMEOUT_S,
        check_interval_s: float = CHECK_INTERVAL_S,
        call_timeout_s: float | None = None,
        **actor_kwargs: Any,
    ) -> None:
        self.name = name
        self.restart_attempts = restart_attempts
        self.check_interval_s = check_interval_s
        self.call_timeout_s = call_timeout_s
        self.restarts = 0
        """Actors replaced so far (after they died); reported as ``discriminator/restarts``."""
        self._real_ref = ray.put(np.asarray(real_data))
        self._start = functools.partial(start_discriminator_actor, name, vocab_size, seq_len, num_cpus=num_cpus,
                                        num_gpus=num_gpus, real_data=self._real_ref, **actor_kwargs)
        self._handle = self._start()
        self._start_timeout_s = start_timeout_s
        self._snapshot: ray.ObjectRef = ray.put(ray.get(self._handle.get_state.remote(), timeout=call_timeout_s))
        self._failure: TrainingError | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{name}", daemon=True)
        self._watcher.start()

    @property
    def handle(self) -> ray.actor.ActorHandle:
        """The live actor's handle (a new one after each replacement: do not keep it across calls)."""
        return self._handle

    def run(self, call: Callable[[ray.actor.ActorHandle], ray.ObjectRef], *, changes_state: bool = False) -> Any:
        """The result of the actor call ``call(handle)`` submits (``lambda actor: actor.score.remote(x)``),
        again on a replacement if the actor died during it or missed its deadline (``call_timeout_s``).

        A call that changes the actor's state (a d-step, loading a checkpoint)
        must say so: the state after it becomes the snapshot, taken from the
        same actor, so a death before the snapshot is taken redoes the call
        too. Redone on a replacement restored from the snapshot before it, a
        d-step gives the same result (same weights, optimiser moments, RNGs).
        The snapshot is the weights, Adam's moments and the RNGs: small beside the d-step it follows.
        """
        for _ in range(self.restart_attempts + 1):
            handle = self._handle
            try:
                result = ray.get(call(handle), timeout=self.call_timeout_s)
                state = ray.get(handle.get_state.remote(), timeout=self.call_timeout_s) if changes_state else None
            except RayActorError as error:
                self._replace(handle, error)
                continue
            except GetTimeoutError:
                self._replace(handle, self._hung())
                continue
            if not changes_state:
                return result
            with self._lock:
                if handle is self._handle:  # else replaced meanwhile, from the snapshot before: redo the call
                    self._snapshot = ray.put(state)  # owned here: survives the actor and its node
                    return result
        raise TrainingError(f"discriminator actor {self.name!r}: died or hung on each of {self.restart_attempts + 1} "
                            "tries of the same call, each time on a replacement")

    def _hung(self) -> ActorHungError:
        return ActorHungError(f"no answer within actor_timeout_s={self.call_timeout_s:g}")

    def _replace(self, dead: ray.actor.ActorHandle, cause: BaseException) -> None:
        """Start a new actor from the snapshot in place of ``dead`` (once, however many callers saw it die)."""
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if dead is not self._handle or self._stopped.is_set():
                return
            ray.kill(dead, no_restart=True)  # in case it is only unreachable or hung: never two of them
            errors = []
            for _ in range(self.restart_attempts):
                try:
                    self._handle = self._start(state=self._snapshot, start_timeout_s=self._start_timeout_s)
                    break
                except (RayActorError, GetTimeoutError, ValueError) as error:  # ValueError: name not yet freed
                    errors.append(failure_cause(error))
                    time.sleep(self.check_interval_s)
            else:
                self._failure = TrainingError(
                    f"discriminator actor {self.name!r} died or hung ({failure_cause(cause)}) and "
                    f"{self.restart_attempts} attempt(s) to start a replacement failed: {'; '.join(errors)}")
                raise self._failure
            self.restarts += 1
        logger.warning("discriminator actor %r died or hung (%s); replaced it with a new actor restored from the "
                       "latest snapshot (%d replacement(s) so far)", self.name, failure_cause(cause), self.restarts)

    def _watch(self) -> None:
        """Ping the actor until ``stop``; replace it when it is found dead, or hung: its ping waits behind at
        most one call, so one not answered within ``call_timeout_s`` means the actor answers nothing."""
        while not self._stopped.is_set():
            handle = self._handle
            pong = handle.ping.remote()
            deadline = time.monotonic() + (self.call_timeout_s if self.call_timeout_s is not None else math.inf)
            answered = False
            while not self._stopped.is_set() and time.monotonic() < deadline:
                if ray.wait([pong], timeout=self.check_interval_s)[0]:  # busy with a d-step: the ping waits
                    answered = True
                    break
            if self._stopped.is_set():
                return
            try:
                if not answered:
                    raise self._hung()
                ray.get(pong)
            except (RayActorError, ActorHungError) as error:
                try:
                    self._replace(handle, error)
                except TrainingError:
                    return  # the next ``run`` raises it
            self._stopped.wait(self.check_interval_s)

    def stop(self) -> None:
        """Stop watching and kill the actor."""
        self._stopped.set()
        self._watcher.join()
        ray.kill(self._handle)
