"""Files that a crash never leaves half-written: atomic writes and versioned, sealed checkpoints."""
