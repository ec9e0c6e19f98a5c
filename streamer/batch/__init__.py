"""batch: dynamic batching of due windows across strands and polls."""
