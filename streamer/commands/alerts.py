"""``streamer alerts``: how an operator or another system listens to the alerts topic."""

from __future__ import annotations

import sys
from typing import Any

import click

LEVEL_ORDER = {"normal": 0, "watch": 1, "warning": 2, "alarm": 3}


def alert_matches(doc: dict[str, Any], strands: tuple[str, ...], min_level: str | None,
                  events_only: bool) -> bool:
    if strands and doc.get("strand") not in strands:
        return False
    if min_level and LEVEL_ORDER.get(doc.get("level", "normal"), 0) < LEVEL_ORDER[min_level]:
        return False
    if events_only and not doc.get("events"):
        return False
    return True


def format_row(doc: dict[str, Any]) -> str:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(doc["ts"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    probs = " ".join(f"{k}={v:.2f}" for k, v in doc["probabilities"].items())
    events = ",".join(f"{e['defect']} {e['event']}" for e in doc.get("events", []))
    return (f"{when}  {doc['strand']:<10} {doc['level']:<8} {doc.get('defect') or '-':<8} "
            f"{probs}  {events}")


@click.command()
@click.option("--bootstrap", default="localhost:9092", show_default=True,
              envvar="STREAMER_KAFKA__BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
@click.option("--topic", default="caster.alerts", show_default=True,
              envvar="STREAMER_KAFKA__ALERTS_TOPIC", help="Alerts topic.")
@click.option("--from-beginning", is_flag=True, help="Read the topic from its start "
              "(default: only new alerts).")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep waiting for new alerts; --no-follow stops when caught up.")
@click.option("--strand", "strands", multiple=True, help="Only this strand (repeatable).")
@click.option("--level", "min_level", type=click.Choice(list(LEVEL_ORDER)), default=None,
              help="Only alerts at this level or above.")
@click.option("--events-only", is_flag=True, help="Only alerts that raise or clear an alarm.")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table",
              show_default=True, help="JSON lines (for programs) or a table (for people).")
@click.option("--limit", type=int, default=0, help="Stop after this many alerts (0 = no limit).")
def alerts(bootstrap: str, topic: str, from_beginning: bool, follow: bool,
           strands: tuple[str, ...], min_level: str | None, events_only: bool, fmt: str,
           limit: int) -> None:
    """Subscribe to the alerts topic and print alerts as they arrive.

    \b
    Examples:
      streamer alerts --events-only                  # alarms raised/cleared, as a table
      streamer alerts --from-beginning --no-follow --format json --strand C1-S2
      streamer alerts --level warning | tee warnings.log
    No consumer group is joined and nothing is committed: any number of listeners can run.
    """
    import asyncio

    try:
        asyncio.run(_listen(bootstrap, topic, from_beginning, follow, strands, min_level,
                            events_only, fmt, limit))
    except KeyboardInterrupt:
        pass


async def _listen(bootstrap: str, topic: str, from_beginning: bool, follow: bool,
                  strands: tuple[str, ...], min_level: str | None, events_only: bool, fmt: str,
                  limit: int) -> None:
    import orjson
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False,
                                auto_offset_reset="earliest" if from_beginning else "latest")
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise click.ClickException(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    shown, idle = 0, 0
    if fmt == "table":
        click.echo(f"{'time (UTC)':<19}  {'strand':<10} {'level':<8} {'defect':<8} "
                   "probabilities  events")
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                idle += 1
                if not follow and idle >= 3:
                    return
                continue
            idle = 0
            for msgs in batch.values():
                for m in msgs:
                    try:
                        doc = orjson.loads(m.value)
                    except (orjson.JSONDecodeError, TypeError):
                        click.echo(f"# skipped undecodable record at offset {m.offset}",
                                   err=True)
                        continue
                    if not alert_matches(doc, strands, min_level, events_only):
                        continue
                    click.echo(m.value.decode() if fmt == "json" else format_row(doc))
                    shown += 1
                    if limit and shown >= limit:
                        return
            sys.stdout.flush()
    finally:
        await consumer.stop()
