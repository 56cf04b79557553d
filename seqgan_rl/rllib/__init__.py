"""RLlib integration of seqgan-rl (imports Ray RLlib; the core does not)."""

from seqgan_rl.rllib.generator_module import GeneratorRLModule, generator_module_spec

__all__ = ["GeneratorRLModule", "generator_module_spec"]
