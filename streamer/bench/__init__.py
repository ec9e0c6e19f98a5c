"""bench: capacity and latency figures a plant can size hardware with (`streamer bench`)."""
