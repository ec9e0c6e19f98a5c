"""``caster-sim replay``: publish heats (folder, historian CSV or a live simulation) to Kafka.

Heavy imports (numpy, pyarrow, aiokafka) happen inside the command so ``--help`` is fast.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from simulators.keyvalue import parse_pairs

EXIT_INTERRUPTED = 130


def _speed(value: str) -> float | None:
    if value.strip().lower() in ("max", "inf"):
        return None
    try:
        s = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'max'") from None
    if not (s > 0):
        raise click.BadParameter("must be > 0, or 'max'")
    return s


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    """A repeatable KEY=VALUE flag's values; a malformed part is a usage error naming it."""
    return parse_pairs(items, lambda part: click.BadParameter(f"{part!r} is not KEY=VALUE",
                                                              param_hint=what))


def _yaml_values(pairs: dict[str, str]) -> dict[str, Any]:
    import yaml

    return {k: yaml.safe_load(v) for k, v in pairs.items()}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"rates.sticker": 2}`` -> ``{"rates": {"sticker": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *head, last = key.split(".")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = value
    return out


def _simulate(config_path: Path | None, sim_opts: dict[str, Any]) -> Any:
    """Run the caster simulator in memory; its module is imported only here."""
    try:
        from simulators.caster.config import ConfigError, load_config
    except ImportError as exc:
        raise click.ClickException(f"--simulate is not available: the simulator config "
                                   f"cannot be imported ({exc})") from None
    generate = None
    import importlib

    for mod_name in ("simulators.caster", "simulators.caster.generate",
                     "simulators.caster.generator"):
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        cand = getattr(mod, "generate", None)
        if cand is not None and not callable(cand):  # a submodule called generate
            cand = getattr(cand, "generate", None)
        if callable(cand):
            generate = cand
            break
    if generate is None:
        raise click.ClickException("--simulate is not available: no generate(config) function "
                                   "in simulators.caster yet; generate a heat folder with "
                                   "`caster-sim generate` and replay that")
    try:
        config = load_config(config_path, **_nest(sim_opts))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return generate(config)


@contextlib.contextmanager
def _cli_logging(verbose: bool) -> Iterator[None]:
    """Our warnings as "warning: ..." on stderr; aiokafka's reconnect chatter only with -v
    (the outcome is reported in one line anyway). Restored afterwards (tests run the
    command in-process)."""
    import logging

    class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
        @property  # type: ignore[override]
        def stream(self) -> Any:  # whatever sys.stderr is now
            return sys.stderr

        @stream.setter
        def stream(self, _value: Any) -> None:
            pass

    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s" if verbose
                                           else "warning: %(message)s"))
    ours, kafka = logging.getLogger("simulators"), logging.getLogger("aiokafka")
    saved = (ours.level, ours.propagate, kafka.level)
    ours.addHandler(handler)
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    kafka.setLevel(logging.INFO if verbose else logging.CRITICAL)
    if verbose:
        kafka.addHandler(handler)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        kafka.removeHandler(handler)
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        kafka.setLevel(saved[2])


@click.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--bootstrap", "-b", default="127.0.0.1:9092", show_default=True,
              envvar="CASTER_SIM_BOOTSTRAP", metavar="HOST:PORT",
              help="Kafka bootstrap servers (env CASTER_SIM_BOOTSTRAP).")
@click.option("--topic", "-t", default="caster.readings", show_default=True,
              help="Readings topic.")
@click.option("--speed", "-s", default="1", show_default=True, metavar="FACTOR|max",
              help="Event time runs FACTOR times faster than wall time; 'max' = as fast as "
                   "the broker takes it.")
@click.option("--events-topic", default=None, metavar="TOPIC",
              help="Also publish the ground-truth events (and hard negatives) to this topic.")
@click.option("--events-at", type=click.Choice(["onset", "start"]), default="onset",
              show_default=True,
              help="Publish each event when the replay clock reaches its onset, or all at start.")
@click.option("--no-nuisances", is_flag=True, help="Leave hard negatives out of --events-topic.")
@click.option("--strand", "strands", multiple=True, metavar="ID",
              help="Heat folder: replay only this strand (repeatable). CSV: the strand id of "
                   "the file (required).")
@click.option("--strand-map", "strand_maps", multiple=True, metavar="OLD=NEW[,..]",
              help="Publish strand OLD under id NEW (repeatable).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Stop after the first N readings (in time order).")
@click.option("--rebase-time", is_flag=True,
              help="Shift event times so the first reading is 'now' (live-looking data).")
@click.option("--create-topic", is_flag=True,
              help="Create missing topics (else a missing topic is an error).")
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(min=1),
              help="Partitions of topics made by --create-topic.")
@click.option("--format", "fmt", type=click.Choice(["auto", "heats", "csv"]), default="auto",
              show_default=True, help="SOURCE is a heat folder or a historian CSV (auto: by "
                                      "whether it is a directory or *.csv).")
@click.option("--heat", default=None, help="CSV: heat id of the rows (default: file name).")
@click.option("--column-map", type=click.Path(path_type=Path), default=None,
              help="CSV: YAML mapping 'channel: CSV column' (ts: for the timestamp).")
@click.option("--map", "maps", multiple=True, metavar="CH=COL[,..]",
              help="CSV: map columns inline, e.g. ts=Timestamp,casting_speed=CastSpeed "
                   "(overrides --column-map).")
@click.option("--ignore-column", "ignore_columns", multiple=True, metavar="COL",
              help="CSV: a column to skip (repeatable).")
@click.option("--rows", type=click.IntRange(1, 10), default=3, show_default=True,
              help="CSV: thermocouple rows expected.")
@click.option("--cols", type=click.IntRange(1, 40), default=8, show_default=True,
              help="CSV: thermocouple columns expected.")
@click.option("--ts-unit", type=click.Choice(["s", "ms"]), default="s", show_default=True,
              help="CSV: unit of numeric (epoch) timestamps.")
@click.option("--timezone", default="UTC", show_default=True,
              help="CSV: zone of ISO timestamps without an offset.")
@click.option("--delimiter", default=",", show_default=True, help="CSV: field separator.")
@click.option("--simulate", is_flag=True,
              help="Replay a fresh simulation (no SOURCE) instead of a file.")
@click.option("--sim-config", type=click.Path(path_type=Path), default=None,
              help="--simulate: simulator YAML config.")
@click.option("--sim", "sim_opts", multiple=True, metavar="KEY=VALUE",
              help="--simulate: override a simulator setting, e.g. --sim hours=0.5 "
                   "--sim rates.sticker=3 (repeatable).")
@click.option("--compression", type=click.Choice(["none", "gzip", "snappy", "lz4", "zstd"]),
              default="none", show_default=True, help="Producer compression.")
@click.option("--batch-size", type=click.IntRange(min=1024), default=512 * 1024,
              show_default=True, help="Producer max batch size, bytes.")
@click.option("--linger-ms", type=click.IntRange(min=0), default=5, show_default=True,
              help="Producer linger (events only: readings go out in closed batches).")
@click.option("--producer-option", "-X", "producer_opts", multiple=True, metavar="KEY=VALUE",
              help="Extra AIOKafkaProducer argument, e.g. -X security_protocol=SASL_SSL.")
@click.option("--no-idempotence", is_flag=True,
              help="Do not try the idempotent producer.")
@click.option("--connect-attempts", type=click.IntRange(min=1), default=4, show_default=True,
              help="Tries to reach the broker (doubling backoff from 0.5 s).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar (default: when stderr is a terminal).")
@click.option("--json", "as_json", is_flag=True, help="Print the final stats as one JSON line.")
@click.option("--verbose", "-v", is_flag=True, help="Show the Kafka client's own log lines.")
def replay(source: Path | None, bootstrap: str, topic: str, speed: str,
           events_topic: str | None, events_at: str, no_nuisances: bool,
           strands: tuple[str, ...], strand_maps: tuple[str, ...], limit: int | None,
           rebase_time: bool, create_topic: bool, partitions: int, fmt: str,
           heat: str | None, column_map: Path | None, maps: tuple[str, ...],
           ignore_columns: tuple[str, ...], rows: int, cols: int, ts_unit: str,
           timezone: str, delimiter: str, simulate: bool, sim_config: Path | None,
           sim_opts: tuple[str, ...], compression: str, batch_size: int, linger_ms: int,
           producer_opts: tuple[str, ...], no_idempotence: bool, connect_attempts: int,
           progress: bool | None, as_json: bool, verbose: bool) -> None:
    """Publish readings to Kafka: key = strand id, value = reading JSON (v1).

    SOURCE is a heat folder (from `caster-sim generate`) or a plant historian CSV export
    (one strand per file, see docs/replay.md), or use --simulate. Strands are merged by
    event time; each strand's readings keep their seq order. Ctrl-C stops cleanly: what
    was sent is flushed and the command prints how far it got, then exits 130.

    \b
    Examples:
      caster-sim replay heats/ -b 127.0.0.1:9092 --speed 10 --events-topic caster.events
      caster-sim replay plant.csv --strand C1-S1 --heat H123 \\
          --map ts=Timestamp,casting_speed=CastSpeed --speed max
    """
    try:
        with _cli_logging(verbose):
            _run(**locals())
    except KeyboardInterrupt:  # before the event loop took over the signals
        click.echo("interrupted before anything was sent", err=True)
        sys.exit(EXIT_INTERRUPTED)


def _run(*, source: Path | None, bootstrap: str, topic: str, speed: str,
         events_topic: str | None, events_at: str, no_nuisances: bool,
         strands: tuple[str, ...], strand_maps: tuple[str, ...], limit: int | None,
         rebase_time: bool, create_topic: bool, partitions: int, fmt: str, heat: str | None,
         column_map: Path | None, maps: tuple[str, ...], ignore_columns: tuple[str, ...],
         rows: int, cols: int, ts_unit: str, timezone: str, delimiter: str, simulate: bool,
         sim_config: Path | None, sim_opts: tuple[str, ...], compression: str,
         batch_size: int, linger_ms: int, producer_opts: tuple[str, ...],
         no_idempotence: bool, connect_attempts: int, progress: bool | None,
         as_json: bool, verbose: bool) -> None:
    import asyncio
    import json
    import signal
    import time

    from simulators.heatfile import HeatFileError
    from simulators.historian import (HistorianError, load_column_map, parse_column_map,
                                      read_historian_csv)
    from simulators.replay import ReplayError, ReplayPlan, ReplayStats, load_source
    from simulators.replay import replay as run_replay
    from streamer.channels import ChannelLayout

    factor = _speed(speed)
    smap = _pairs(strand_maps, "--strand-map")
    popts: dict[str, Any] = _yaml_values(_pairs(producer_opts, "--producer-option"))

    # -- load and check everything before connecting --------------------------------------
    if simulate:
        if source is not None:
            raise click.UsageError("give SOURCE or --simulate, not both")
        heats = _simulate(sim_config, _yaml_values(_pairs(sim_opts, "--sim")))
        strand_filter: list[str] | None = list(strands) or None
    else:
        if source is None:
            raise click.UsageError("missing SOURCE (a heat folder or a CSV file), or --simulate")
        if sim_config or sim_opts:
            raise click.UsageError("--sim-config/--sim need --simulate")
        kind = fmt
        if kind == "auto":
            if source.is_dir() or source.name == "readings.parquet":
                kind = "heats"
            elif source.suffix.lower() in (".csv", ".txt", ".tsv"):
                kind = "csv"
            elif not source.exists():
                raise click.ClickException(f"{source}: not found")
            else:
                raise click.ClickException(f"{source}: cannot tell its format; expected a heat "
                                           "folder or a .csv file (or pass --format)")
        try:
            if kind == "csv":
                if len(strands) != 1:
                    raise click.UsageError("a CSV holds one strand: give exactly one --strand ID")
                cmap = load_column_map(column_map) if column_map else {}
                cmap.update(parse_column_map(maps))
                heats = read_historian_csv(
                    source, strand=strands[0], heat=heat, column_map=cmap,
                    layout=ChannelLayout(tc_rows=rows, tc_cols=cols),
                    ignore_columns=ignore_columns, ts_unit=ts_unit, timezone=timezone,
                    delimiter=delimiter)
                strand_filter = None
            else:
                heats = load_source(source)
                strand_filter = list(strands) or None
        except (HeatFileError, HistorianError) as exc:
            raise click.ClickException(str(exc)) from None
    try:
        plan = ReplayPlan.from_heats(
            heats, strands=strand_filter, strand_map=smap, limit=limit,
            rebase_ts=time.time() if rebase_time else None,
            events=events_topic is not None, nuisances=not no_nuisances,
            events_at=events_at)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if plan.n == 0:
        raise click.ClickException("nothing to replay (no readings selected)")

    # -- replay ---------------------------------------------------------------------------
    bar = None
    if progress is None:
        progress = sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=plan.n, unit="rec", unit_scale=True, dynamic_ncols=True,
                   desc=f"replay -> {topic}", file=sys.stderr)

    def on_progress(st: ReplayStats) -> None:
        if bar is not None:
            bar.update(st.sent - bar.n)
            bar.set_postfix(acked=st.acked, refresh=False)

    popts = {"compression_type": None if compression == "none" else compression,
             "max_batch_size": batch_size, "linger_ms": linger_ms, **popts}
    outcome: dict[str, Any] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        signals = 0

        def on_signal(signame: str) -> None:
            nonlocal signals
            signals += 1
            if signals == 1:
                click.echo(f"\n{signame}: stopping, flushing what was sent "
                           "(again to abandon the flush)", err=True)
                stop.set()
            elif task is not None:
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig.name)
        try:
            outcome["stats"] = await run_replay(
                plan, topic=topic, bootstrap=bootstrap, speed=factor,
                events_topic=events_topic, create_topic=create_topic, partitions=partitions,
                stop=stop, on_progress=on_progress, producer_options=popts,
                idempotence=not no_idempotence, connect_attempts=connect_attempts)
        except ReplayError as exc:
            outcome["error"] = exc
        except asyncio.CancelledError:
            outcome["cancelled"] = True
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    asyncio.run(main())
    if bar is not None:
        bar.close()
    stats: ReplayStats | None = outcome.get("stats")
    err: ReplayError | None = outcome.get("error")
    if err is not None:
        stats = err.stats
    if as_json and stats is not None:
        click.echo(json.dumps(stats.as_dict()))
    if outcome.get("cancelled"):
        click.echo("abandoned the flush: records sent but not acknowledged may or may not be "
                   "on the broker", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if err is not None:
        if stats is None or stats.sent == 0:
            raise click.ClickException(f"{err} (nothing was published)")
        for line in stats.summary_lines():  # includes "error: ..."
            click.echo(line, err=True)
        sys.exit(1)
    assert stats is not None
    if not as_json:
        for line in stats.summary_lines():
            click.echo(line)
    if stats.interrupted:
        sys.exit(EXIT_INTERRUPTED)
