"""``streamer config show``: the effective configuration, secrets masked."""

from __future__ import annotations

from typing import Any

import click

from streamer.commands._options import settings_from_cli, settings_options


@click.group()
def config() -> None:
    """Inspect the daemon's configuration."""


@config.command()
@settings_options
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
def show(config_file: str | None, fmt: str, **kwargs: Any) -> None:
    """Print the effective settings (defaults < YAML < environment < flags); secrets masked."""
    import json

    import yaml

    from streamer.config import masked_dict

    data = masked_dict(settings_from_cli(config_file, kwargs))
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
