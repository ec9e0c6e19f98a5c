"""``caster-sim``: generate heats, draw them, replay them into Kafka, run a local broker."""

from __future__ import annotations

import click

from streamer.lazy_group import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy_subcommands={
        "generate": "simulators.commands.generate:generate",
        "replay": "simulators.commands.replay:replay",
        "broker": "simulators.commands.broker:broker",
        "plot": "simulators.commands.plot:plot",
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def cli() -> None:
    """Caster simulator for streamer: heats with labelled defects, replay into Kafka, a local broker."""


def main() -> None:
    cli()
