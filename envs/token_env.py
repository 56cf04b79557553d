"""Token generation as a Gymnasium environment: one episode is one sequence.

The agent (the generator) appends one token per step; the episode ends after
``seq_len`` tokens, or earlier when ``end_token`` is configured and emitted.
The only reward is terminal: the discriminator's probability that the finished
sequence is real (SeqGAN's reward; per-token Monte Carlo values are computed
from complete episodes by the rollout workers, not here).

## Action Space
``Discrete(vocab_size)``: the next token id.

## Observation Space
``Dict`` with
* ``"prefix"``: ``Box(0, vocab_size − 1, (seq_len,), int64)``, the tokens so far,
  padded with ``pad_token`` (default 0) to ``seq_len``;
* ``"length"``: ``Discrete(seq_len + 1)``, how many tokens ``prefix`` holds.
A recurrent policy needs only ``prefix[length − 1]`` (or its start token when
``length == 0``) and its own state, so a step costs O(1).

## Rewards
0 until the last step; then ``scorer(sequence)`` in [0, 1]. A scorer that
returns anything but one finite number in [0, 1] (a discriminator returning
NaN) is an error, never a silent 0. When the scorer is a named actor that dies
or hangs (no answer within ``scorer_timeout_s``), the reward call waits for an
actor of that name to answer again (the algorithm's ``DiscriminatorSupervisor``
starts a replacement holding the latest weights) and fails with an error after
``scorer_recovery_s``; no episode ends without its reward.

## Configuration (``env_config`` in RLlib, keyword arguments in ``gymnasium.make``)
* ``vocab_size`` (int > 0), ``seq_len`` (int > 0): required.
* ``scorer``: a callable mapping int64 token ids [M, seq_len] to M
  probabilities (tests, local use), or the name (str) of a named Ray actor with
  a ``score`` method (the discriminator actor), looked up with
  ``ray.get_actor`` on first use and again after it died.
* ``scorer_recovery_s`` (float, default 600): how long a reward call waits for
  a dead or hung scorer actor to be replaced. A SeqGAN run sets it to the
  longest its supervisor may take to bring the discriminator back
  (``seqgan_rl.distributed.discriminator_recovery_s`` of ``actor_timeout_s``),
  so the env never gives up while a replacement may still come.
* ``scorer_timeout_s`` (float or None, default None): the deadline of one
  reward call on the scorer actor; one not answered by then is taken for a
  hung actor, looked up by name again and retried (a run: ``actor_timeout_s``).
* ``end_token`` (int or None): ends the episode early when emitted; the rest of
  the sequence is filled with ``pad_token``.
* ``pad_token`` (int, default 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from seqgan_rl.errors import ScorerError

ScoreFn = Callable[[np.ndarray], Any]


def _actor_scorer(name: str, recovery_s: float, timeout_s: float | None) -> ScoreFn:
    """A scorer calling the ``score`` method of the named Ray actor (batch of one episode).

    The actor is looked up by name on first use, and again after it died or
    missed a call's deadline ``timeout_s`` (a replacement is a new actor); a
    call that finds no live actor of that name is repeated until one answers or
    ``recovery_s`` have passed.
    """
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError

    actor = None

    def score(tokens: np.ndarray) -> Any:
        nonlocal actor
        deadline = time.monotonic() + recovery_s
        pause = 0.05
        problem = None
        while True:
            try:
                if actor is None:
                    actor = ray.get_actor(name)
            except ValueError:  # no actor of that name (yet)
                problem = problem or f"there is no Ray actor named {name!r}"
            else:
                wait = max(0.0, deadline - time.monotonic())
                try:
                    return ray.get(actor.score.remote(tokens), timeout=wait if timeout_s is None else min(timeout_s,
                                                                                                         wait))
                except RayActorError as error:
                    actor = None
                    problem = f"the scorer actor {name!r} died ({type(error).__name__})"
                except GetTimeoutError:
                    actor = None
                    problem = f"the scorer actor {name!r} hung (no answer within scorer_timeout_s={timeout_s})"
            if time.monotonic() >= deadline:
                raise ScorerError(f"TokenGenerationEnv: {problem} and none answered within scorer_recovery_s="
                                  f"{recovery_s:g}; the finished sequence {tokens[0].tolist()} has no reward")
            time.sleep(pause)
            pause = min(2 * pause, 1.0)

    return score


class TokenGenerationEnv(gym.Env):
    """Generate a token sequence; terminal reward from a scorer (see module docstring)."""

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, config: Mapping[str, Any] | None = None, render_mode: str | None = None, **kwargs: Any) -> None:
        settings = {**(dict(config) if config else {}), **kwargs}
        unknown = set(settings) - {"vocab_size", "seq_len", "scorer", "end_token", "pad_token", "scorer_recovery_s",
                                   "scorer_timeout_s"}
        if unknown:
            raise ValueError(f"TokenGenerationEnv: unknown config key(s) {sorted(unknown)}")
        for key in ("vocab_size", "seq_len"):
            value = settings.get(key)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"TokenGenerationEnv: {key} must be a positive int, got {value!r}")
        self.vocab_size = int(settings["vocab_size"])
        self.seq_len = int(settings["seq_len"])
        self.pad_token = int(settings.get("pad_token", 0))
        end_token = settings.get("end_token")
        self.end_token = None if end_token is None else int(end_token)
        for key, value in (("pad_token", self.pad_token), ("end_token", self.end_token)):
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"TokenGenerationEnv: {key} {value} is outside [0, {self.vocab_size})")
        scorer = settings.get("scorer")
        if scorer is None or not (callable(scorer) or isinstance(scorer, str)):
            raise ValueError("TokenGenerationEnv: scorer must be a callable or the name of a Ray actor")
        self._scorer_spec = scorer
        self.scorer_recovery_s = float(settings.get("scorer_recovery_s", 600.0))
        if not self.scorer_recovery_s >= 0:
            raise ValueError(f"TokenGenerationEnv: scorer_recovery_s must be >= 0, got {self.scorer_recovery_s}")
        timeout = settings.get("scorer_timeout_s")
        self.scorer_timeout_s = None if timeout is None else float(timeout)
        if self.scorer_timeout_s is not None and not self.scorer_timeout_s > 0:
            raise ValueError(f"TokenGenerationEnv: scorer_timeout_s must be > 0, got {timeout}")
        self._score: ScoreFn | None = scorer if callable(scorer) else None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"TokenGenerationEnv: render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

        self.action_space = spaces.Discrete(self.vocab_size)
        self.observation_space = spaces.Dict({
            "prefix": spaces.Box(0, self.vocab_size - 1, shape=(self.seq_len,), dtype=np.int64),
            "length": spaces.Discrete(self.seq_len + 1),
        })
        self._tokens = np.full(self.seq_len, self.pad_token, dtype=np.int64)
        self._length = 0
        self._done = True

    def _observation(self) -> dict[str, Any]:
        return {"prefix": self._tokens.copy(), "length": self._length}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._tokens.fill(self.pad_token)
        self._length = 0
        self._done = False
        return self._observation(), {}

    def step(self, action: Any):
        if self._done:
            raise RuntimeError("TokenGenerationEnv.step called after the episode ended; call reset() first")
        if not self.action_space.contains(action) and not (
            isinstance(action, (int, np.integer)) and 0 <= int(action) < self.vocab_size
        ):
            raise ValueError(f"TokenGenerationEnv: action {action!r} is not a token id in [0, {self.vocab_size})")
        token = int(action)
        self._tokens[self._length] = token
        self._length += 1
        terminated = self._length == self.seq_len or (self.end_token is not None and token == self.end_token)
        reward = 0.0
        if terminated:
            self._done = True
            reward = self._terminal_reward()
        return self._observation(), reward, terminated, False, {"length": self._length}

    def _terminal_reward(self) -> float:
        if self._score is None:
            self._score = _actor_scorer(self._scorer_spec, self.scorer_recovery_s, self.scorer_timeout_s)
        raw = np.asarray(self._score(self._tokens[None, :].copy()), dtype=np.float64).reshape(-1)
        if raw.shape != (1,) or not np.isfinite(raw[0]) or not 0.0 <= raw[0] <= 1.0:
            source = "scorer" if callable(self._scorer_spec) else f"discriminator actor {self._scorer_spec!r}"
            problem = "NaN" if raw.shape == (1,) and np.isnan(raw[0]) else repr(raw)
            raise ScorerError(f"TokenGenerationEnv: the {source} returned {problem} for the finished sequence "
                              f"{self._tokens[: self._length].tolist()}, expected one probability in [0, 1]; "
                              "not training on it")
        return float(raw[0])

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return " ".join(str(t) for t in self._tokens[: self._length])
        return None
