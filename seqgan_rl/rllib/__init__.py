"""RLlib integration of seqgan-rl (imports Ray RLlib; the core does not)."""

from seqgan_rl.rllib.algorithm import SeqGAN, SeqGANConfig
from seqgan_rl.rllib.generator_module import GeneratorRLModule, generator_module_spec
from seqgan_rl.rllib.learner import SeqGANTorchLearner
from seqgan_rl.rllib.monte_carlo import MC_Q, MonteCarloQConnector, MonteCarloSettings

__all__ = [
    "MC_Q", "GeneratorRLModule", "MonteCarloQConnector", "MonteCarloSettings", "SeqGAN", "SeqGANConfig",
    "SeqGANTorchLearner", "generator_module_spec",
]
