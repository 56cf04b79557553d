"""Ray parts of seqgan-rl (this package imports Ray; the core does not)."""

from seqgan_rl.distributed.discriminator_actor import (
                                                      DiscriminatorActor,
                                                      DiscriminatorSupervisor,
                                                      start_discriminator_actor,
)
from seqgan_rl.distributed.rollout_workers import MonteCarloWorker, RolloutPool
from seqgan_rl.distributed.weights import Weights, load_module_weights, module_weights

__all__ = [
    "DiscriminatorActor", "DiscriminatorSupervisor", "MonteCarloWorker", "RolloutPool", "Weights",
    "load_module_weights", "module_weights",
    "start_discriminator_actor",
]
