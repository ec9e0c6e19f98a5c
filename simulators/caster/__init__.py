"""The caster simulator: per-strand signals, injected defects and hard negatives."""
