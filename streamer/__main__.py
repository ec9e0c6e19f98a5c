"""`python -m streamer` = the `streamer` command."""

from streamer.cli import main

main()
