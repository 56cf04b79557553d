"""Gymnasium environments of seqgan-rl (the token-generation env lands with the RLlib integration)."""
