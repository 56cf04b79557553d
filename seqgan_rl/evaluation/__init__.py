"""How good a generator or a discriminator is: NLL, BLEU and Self-BLEU, text quality over temperatures,
the discriminator's information, the samples shown at each evaluation and the metrics log of a run."""
