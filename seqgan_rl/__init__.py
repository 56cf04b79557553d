"""seqgan-rl: SeqGAN on Ray RLlib and PyTorch.

The core (this package's top-level modules and ``seqgan_rl.mc``) is pure
PyTorch + NumPy and never imports Ray, so it runs and is benchmarked where Ray
is not installed.
"""

__version__ = "0.1.0"
