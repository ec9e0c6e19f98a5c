"""evaluation: event-level scoring shared by `streamer evaluate`, the demo and the bench."""
