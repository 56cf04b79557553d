"""RLlib integration of seqgan-rl (imports Ray RLlib; the core does not)."""

from seqgan_rl.rllib.generator_module import GeneratorRLModule, generator_module_spec
from seqgan_rl.rllib.learner import SeqGANTorchLearner
from seqgan_rl.rllib.monte_carlo import MC_Q, MonteCarloQConnector
from seqgan_rl.rllib.seqgan import SeqGAN, SeqGANConfig
from seqgan_rl.rllib.settings import SeqGANSettings

__all__ = [
    "MC_Q", "GeneratorRLModule", "MonteCarloQConnector", "SeqGAN", "SeqGANConfig", "SeqGANSettings",
    "SeqGANTorchLearner", "generator_module_spec",
]
