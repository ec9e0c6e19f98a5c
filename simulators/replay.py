"""Replay readings (and, optionally, ground-truth events) into Kafka.

The library behind ``caster-sim replay`` and ``streamer demo``::

    stats = await replay(heats_or_folder, bootstrap="127.0.0.1:9092", topic="caster.readings",
                         speed=10.0, events_topic="caster.events", stop=stop_event)

What it guarantees:

- every reading goes to ``topic`` with key = strand id and the JSON of
  :mod:`streamer.formats.reading`; readings of one strand are sent in ``seq`` order (one
  key -> one partition, batches of a partition are delivered one after the other);
- strands interleave by event time: the rows of all strands are merged by ``ts`` (a strand
  whose ``ts`` ever goes backwards keeps its ``seq`` order; it is merged by its running
  maximum of ``ts``);
- ``speed=s``: the reading with event time ``ts`` is sent at wall time
  ``start + (ts - ts0) / s``; ``speed=None`` (or ``inf``): as fast as the broker takes it;
- ground-truth events go to ``events_topic`` (key = strand, :data:`EVENT_SCHEMA_NAME`),
  each right after the last reading whose ts is at or before its ``onset_ts`` (so a
  consumer learns of an event at the moment it starts, never earlier), or all before the
  first reading with ``events_at="start"``; events whose onset lies after the last
  replayed reading are not sent;
- ``stop`` (an :class:`asyncio.Event`) ends the replay early: what was handed to the
  producer is flushed and acknowledged, and the returned :class:`ReplayStats` says how far
  it got (``interrupted=True``, ``last_acked`` per strand);
- a broker failure mid-way raises :class:`ReplayError` whose ``stats`` say how much was
  sent and acknowledged.

Speed comes from three choices: the JSON of a chunk of rows is built by
:class:`streamer.formats.reading.ReadingEncoder` in a few C-level passes; records go into
Kafka record batches through aiokafka's batch API (``create_batch``/``send_batch``, about
5x cheaper per record than ``send()``), one batch per partition, partition = aiokafka's
default (murmur2) partitioner applied to the key, as ``send()`` would choose; and
acknowledgements are counted per batch, not per record.

Kafka record timestamps are left to the producer (wall time when a record is appended to
its batch; a paced replay appends a reading when it is due and ships the batch at once, so
this is its send time: ``streamer demo`` measures latency from it), not set to the
readings' event time: replaying old data with old timestamps would let the broker's
retention delete it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson

from simulators.heatfile import HeatSet, read_heats
from streamer.channels import STRAND_ID_RE
from streamer.formats.reading import ReadingEncoder

log = logging.getLogger(__name__)

EVENT_VERSION = 1
EVENT_SCHEMA_NAME = "event"  # streamer/formats/schemas/event.schema.json
DEFAULT_TOPIC = "caster.readings"
DEFAULT_EVENTS_TOPIC = "caster.events"

#: Producer settings used by replay (and by the benchmark's raw baseline). acks=all so an
#: acknowledged record is on every in-sync replica; 512 KiB batches stay under Kafka's
#: default 1 MB message.max.bytes; linger only matters for events (readings go in closed
#: batches that are sent at once).
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 512 * 1024,
    "request_timeout_ms": 20_000,
    "retry_backoff_ms": 200,
    "compression_type": None,
}

ProgressHook = Callable[["ReplayStats"], None]


class ReplayError(RuntimeError):
    """Replay could not start or failed part-way; ``stats`` (if any) says how far it got."""

    def __init__(self, message: str, stats: "ReplayStats | None" = None):
        super().__init__(message)
        self.stats = stats


# ---------------------------------------------------------------------------- statistics
@dataclass
class ReplayStats:
    """Counters of one replay. Updated live (a progress hook receives this object; read
    it, do not modify it). ``sent`` = handed to the producer, ``acked`` = acknowledged by
    the broker (acks=all), ``failed`` = given up by the producer."""

    total: int = 0
    sent: int = 0
    acked: int = 0
    failed: int = 0
    bytes_sent: int = 0  # keys + values of the readings sent
    events_total: int = 0
    events_sent: int = 0
    events_acked: int = 0
    events_failed: int = 0
    elapsed_s: float = 0.0
    clock_ts: float | None = None  # event time of the last reading sent
    last_acked: dict[str, tuple[float, int]] = field(default_factory=dict)  # strand -> (ts, seq)
    interrupted: bool = False
    error: str | None = None
    idempotent: bool | None = None  # None: producer supplied by the caller
    topic: str = ""
    events_topic: str | None = None
    speed: float | None = None
    _t0: float = field(default=0.0, repr=False)

    @property
    def complete(self) -> bool:
        return (self.acked == self.total and not self.failed and not self.interrupted
                and self.error is None)

    @property
    def rate(self) -> float:
        """Acknowledged readings per second."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """Readings' key+value megabytes (1e6) sent per second."""
        return self.bytes_sent / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        out["last_acked"] = {s: {"ts": t, "seq": q} for s, (t, q) in self.last_acked.items()}
        out.update(rate=self.rate, mb_per_s=self.mb_per_s, complete=self.complete)
        return out

    def summary_lines(self) -> list[str]:
        """Human summary: what was sent, acknowledged, how fast, and where each strand got."""
        ev = ""
        if self.events_topic:
            ev = (f" + {self.events_acked}/{self.events_total} events to {self.events_topic}"
                  + (f" ({self.events_failed} failed)" if self.events_failed else ""))
        head = "interrupted" if self.interrupted else ("failed" if (self.error or self.failed)
                                                       else "done")
        lines = [
            f"{head}: {self.acked} of {self.total} readings acknowledged "
            f"({self.sent} sent, {self.failed} failed) to {self.topic}{ev} "
            f"in {self.elapsed_s:.2f} s: {self.rate:,.0f} records/s, {self.mb_per_s:.2f} MB/s"
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.last_acked and (self.interrupted or self.error or self.failed):
            parts = [f"{s} ts={t!r} seq={q}" for s, (t, q) in sorted(self.last_acked.items())]
            lines.append("last acknowledged reading per strand: " + ", ".join(parts))
        return lines


# ---------------------------------------------------------------------------- the plan
@dataclass
class _Event:
    pos: int  # sent just before reading number `pos` (merged order)
    due_ts: float  # on the replay clock: its onset, or the first reading's ts (at start)
    strand: str
    value: bytes


@dataclass
class ReplayPlan:
    """Readings merged into send order, plus the events and where they go in that order."""

    channels: list[str]
    ts: np.ndarray  # float64 [N], event time as published
    clock: np.ndarray  # float64 [N], non-decreasing: the replay clock (running max per strand)
    seq: np.ndarray  # int64 [N]
    values: np.ndarray  # float32 [N, C], C-contiguous
    strand_codes: np.ndarray  # int32 [N] into strand_names
    strand_names: list[str]  # published strand ids
    heat_codes: np.ndarray  # int32 [N] into heat_names
    heat_names: list[str]
    events: list[_Event] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(len(self.ts))

    @classmethod
    def from_heats(
        cls,
        heats: HeatSet,
        *,
        strands: Iterable[str] | None = None,
        strand_map: Mapping[str, str] | None = None,
        limit: int | None = None,
        rebase_ts: float | None = None,
        events: bool = True,
        nuisances: bool = True,
        events_at: Literal["onset", "start"] = "onset",
    ) -> "ReplayPlan":
        """Build the send order. Raises ValueError (one line) on unusable input."""
        import pyarrow.compute as pc

        table = heats.readings
        channels = heats.channels
        available = heats.strands
        if strands is not None:
            wanted = list(dict.fromkeys(strands))
            unknown = [s for s in wanted if s not in available]
            if unknown:
                raise ValueError(f"strands {unknown} are not in the source; it holds {available}")
            table = table.filter(pc.is_in(table.column("strand"), value_set=_pa_strings(wanted)))
        smap = dict(strand_map or {})
        unknown = [s for s in smap if s not in available]
        if unknown:
            raise ValueError(f"--strand-map names strands {unknown} that are not in the source; "
                             f"it holds {available}")
        for new in smap.values():
            if not STRAND_ID_RE.match(new):
                raise ValueError(f"strand id {new!r} is not valid (letters, digits, _.:-; "
                                 "at most 64 characters)")
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")

        s_enc = table.column("strand").dictionary_encode().combine_chunks()
        src_names = [str(x) for x in s_enc.dictionary.to_pylist()]
        s_codes = s_enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        names = [smap.get(s, s) for s in src_names]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"--strand-map sends several source strands to {dup}: each "
                             "published strand needs its own sequence")
        for s in names:
            if not STRAND_ID_RE.match(s):
                raise ValueError(f"strand id {s!r} is not valid (letters, digits, _.:-; at most "
                                 "64 characters); rename it with --strand-map")
        h_enc = table.column("heat").dictionary_encode().combine_chunks()
        heat_names = [str(x) for x in h_enc.dictionary.to_pylist()]
        h_codes = h_enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        ts = table.column("ts").to_numpy().astype(np.float64, copy=False)
        seq = table.column("seq").to_numpy().astype(np.int64, copy=False)
        if len(ts) and not np.isfinite(ts).all():
            bad = int(np.flatnonzero(~np.isfinite(ts))[0])
            raise ValueError(f"readings row {bad}: ts is not a finite number")

        # 1) per strand in seq order; 2) running max of ts per strand = the strand's clock;
        # 3) merge by (clock, strand, position), which keeps every strand's seq order.
        by_strand = np.lexsort((seq, s_codes))
        sc = s_codes[by_strand]
        sq = seq[by_strand]
        same = sc[1:] == sc[:-1]
        if np.any(same & (sq[1:] <= sq[:-1])):
            k = int(np.flatnonzero(same & (sq[1:] <= sq[:-1]))[0])
            raise ValueError(f"strand {src_names[sc[k]]}: seq {int(sq[k + 1])} repeats "
                             "(seq must be strictly increasing per strand)")
        clock = ts[by_strand].copy()
        starts = np.flatnonzero(np.r_[True, ~same]) if len(sc) else np.array([], dtype=np.int64)
        ends = np.r_[starts[1:], len(sc)]
        backwards = 0
        for a, b in zip(starts, ends):
            seg = clock[a:b]
            backwards += int(np.count_nonzero(seg[1:] < seg[:-1]))
            np.maximum.accumulate(seg, out=seg)
        if backwards:
            log.warning("%d readings have a ts earlier than their predecessor on the same "
                        "strand; they are sent in seq order", backwards)
        pos = np.arange(len(sc))
        merged = by_strand[np.lexsort((pos, sc, clock))]
        clock = np.sort(clock, kind="stable")  # equals clock in merged order (non-decreasing)
        if limit is not None:
            merged = merged[:limit]
            clock = clock[:limit]

        ts_m = ts[merged]
        shift = 0.0
        if rebase_ts is not None and len(clock):
            shift = float(rebase_ts) - float(clock[0])
            ts_m = ts_m + shift
            clock = clock + shift
        values = np.empty((len(merged), len(channels)), dtype=np.float32)
        for j, ch in enumerate(channels):
            col = table.column(ch).to_numpy().astype(np.float32, copy=False)
            values[:, j] = col[merged]
        plan = cls(
            channels=list(channels), ts=ts_m, clock=clock, seq=seq[merged], values=values,
            strand_codes=s_codes[merged], strand_names=names,
            heat_codes=h_codes[merged], heat_names=heat_names,
        )
        if events:
            keep = set(src_names)
            tables = [("defect", heats.events)] + ([("nuisance", heats.nuisances)] if nuisances
                                                   else [])
            plan.events = _plan_events(tables, keep, smap, shift, clock, events_at)
        return plan


def _pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def _plan_events(
    tables: list[tuple[str, Any]], keep: set[str], smap: Mapping[str, str], shift: float,
    clock: np.ndarray, events_at: str,
) -> list[_Event]:
    if events_at not in ("onset", "start"):
        raise ValueError(f"events_at must be 'onset' or 'start', not {events_at!r}")
    out: list[_Event] = []
    if not len(clock):
        return out
    last = float(clock[-1])
    for kind, table in tables:
        for row in table.to_pylist():
            if row["strand"] not in keep:
                continue
            onset = float(row["onset_ts"]) + shift
            if events_at == "onset" and onset > last:
                continue  # the replay clock never reaches it
            strand = smap.get(row["strand"], row["strand"])
            value = encode_event(kind, row, strand=strand, shift=shift)
            pos = 0 if events_at == "start" else int(np.searchsorted(clock, onset, side="right"))
            due = float(clock[0]) if events_at == "start" else onset
            out.append(_Event(pos=pos, due_ts=due, strand=strand, value=value))
    out.sort(key=lambda e: (e.pos, e.due_ts))
    return out


def encode_event(kind: str, row: Mapping[str, Any], *, strand: str | None = None,
                 shift: float = 0.0) -> bytes:
    """JSON of one events/nuisances row (event.schema.json); ``detail`` parsed from its JSON."""
    detail: Any = row.get("detail")
    if isinstance(detail, str):
        try:
            detail = orjson.loads(detail) if detail.strip() else {}
        except orjson.JSONDecodeError:
            detail = {"text": detail}
    if not isinstance(detail, dict):
        detail = {} if detail is None else {"value": detail}
    sev = row.get("severity")
    return orjson.dumps({
        "v": EVENT_VERSION, "kind": kind, "event_id": str(row["event_id"]),
        "strand": strand or row["strand"], "heat": row["heat"], "type": row["type"],
        "onset_ts": float(row["onset_ts"]) + shift,
        "critical_ts": float(row["critical_ts"]) + shift,
        "row": int(row["row"]), "col": int(row["col"]),
        "severity": None if sev is None or (isinstance(sev, float) and math.isnan(sev))
        else float(sev),
        "detail": detail,
    })


# ---------------------------------------------------------------------------- producer
async def start_producer(
    bootstrap: str, *, idempotence: bool = True, connect_attempts: int = 4,
    backoff_s: float = 0.5, **options: Any,
) -> tuple[Any, bool]:
    """Start an AIOKafkaProducer with :data:`PRODUCER_DEFAULTS` (overridden by ``options``).

    Tries ``enable_idempotence=True`` first; a broker that refuses it (Tansu answers
    InitProducerId with UnknownError) gets one logged warning and a plain producer. A broker
    that cannot be reached is retried ``connect_attempts`` times with doubling backoff, then
    ReplayError. Returns (producer, idempotent).
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError, KafkaError

    settings = {**PRODUCER_DEFAULTS, **options}
    delay = backoff_s
    last: BaseException | None = None
    connect_attempts = max(1, connect_attempts)
    attempt = 0
    while attempt < connect_attempts:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=idempotence,
                                    **settings)
        try:
            # aiokafka logs its own error when InitProducerId is refused; the fallback
            # below says it once, in words, so silence that line during the attempt.
            with _quiet_init_pid():
                await producer.start()
            return producer, idempotence
        except KafkaConnectionError as exc:
            last = exc
            attempt += 1
            await producer.stop()
        except KafkaError as exc:
            await producer.stop()
            if not idempotence:
                raise ReplayError(f"producer could not start on {bootstrap}: "
                                  f"{type(exc).__name__}: {exc}") from None
            log.warning("broker at %s refused the idempotent producer (%s: %s); continuing "
                        "without idempotence: a retried batch may be written twice (readings "
                        "carry seq, so consumers can drop duplicates)",
                        bootstrap, type(exc).__name__, exc)
            idempotence = False
            continue  # retry at once, not counted as a connection failure
        except OSError as exc:
            last = exc
            attempt += 1
            await producer.stop()
        if attempt < connect_attempts:
            await asyncio.sleep(delay)
            delay *= 2
    reason = f"{type(last).__name__}: {last}" if last else "unknown error"
    raise ReplayError(f"cannot reach a Kafka broker at {bootstrap} after {connect_attempts} "
                      f"attempts ({reason})")


class _DropInitPidError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unexpected error during InitProducerId")


@contextlib.contextmanager
def _quiet_init_pid() -> Iterator[None]:
    lg = logging.getLogger("aiokafka.producer.sender")
    f = _DropInitPidError()
    lg.addFilter(f)
    try:
        yield
    finally:
        lg.removeFilter(f)


async def _check_topics(producer: Any, topics: list[str], bootstrap: str | None,
                        create: bool, partitions: int) -> None:
    md = await producer.client.fetch_all_metadata()
    missing = [t for t in topics if t not in md.topics()]
    if not missing:
        return
    if not create:
        raise ReplayError(f"topic(s) {missing} do not exist on the broker; create them "
                          "(e.g. caster-sim broker --topic NAME) or pass --create-topic")
    if bootstrap is None:
        raise ReplayError("create_topic needs bootstrap (the producer was supplied)")
    from simulators.broker import create_topics

    try:
        await create_topics(bootstrap, missing, partitions)
    except Exception as exc:  # noqa: BLE001 - any admin failure becomes one clear line
        raise ReplayError(f"could not create topic(s) {missing}: {type(exc).__name__}: "
                          f"{exc}") from None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        md = await producer.client.fetch_all_metadata()
        if all(t in md.topics() for t in missing):
            return
        await asyncio.sleep(0.1)
    raise ReplayError(f"created topic(s) {missing} do not show up in the broker's metadata")


# ---------------------------------------------------------------------------- replay
def load_source(source: HeatSet | str | os.PathLike[str]) -> HeatSet:
    """A HeatSet, or a heat folder (or its readings.parquet) read with read_heats."""
    if isinstance(source, HeatSet):
        return source
    p = Path(source)
    if p.name == "readings.parquet" and p.is_file():
        p = p.parent
    return read_heats(p)


async def replay(
    source: HeatSet | ReplayPlan | str | os.PathLike[str],
    *,
    topic: str = DEFAULT_TOPIC,
    bootstrap: str | None = None,
    producer: Any = None,
    speed: float | None = None,
    events_topic: str | None = None,
    events_at: Literal["onset", "start"] = "onset",
    nuisances: bool = True,
    strands: Iterable[str] | None = None,
    strand_map: Mapping[str, str] | None = None,
    limit: int | None = None,
    rebase_ts: float | None = None,
    create_topic: bool = False,
    partitions: int = 6,
    stop: asyncio.Event | None = None,
    on_progress: ProgressHook | None = None,
    progress_interval_s: float = 0.25,
    producer_options: Mapping[str, Any] | None = None,
    idempotence: bool = True,
    connect_attempts: int = 4,
    chunk_size: int = 512,
) -> ReplayStats:
    """Publish a heat set's readings (and events) to Kafka; see the module docstring.

    source: a HeatSet, a heat folder path, or a prepared :class:`ReplayPlan` (then
    ``strands``, ``strand_map``, ``limit``, ``rebase_ts``, ``events_at`` and ``nuisances``
    were decided when the plan was built and are ignored here).
    Give ``bootstrap`` (replay owns, starts and stops its producer) or ``producer`` (an
    already started AIOKafkaProducer, left running; its settings are yours).
    speed: ``None``/``inf`` = as fast as possible, else the event-time/wall-time ratio.
    rebase_ts: shift all event times so the first reading has this ts (e.g. time.time()).
    stop: set it to end early; the stats then have ``interrupted=True``.
    on_progress: called with the live stats at most every ``progress_interval_s`` and once
    at the end.
    Returns the stats on completion or interruption; raises ReplayError when the broker
    cannot be reached or a batch fails (``exc.stats`` says how far it got), ValueError or
    HeatFileError on bad input (before anything is sent).
    """
    if speed is not None and not (speed > 0):
        raise ValueError(f"speed must be > 0 (or None for as fast as possible), not {speed}")
    if speed is not None and math.isinf(speed):
        speed = None
    if producer is None and bootstrap is None:
        raise ValueError("give bootstrap (replay starts its own producer) or producer")
    if isinstance(source, ReplayPlan):
        plan = source
    else:
        plan = ReplayPlan.from_heats(
            load_source(source), strands=strands, strand_map=strand_map, limit=limit,
            rebase_ts=rebase_ts, events=events_topic is not None, nuisances=nuisances,
            events_at=events_at,
        )
    if events_topic is None:
        plan.events = []
    stats = ReplayStats(total=plan.n, events_total=len(plan.events), topic=topic,
                        events_topic=events_topic, speed=speed)
    own = producer is None
    if own:
        producer, stats.idempotent = await start_producer(
            bootstrap, idempotence=idempotence, connect_attempts=connect_attempts,  # type: ignore[arg-type]
            **dict(producer_options or {}))
    try:
        await _check_topics(producer, [t for t in (topic, events_topic) if t], bootstrap,
                            create_topic, partitions)
        run = _Run(plan, producer, topic, events_topic, speed, stats, stop, on_progress,
                   progress_interval_s, chunk_size)
        await run.go()
    finally:
        if own:
            try:
                await producer.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("producer stop failed: %s", exc)
    if stats.error:
        raise ReplayError(stats.error, stats)
    return stats


class _Run:
    """One replay's send loop and its acknowledgement accounting."""

    def __init__(self, plan: ReplayPlan, producer: Any, topic: str, events_topic: str | None,
                 speed: float | None, stats: ReplayStats, stop: asyncio.Event | None,
                 on_progress: ProgressHook | None, progress_interval_s: float,
                 chunk_size: int):
        self.plan, self.producer, self.topic, self.events_topic = plan, producer, topic, events_topic
        self.speed, self.stats, self.stop = speed, stats, stop
        self.on_progress, self.progress_interval_s = on_progress, progress_interval_s
        self.chunk = max(1, chunk_size)
        self.encoder = ReadingEncoder(plan.channels)
        self.pending: set[asyncio.Future[Any]] = set()
        self.builders: dict[int, Any] = {}
        self.sent_upto: dict[int, int] = {}  # partition -> records shipped (its own order)
        self.acked_upto: dict[int, int] = {}  # partition -> highest end acknowledged
        self.abort = False
        self._last_progress = 0.0

    # -- accounting -----------------------------------------------------------------------
    def _on_batch(self, part: int, start: int, end: int, fut: asyncio.Future[Any]) -> None:
        self.pending.discard(fut)
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            self.stats.failed += end - start
            if self.stats.error is None:
                why = "cancelled" if exc is None else f"{type(exc).__name__}: {exc}"
                self.stats.error = f"a batch to {self.topic}[{part}] was not delivered ({why})"
            self.abort = True
            return
        self.stats.acked += end - start
        if end > self.acked_upto.get(part, 0):
            self.acked_upto[part] = end

    def _give_up(self, records: int, why: str) -> None:
        self.stats.failed += records
        if self.stats.error is None:
            self.stats.error = why
        self.abort = True

    def _on_event(self, fut: asyncio.Future[Any]) -> None:
        self.pending.discard(fut)
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            self.stats.events_failed += 1
            if self.stats.error is None:
                self.stats.error = f"an event to {self.events_topic} was not delivered ({exc})"
            self.abort = True
        else:
            self.stats.events_acked += 1

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        self.stats.elapsed_s = now - self.stats._t0
        if self.on_progress and (force or now - self._last_progress >= self.progress_interval_s):
            self._last_progress = now
            self.on_progress(self.stats)

    def _last_acked(self) -> dict[str, tuple[float, int]]:
        """Per strand: (ts, seq) of its last reading in an acknowledged batch."""
        plan, out = self.plan, {}
        for part, upto in self.acked_upto.items():
            # a partition's batches hold its rows in merged order, so the acknowledged
            # ones are its first `upto` rows
            rows = np.flatnonzero(self.part_of_row == part)[:upto]
            if not len(rows):
                continue
            c = plan.strand_codes[rows]
            for code in np.unique(c):
                last = rows[np.flatnonzero(c == code)[-1]]
                out[plan.strand_names[code]] = (float(plan.ts[last]), int(plan.seq[last]))
        return out

    # -- sending --------------------------------------------------------------------------
    async def _ship(self, part: int) -> None:
        b = self.builders.pop(part, None)
        if b is None or b.record_count() == 0:
            return
        b.close()
        try:
            fut = await self.producer.send_batch(b, self.topic, partition=part)
        except Exception as exc:  # noqa: BLE001 - KafkaTimeoutError, ProducerClosed, ...
            self._give_up(b.record_count(), f"a batch to {self.topic}[{part}] could not be "
                                            f"queued ({type(exc).__name__}: {exc})")
            return
        start = self.sent_upto.get(part, 0)
        end = start + b.record_count()
        self.sent_upto[part] = end
        self.stats.sent += end - start
        self.pending.add(fut)
        fut.add_done_callback(partial(self._on_batch, part, start, end))

    async def _ship_all(self) -> None:
        for part in list(self.builders):
            if self.abort:  # a batch failed: what is not shipped yet stays unsent
                self.builders.pop(part).close()
                continue
            await self._ship(part)

    async def _send_event(self) -> None:
        e = self.plan.events[self.ev_idx]
        self.ev_idx += 1
        await self._ship_all()  # the readings before it leave first
        if self.abort:
            return
        try:
            fut = await self.producer.send(self.events_topic, e.value, key=e.strand.encode())
        except Exception as exc:  # noqa: BLE001
            self.stats.events_failed += 1
            self._give_up(0, f"an event to {self.events_topic} could not be queued "
                             f"({type(exc).__name__}: {exc})")
            return
        self.stats.events_sent += 1
        self.pending.add(fut)
        fut.add_done_callback(self._on_event)

    async def _append(self, i: int, j: int) -> None:
        plan = self.plan
        codes = plan.strand_codes[i:j]
        msgs = self.encoder.encode(plan.ts[i:j], plan.seq[i:j], plan.values[i:j],
                                   (codes, plan.strand_names),
                                   (plan.heat_codes[i:j], plan.heat_names))
        keys = self.keys_arr[codes].tolist()
        self.stats.bytes_sent += sum(map(len, msgs)) + sum(map(len, keys))
        builders = self.builders
        for part, key, value in zip(self.part_of_row[i:j].tolist(), keys, msgs):
            b = builders.get(part)
            if b is None:
                b = builders[part] = self.producer.create_batch()
            if b.append(timestamp=None, key=key, value=value) is None:
                await self._ship(part)
                if self.abort:  # rows not appended yet are simply not sent
                    await self._ship_all()  # (drops the open batches)
                    return
                b = builders[part] = self.producer.create_batch()
                b.append(timestamp=None, key=key, value=value)
        self.stats.clock_ts = float(plan.ts[j - 1])

    async def _sleep(self, delay: float) -> None:
        delay = min(delay, self.progress_interval_s)
        if self.stop is None:
            await asyncio.sleep(delay)
            return
        try:
            await asyncio.wait_for(self.stop.wait(), delay)
        except asyncio.TimeoutError:
            pass

    async def go(self) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        plan, stats = self.plan, self.stats
        parts = sorted(await self.producer.partitions_for(self.topic))
        partitioner = getattr(self.producer, "_partitioner", None) or DefaultPartitioner()
        self.keys_arr = np.array([s.encode() for s in plan.strand_names] + [b""], dtype=object)
        part_of_code = np.array([partitioner(k, parts, parts) for k in self.keys_arr[:-1]]
                                + [0], dtype=np.int32)
        self.part_of_row = part_of_code[plan.strand_codes]
        self.ev_idx = 0
        loop = asyncio.get_running_loop()
        clock0 = float(plan.clock[0]) if plan.n else 0.0
        offsets = None if self.speed is None else (plan.clock - clock0) / self.speed
        events = plan.events if self.events_topic else []
        ev_pos = np.array([e.pos for e in events], dtype=np.int64)
        # wall-clock offset of each event: its onset on the replay clock (0 when at start)
        ev_off = [max(0.0, e.due_ts - clock0) / (self.speed or 1.0) for e in events]
        stats._t0 = time.monotonic()
        t0 = loop.time()
        n, i = plan.n, 0
        try:
            while True:
                if self.stop is not None and self.stop.is_set():
                    stats.interrupted = True
                    break
                if self.abort:
                    break
                if self.ev_idx < len(events) and events[self.ev_idx].pos <= i:
                    if offsets is not None:
                        wait = ev_off[self.ev_idx] - (loop.time() - t0)
                        if wait > 0:
                            await self._ship_all()
                            self._progress()
                            await self._sleep(wait)
                            continue
                    await self._send_event()
                    continue
                if i >= n:
                    break
                j = min(n, i + self.chunk)
                k = int(np.searchsorted(ev_pos, i, side="right"))
                if k < len(ev_pos):
                    j = min(j, int(ev_pos[k]))
                if offsets is not None:
                    now = loop.time() - t0
                    due = int(np.searchsorted(offsets, now, side="right"))
                    if due <= i:
                        await self._ship_all()
                        self._progress()
                        await self._sleep(float(offsets[i]) - now)
                        continue
                    j = min(j, due)
                await self._append(i, j)
                i = j
                if offsets is not None:
                    await self._ship_all()  # due readings leave now, not after a linger
                self._progress()
            await self._ship_all()
            if self.pending:
                await asyncio.wait(set(self.pending))
        finally:
            stats.elapsed_s = time.monotonic() - stats._t0
            stats.last_acked = self._last_acked()
            self._progress(force=True)
