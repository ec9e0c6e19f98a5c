"""One module per caster-sim subcommand; each defines a click command."""
