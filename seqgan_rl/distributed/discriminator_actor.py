"""The discriminator as a named Ray actor: the single source of rewards and its training.

Environments (one score per finished episode), Monte Carlo rollout workers
(their own copy of the weights, refreshed once per sync) and the algorithm
(d-steps, checkpoints) all talk to this one actor. Everything crossing the
actor boundary is a NumPy batch, never a sequence at a time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray
import torch

from seqgan_rl.distributed.weights import Weights, load_module_weights, module_weights
from seqgan_rl.discriminator import (
    TRAIN_PRECISIONS,
    Discriminator,
    make_discriminator_optimizer,
    train_discriminator,
)
from seqgan_rl.errors import ConfigError, DataError
from seqgan_rl.generator import Generator, GeneratorConfig


class DiscriminatorActor:
    """Holds a ``Discriminator`` and its Adam optimiser; run it with ``start_discriminator_actor``.

    Args:
        vocab_size, seq_len: the token space (as the generator's).
        discriminator_kwargs: other ``Discriminator`` arguments (sizes; paper's by default).
        lr: Adam learning rate (original: 1e-4).
        seed: seeds initialisation and the d-step shuffling.
        device: "cpu", "cuda" or "auto" (a GPU when the actor was given one).
        score_precision: "fp32" or "int8" (CPU) for ``score``.
        num_threads: torch CPU threads (Ray gives an actor as many as its ``num_cpus``; on a
            small machine where the driver waits during d-steps, more can be faster).
        train_precision: "fp32" or "bf16" (bfloat16 autocast for the d-steps' forward and
            backward; ~1.4x faster on CPUs with AVX512_BF16, see ``train_discriminator``).
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        *,
        discriminator_kwargs: dict[str, Any] | None = None,
        lr: float = 1e-4,
        seed: int = 0,
        device: str = "auto",
        score_precision: str = "fp32",
        num_threads: int | None = None,
        train_precision: str = "fp32",
    ) -> None:
        if train_precision not in TRAIN_PRECISIONS:
            raise ConfigError(f"train_precision must be one of {TRAIN_PRECISIONS}, got {train_precision!r}")
        self.train_precision = train_precision
        if num_threads:
            torch.set_num_threads(num_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch.manual_seed(seed)
        self.model = Discriminator(vocab_size, seq_len, **(discriminator_kwargs or {})).to(device)
        self.model.score_precision = score_precision
        self.optimizer = make_discriminator_optimizer(self.model, lr=lr)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.sampling = torch.Generator(device=device).manual_seed(seed + 1)
        """Draws the negatives of ``train_on_generator`` (checkpointed with the rest)."""
        self.real: torch.Tensor | None = None
        self._generator: Generator | None = None
        self.version = 0
        """Incremented by every ``train`` / ``set_weights``: tells holders of a copy that it is stale."""

    def score(self, tokens: np.ndarray) -> np.ndarray:
        """P(real) of each sequence: int array [M, T] → float32 [M]."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2:
            raise DataError(f"DiscriminatorActor.score: expected token ids [M, T], got shape {tokens.shape}")
        scores = self.model.score(torch.from_numpy(tokens.astype(np.int64, copy=False)))
        return scores.cpu().numpy()

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
            self._generator = Generator(config, init_std=None).to(self.model.device).eval()
        self._generator.load_state_dict({k: torch.as_tensor(v) for k, v in generator_state.items()})
        started = time.perf_counter()
        fake = self._generator.sample(num_negatives, generator=self.sampling)  # (num_negatives, T)
        real = self.real
        if num_negatives < real.shape[0]:  # balanced classes: as many real sequences as fakes
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
                 "torch_rng": torch.get_rng_state(),
                 "score_precision": self.model.score_precision}
        if self.model.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.model.device)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_weights(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.shuffle.set_state(state["shuffle_rng"])
        self.sampling.set_state(state["sampling_rng"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.model.device)
        self.model.score_precision = state["score_precision"]

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
    **kwargs: Any,
) -> ray.actor.ActorHandle:
    """Start the named discriminator actor (``ray.get_actor(name)`` finds it) and wait until it is up.

    ``num_cpus`` / ``num_gpus`` are its Ray resources (e.g. ``num_gpus=0.5`` to
    share a GPU with rollout workers); other keyword arguments go to
    ``DiscriminatorActor``.
    """
    if num_cpus < 0 or num_gpus < 0:
        raise ConfigError(f"num_cpus and num_gpus must be >= 0, got {num_cpus} and {num_gpus}")
    actor_class = ray.remote(DiscriminatorActor)
    handle = actor_class.options(
        name=name, num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts, lifetime=None,
    ).remote(vocab_size, seq_len, **kwargs)
    ray.get(handle.ping.remote())
    return handle
