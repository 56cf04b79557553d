"""seqgan-rl: SeqGAN on Ray RLlib and PyTorch.

Where things live (lower layers never import higher ones, ``tests/test_layers.py``):

* ``errors``, ``storage/`` (atomic files, checkpoints), ``config/`` (every option, declared once);
* ``models/``: generator, oracle, discriminator and their fast kernels;
* ``data/``: token tables, text corpora, the vocabulary, the oracle's data;
* ``runs``: run directories read back; ``evaluation/``: NLL, BLEU, Self-BLEU, text quality, samples,
  the discriminator's information, the metrics log;
* ``mle``: the MLE loop; ``rewards``: reward models; ``mc/``: the Monte Carlo search;
* ``distributed/`` (Ray actors), ``rllib/`` (the algorithms), ``experiment/`` (a run), ``commands/`` (the CLI).

Everything up to ``mc/`` is pure PyTorch + NumPy and never imports Ray, so it
runs and is benchmarked where Ray is not installed.
"""

__version__ = "0.1.0"
