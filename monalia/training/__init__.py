"""Training library of the CNN trainer: networks, checkpoints, metrics (torch imported lazily)."""
