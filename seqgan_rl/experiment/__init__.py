"""A training run on Ray: its phases, its checkpoints, the Ray it runs on, and Tune sweeps of it."""
