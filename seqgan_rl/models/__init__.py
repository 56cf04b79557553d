"""The models: the generator (the policy), the synthetic oracle, the CNN discriminator, the dense (per-prefix)
discriminator, and their kernels.

Pure PyTorch; ``categorical`` (exact sampling), ``projection`` (log-probabilities through the vocabulary
projection), ``precision`` and ``torch_ops`` are the fast paths the three models share.
"""
