"""buffer: per-strand ring buffers of the last readings; decides when a window is due."""
