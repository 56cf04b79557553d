"""What runs train on: token tables on disk, text corpora and their vocabulary, the oracle's samples."""
