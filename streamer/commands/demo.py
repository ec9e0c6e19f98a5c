"""``streamer demo``: broker + simulated caster + daemon + live view, one command."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--duration", type=float, default=None,
              help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--strands", type=click.IntRange(1, 8), default=6, show_default=True,
              help="Strands of the simulated caster.")
@click.option("--speed", type=click.FloatRange(min=1), default=20.0, show_default=True,
              help="Replay speed: seconds of casting per wall-clock second.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Simulator seed.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Checkpoint (default: the shipped model).")
@click.option("--live/--no-live", default=None,
              help="Live terminal view (default: on when stdout is a terminal).")
@click.option("--torch-threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="The daemon's torch threads (0 = torch's default, one per core). One "
                   "keeps up with the demo's load and, on a busy machine, avoids the waits "
                   "between torch's threads that put seconds on the latency.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the summary as JSON here.")
def demo(duration: float | None, strands: int, speed: float, seed: int, model: Path | None,
         live: bool | None, torch_threads: int, json_out: Path | None) -> None:
    """Run everything on this machine: embedded broker, a simulated caster with injected
    defects at accelerated time, the daemon with the shipped model, and a live view.

    Ends on Ctrl-C or after --duration and prints a summary: defects caught and missed
    against the simulator's ground truth, false alarms, and latency p50/p99 from a reading's
    Kafka record timestamp (stamped as the replay sends it) to its alert being received by
    the demo's subscriber, split into stages. Everything it started is stopped.
    """
    import asyncio
    import json

    from streamer.demo import format_summary, run_demo
    from streamer.ops.logging import configure_logging

    configure_logging("warning", "console")

    live_view = sys.stdout.isatty() if live is None else live
    try:
        summary = asyncio.run(run_demo(duration=duration, strands=strands, speed=speed,
                                       seed=seed, model=model, live_view=live_view,
                                       echo=click.echo, torch_threads=torch_threads))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_summary(summary))
    if json_out is not None:
        json_out.write_text(json.dumps(summary, indent=2))
