"""The System-1 baselines: one package per method, and the converter of their released checkpoints."""
