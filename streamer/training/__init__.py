"""training: windows from heat files, the training loop, held-out evaluation, baselines."""
