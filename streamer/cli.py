"""``streamer``: the monitoring daemon and its tools."""

from __future__ import annotations

import click

from streamer.lazy_group import LazyGroup


@click.group(
    cls=LazyGroup,
    lazy_subcommands={
        "run": "streamer.commands.run:run",
        "demo": "streamer.commands.demo:demo",
        "alerts": "streamer.commands.alerts:alerts",
        "train": "streamer.commands.train:train",
        "evaluate": "streamer.commands.evaluate:evaluate",
        "bench": "streamer.commands.bench:bench",
        "config": "streamer.commands.config:config",
        "model": "streamer.commands.model:model",
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
def cli() -> None:
    """Defect monitoring for continuous casting strands: Kafka readings in, alerts out."""


def main() -> None:
    cli()
