"""Options shared by commands that build daemon settings (run, config show)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from streamer.config import ConfigError, Settings, load_settings

# CLI flag -> dotted settings field. Everything else: YAML file or STREAMER_ environment.
SETTINGS_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--bootstrap", "kafka.bootstrap_servers", str, "Kafka bootstrap servers, host:port[,...]"),
    ("--group", "kafka.group_id", str, "consumer group id"),
    ("--readings-topic", "kafka.readings_topic", str, "topic to consume readings from"),
    ("--alerts-topic", "kafka.alerts_topic", str, "topic to publish alerts to"),
    ("--dead-letter-topic", "kafka.dead_letter_topic", str, "topic for rejected records"),
    ("--from", "kafka.auto_offset_reset", click.Choice(["earliest", "latest"]),
     "where a new group starts"),
    ("--model", "model.path", click.Path(dir_okay=False), "checkpoint (default: shipped model)"),
    ("--shipped", "model.shipped", click.Choice(["single", "ensemble"]),
     "which shipped model without --model"),
    ("--device", "model.device", click.Choice(["auto", "cpu", "cuda"]), "inference device"),
    ("--precision", "model.precision", click.Choice(["fp32", "bf16", "fp16"]),
     "inference precision (bf16/fp16 on CUDA only)"),
    ("--hop", "buffer.hop", int, "evaluate each strand every N readings"),
    ("--min-fill", "buffer.min_fill", int, "readings needed before a first evaluation"),
    ("--max-batch", "batch.max_batch", int, "windows per model call at most"),
    ("--max-delay-ms", "batch.max_delay_ms", float, "wait this long to fill a batch"),
    ("--publish", "alerts.publish", click.Choice(["all", "changes"]),
     "publish every evaluation or only level changes"),
    ("--http-port", "http.port", int, "port of /metrics, /healthz, /readyz (0 = off)"),
    ("--log-level", "log.level", click.Choice(["debug", "info", "warning", "error"]), "log level"),
    ("--log-format", "log.format", click.Choice(["auto", "json", "console"]), "log format"),
]


def settings_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for flag, dest, typ, help_ in reversed(SETTINGS_FLAGS):
        f = click.option(flag, dest.replace(".", "__"), type=typ, default=None,
                         help=f"{help_} [{dest}]")(f)
    f = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                     envvar="STREAMER_CONFIG",
                     help="YAML settings file (sections as in `streamer config show`)")(f)
    return f


def settings_from_cli(config_file: str | None, kwargs: dict[str, Any]) -> Settings:
    overrides = {k.replace("__", "."): kwargs.pop(k) for k in list(kwargs) if "__" in k}
    try:
        return load_settings(config_file, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
