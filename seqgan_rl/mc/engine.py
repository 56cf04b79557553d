"""Vectorised Monte Carlo Q: every prefix of every sequence completed N times at once.

For sequences y_1..y_T, SeqGAN's action value of token t is

    Q_t = (1/N) Σ_n D(y_1..y_t, Y^n_{t+1..T}),  Y^n ~ rollout policy,   t < T
    Q_T = D(y_1..y_T)

The original release loops ``for n in N: for t in 1..T−1:`` and reruns the
rollout network over the whole sequence each time (N·(T−1) passes of T steps).
Here the rollout policy's recurrent state after every prefix is computed once
(one pass over the sequences), branched N times, and all B·N·(T−1) rollouts
advance together, one batched step per position. Rows are ordered by prefix
length, so at position p exactly the rollouts of prefixes shorter than p are
active and they form a contiguous leading block (no masking, no wasted work:
B·N·T(T−1)/2 row-steps). The N completions of one prefix start from the same
state, so their first token is drawn from one distribution per prefix with
N uniforms (``group_size``): the same tokens for 1/N of that step's
projection.

Randomness: the uniforms of every rollout step are drawn up front per
sequence, so the result does not depend on ``max_batch`` (how many rollout
rows are generated and scored together) — chunking only bounds memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from seqgan_rl.errors import TrainingError
from seqgan_rl.models.categorical import SAMPLING_CHUNK_ROWS
from seqgan_rl.models.generator import Generator

DEFAULT_NUM_ROLLOUTS = 16
"""N, the completions of each prefix where none is given (the paper's; ``TrainConfig.rollouts.num_rollouts``'s
default)."""
DEFAULT_MAX_BATCH = 1 << 16
"""Rollout rows generated and scored together at most where no bound is given
(``TrainConfig.rollouts.mc_max_batch``'s default): it bounds memory and does not change Q."""

Scorer = Callable[[Tensor], Tensor]
"""Maps token ids [M, T] (int64) to probabilities [M] that each sequence is real."""


@runtime_checkable
class PrefixRolloutScorer(Protocol):
    """A scorer that can exploit the shared prefixes of Monte Carlo rollouts (e.g. ``Discriminator``).

    ``score(tokens [M, T]) -> [M]`` scores any sequences;
    ``score_prefix_rollouts(sequences [B, T], rollouts [T−1, B, N, T]) -> [T−1, B, N]``
    where ``rollouts[t−1, b, n, :t] == sequences[b, :t]`` must return what
    ``score(rollouts.reshape(-1, T))`` would.
    """

    def score(self, tokens: Tensor) -> Tensor: ...

    def score_prefix_rollouts(self, sequences: Tensor, rollouts: Tensor) -> Tensor: ...


class MonteCarloQ:
    """Computes Q [B, T] for complete sequences with a rollout policy and a scorer."""

    def __init__(
        self,
        num_rollouts: int = DEFAULT_NUM_ROLLOUTS,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        temperature: float = 1.0,
        chunk_rows: int = SAMPLING_CHUNK_ROWS,
    ) -> None:
        """
        Args:
            num_rollouts: N, completions per prefix (paper: 16).
            max_batch: at most this many rollout rows are generated and scored
                together (whole sequences: a chunk holds ``(T−1)·N`` rows per
                sequence, and at least one sequence). Bounds memory; does not
                change the result.
            temperature: sampling temperature of the rollout policy (1 = as is).
            chunk_rows: rows per chunk of the fused projection + sampling step.
        """
        if num_rollouts < 1:
            raise ValueError(f"num_rollouts must be >= 1, got {num_rollouts}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.num_rollouts = num_rollouts
        self.max_batch = max_batch
        self.temperature = temperature
        self.chunk_rows = chunk_rows

    def draw_uniforms(
        self, batch: int, length: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> Tensor:
        """The randomness of one Q batch: [B, T−1, N, T] uniforms (one per rollout token)."""
        return torch.rand(batch, length - 1, self.num_rollouts, length, generator=generator, device=device)

    @torch.no_grad()
    def rollouts(self, sequences: Tensor, policy: Generator, uniforms: Tensor) -> Tensor:
        """Complete every prefix of ``sequences`` N times.

        Args:
            sequences: [B, T] int64 on the policy's device.
            policy: the rollout policy's model.
            uniforms: [B, T−1, N, T] uniforms for the draws.

        Returns:
            [T−1, B, N, T]: entry [t−1, b, n] is prefix y_1..y_t of sequence b
            followed by completion n.
        """
        batch, length = sequences.shape
        n = self.num_rollouts
        prefixes = length - 1
        h, c = policy.prefix_states(sequences[:, :prefixes])  # (B, T−1, H) each
        # rows ordered (t, b, n): prefix length t = 1..T−1 major; fresh buffers (written in place)
        def branch(x: Tensor) -> Tensor:  # (B, T−1, D) -> (R, D), R = (T−1)·B·N
            out = x.new_empty(prefixes, batch, n, x.shape[-1])
            out.copy_(x.transpose(0, 1).unsqueeze(2).expand_as(out))
            return out.view(-1, x.shape[-1])

        state = (branch(h), branch(c))
        tokens = branch(sequences.unsqueeze(1).expand(batch, prefixes, length))  # (R, T)
        per_prefix = batch * n
        # rows of prefix t join at column t (0-based), i.e. t·B·N rows are active there
        active = [column * per_prefix for column in range(1, length)]
        policy.continue_sequences(
            tokens, state, active_rows=active, uniforms=uniforms.transpose(0, 1).reshape(-1, length),
            temperature=self.temperature, chunk_rows=self.chunk_rows, group_size=n,
        )
        return tokens.view(prefixes, batch, n, length)

    @torch.no_grad()
    def __call__(
        self,
        sequences: Tensor,
        policy: Generator,
        scorer: Scorer | PrefixRolloutScorer,
        *,
        generator: torch.Generator | None = None,
        uniforms: Tensor | None = None,
    ) -> Tensor:
        """Q for every token of every sequence.

        Args:
            sequences: [B, T] complete sequences (any integer dtype, any device).
            policy: the rollout policy's model (``RolloutPolicy.model``); its
                device is where the rollouts run.
            scorer: [M, T] → [M] probabilities (a test function, a remote
                actor's proxy, ``Discriminator.score``), or an object with
                ``score`` and ``score_prefix_rollouts`` (``PrefixRolloutScorer``,
                e.g. a ``Discriminator``), whose shared-prefix path then scores
                the rollouts.
            generator: torch RNG on the policy's device, for reproducible Q.
            uniforms: [B, T−1, N, T] uniforms in [0, 1) to use instead of
                drawing them (``self.draw_uniforms``): a caller that splits a
                batch over workers draws them once, so Q does not depend on
                the split.

        Returns:
            [B, T] float32 Q on the policy's device; column T−1 is the scorer's
            value of the complete sequences.
        """
        sequences = policy.check_tokens(sequences)
        batch, length = sequences.shape
        if length != policy.seq_len:
            raise ValueError(f"sequences have length {length}, the rollout policy generates {policy.seq_len}")
        n = self.num_rollouts
        q = torch.empty(batch, length, dtype=torch.float32, device=policy.device)
        if length > 1:
            if uniforms is None:
                uniforms = self.draw_uniforms(batch, length, generator=generator, device=policy.device)
            elif uniforms.shape != (batch, length - 1, n, length):
                raise ValueError(
                    f"uniforms must have shape {(batch, length - 1, n, length)}, got {tuple(uniforms.shape)}"
                )
            uniforms = uniforms.to(policy.device)
            per_sequence = (length - 1) * n
            step = max(1, self.max_batch // per_sequence)
            for start in range(0, batch, step):
                stop = min(start + step, batch)
                rollouts = self.rollouts(sequences[start:stop], policy, uniforms[start:stop])
                scores = self._score_rollouts(scorer, sequences[start:stop], rollouts)  # (T−1, b, N)
                q[start:stop, :-1] = scores.mean(dim=2).t().to(q.device)
        score_full = scorer.score if isinstance(scorer, PrefixRolloutScorer) else scorer
        q[:, -1] = _as_scores(score_full(sequences), batch).to(q.device)
        return q

    @staticmethod
    def _score_rollouts(scorer: Scorer | PrefixRolloutScorer, sequences: Tensor, rollouts: Tensor) -> Tensor:
        prefixes, batch, n, length = rollouts.shape
        if isinstance(scorer, PrefixRolloutScorer):
            scores = scorer.score_prefix_rollouts(sequences, rollouts)
            return _as_scores(scores.reshape(-1), prefixes * batch * n).view(prefixes, batch, n)
        return _as_scores(scorer(rollouts.reshape(-1, length)), prefixes * batch * n).view(prefixes, batch, n)


def _as_scores(scores: Tensor, expected: int) -> Tensor:
    """Check a scorer's output: [expected] finite probabilities, as float32."""
    scores = torch.as_tensor(scores)
    if scores.shape != (expected,):
        raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected ({expected},)")
    scores = scores.to(torch.float32)
    bad = int((~torch.isfinite(scores)).sum())
    if bad:
        raise TrainingError(f"the discriminator returned non-finite scores (NaN or inf) for {bad} of {expected} "
                            "Monte Carlo completions: its weights or inputs are broken; training stops here")
    return scores
