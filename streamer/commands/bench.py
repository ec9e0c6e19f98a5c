"""``streamer bench``: capacity and latency figures to size hardware with."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--bootstrap", default=None,
              help="Kafka bootstrap servers (default: start the embedded broker here).")
@click.option("--model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Checkpoint (default: the shipped model).")
@click.option("--quick", is_flag=True, help="Small settings: all five sections in about a minute.")
@click.option("--sections", default="client,ingest,latency,capacity,model", show_default=True,
              help="Comma-separated subset of: client, ingest, latency, capacity, model.")
@click.option("--strands", type=int, default=None, help="Latency section: strands (default 64).")
@click.option("--rate", type=float, default=None, help="Latency section: readings/s per strand.")
@click.option("--seconds", type=float, default=None, help="Latency section: load duration.")
@click.option("--capacity-steps", default=None,
              help="Capacity section: strand counts to step through, e.g. 128,256,512.")
@click.option("--capacity-seconds", type=float, default=None,
              help="Capacity section: load duration of each step (default 20).")
@click.option("--torch-threads", type=int, default=0, show_default=True,
              help="Daemon's torch threads (0 = torch's default).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Latency and capacity: daemon processes in one consumer group (a GPU host "
                   "runs several, sharing the GPU).")
@click.option("--load-procs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes generating the load (one sends ~30,000 readings/s).")
@click.option("--model-batches", default=None,
              help="Model section: batch sizes, e.g. 1,64,1024,4096.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench.json"), show_default=True, help="Write all figures here.")
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the daemons' logs in this folder.")
def bench(bootstrap: str | None, model: Path | None, quick: bool, sections: str,
          strands: int | None, rate: float | None, seconds: float | None,
          capacity_steps: str | None, capacity_seconds: float | None, torch_threads: int,
          workers: int, load_procs: int, model_batches: str | None, json_out: Path,
          logs: Path | None) -> None:
    """Measure what a plant sizes hardware with, against the Kafka client's own limit.

    \b
    1 client    raw aiokafka produce, and consume + orjson decode, of the same readings
    2 ingest    the daemon's records/s with evaluation off, as a ratio to (1)
    3 latency   N strands x R Hz, every reading evaluated: reading time -> alert received
    4 capacity  most strands at 1 Hz, every reading evaluated, with p99 <= 1 s
    5 model     windows/s against batch size (CPU; CUDA where present)
    The daemon runs as its own process, as in production. Prints a table and writes JSON.
    """
    import asyncio
    import json

    from streamer.bench.report import format_report
    from streamer.bench.runner import BenchOptions
    from streamer.bench.session import run_bench

    wanted = [s.strip() for s in sections.split(",") if s.strip()]
    unknown = set(wanted) - {"client", "ingest", "latency", "capacity", "model"}
    if unknown:
        raise click.BadParameter(f"unknown sections {sorted(unknown)}", param_hint="--sections")
    opts = BenchOptions(bootstrap=bootstrap or "", broker_desc="", model=model,
                        torch_threads=torch_threads, workers=workers, load_procs=load_procs,
                        log_dir=logs)
    if quick:
        opts.client_records, opts.latency_seconds = 30_000, 8.0
        opts.capacity_steps, opts.capacity_seconds = (256, 1024), 5.0
        opts.model_batches, opts.model_seconds = (1, 64, 256, 1024), 0.5
    if strands:
        opts.latency_strands = strands
    if rate:
        opts.latency_rate_hz = rate
    if seconds:
        opts.latency_seconds = seconds
    if capacity_steps:
        opts.capacity_steps = _ints(capacity_steps, "--capacity-steps")
    if capacity_seconds:
        opts.capacity_seconds = capacity_seconds
    if model_batches:
        opts.model_batches = _ints(model_batches, "--model-batches")
    if logs:
        logs.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(run_bench(opts, wanted, say=lambda m: click.echo(f"  .. {m}",
                                                                              err=True)))
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_report(result))
    json_out.write_text(json.dumps(result, indent=2, default=str))
    click.echo(f"figures written to {json_out}")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter("comma-separated integers", param_hint=flag) from None
    if not values or min(values) < 1:
        raise click.BadParameter("positive integers", param_hint=flag)
    return values
