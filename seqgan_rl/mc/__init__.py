"""Monte Carlo estimation of SeqGAN's per-token value Q (pure PyTorch, no Ray).

``MonteCarloQ`` computes Q for a batch of sequences with one batched sampling
step per time step; ``RolloutPolicy`` holds the delayed copy of the generator
that completes the prefixes. The Ray rollout workers wrap these.
"""

from seqgan_rl.mc.engine import DEFAULT_MAX_BATCH, DEFAULT_NUM_ROLLOUTS, MonteCarloQ, Scorer
from seqgan_rl.mc.rollout_policy import RolloutPolicy

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_NUM_ROLLOUTS", "MonteCarloQ", "RolloutPolicy", "Scorer"]
