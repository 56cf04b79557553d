"""Reference Monte Carlo Q with the original release's loop structure (tests and benchmarks only).

The original ``get_reward`` runs, for each of N rollouts and each prefix length
``given`` in 1..T−1, the rollout network over a whole batch of B sequences:
T steps, teacher-forcing the first ``given`` tokens and sampling the rest,
then scores the batch with the discriminator. That is N·(T−1) passes of T
batched steps of size B; the fast engine does T−1 steps of up to B·N·(T−1) rows.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqgan_rl.mc.engine import Scorer
from seqgan_rl.models.generator import Generator


@torch.no_grad()
def reference_q(
    sequences: Tensor, policy: Generator, scorer: Scorer, num_rollouts: int, generator: torch.Generator | None = None
) -> Tensor:
    """Q [B, T] by the original loop: for n in N: for given in 1..T−1: roll out the batch."""
    sequences = policy.check_tokens(sequences)
    batch, length = sequences.shape
    rewards = torch.zeros(batch, length, device=policy.device)
    for _ in range(num_rollouts):
        for given in range(1, length):
            state = policy.initial_state(batch)
            previous = policy.start_tokens(batch)
            rollout = torch.empty_like(sequences)
            for t in range(length):
                logits, state = policy.step(previous, state)
                if t < given:
                    rollout[:, t] = sequences[:, t]
                else:
                    probs = torch.softmax(logits, dim=1)
                    rollout[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                previous = rollout[:, t]
            rewards[:, given - 1] += scorer(rollout).to(rewards.device)
        rewards[:, length - 1] += scorer(sequences).to(rewards.device)
    return rewards / num_rollouts
