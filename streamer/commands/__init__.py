"""One module per streamer subcommand; each defines a click command."""
