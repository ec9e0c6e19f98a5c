"""``streamer run``: the daemon."""

from __future__ import annotations

import sys
from typing import Any

import click

from streamer.commands._options import settings_from_cli, settings_options


@click.command()
@settings_options
def run(config_file: str | None, **kwargs: Any) -> None:
    """Run the monitoring daemon until SIGTERM/SIGINT.

    Consumes readings (key = strand id) in a consumer group, keeps a ring buffer per strand,
    runs the model over due windows and publishes one alert per evaluation (or per level
    change) to the alerts topic; undecodable or invalid records go to the dead-letter topic.
    Offsets are committed only after the alerts derived from them are acknowledged.
    On SIGTERM it drains, commits and exits 0. Settings: defaults < --config YAML <
    STREAMER_* environment (nested with __) < these flags.
    """
    import asyncio

    from streamer.app import Application
    from streamer.ops.logging import configure_logging

    settings = settings_from_cli(config_file, kwargs)
    configure_logging(settings.log.level, settings.log.format)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # optional: `pip install streamer[fast]`
        runner = asyncio.run
    try:
        code = runner(Application(settings).run())
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
