"""The daemon's own CPU per reading, without a broker: ``python -m streamer.bench.ingest_cost``.

Section 2 of ``streamer bench`` needs a broker and a quiet machine; this figure needs
neither. It feeds pre-built aiokafka ``ConsumerRecord`` polls (the bench's own messages: 64
strands x 29 channels, 8 partitions, up to 5,000 records a poll as ``getmany`` returns them)
straight into the poll loop's handler, ``Application._handle``, on one thread, and compares
the time per reading with ``orjson.loads`` of the same messages, which the raw-client figure
of section 1 already pays. The difference is what the daemon itself adds per reading.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import time
from typing import Any

import numpy as np
import orjson
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streamer.app import Application
from streamer.batch.batcher import DynamicBatcher
from streamer.bench.load import CHANNELS, messages, strand_names
from streamer.buffer.ring import StrandBuffers
from streamer.commit.tracker import CommitTracker
from streamer.config import Settings
from streamer.consume.decode import BatchDecoder

Poll = dict[TopicPartition, list[ConsumerRecord]]


def build_polls(strands: int = 64, per_strand: int = 400, partitions: int = 8,
                max_records: int = 5_000, topic: str = "caster.readings",
                failed_tc: float = 0.0) -> list[Poll]:
    """The bench's readings as ``getmany`` would hand them over: by partition, in offset order.
    ``failed_tc``: the share of readings whose thermocouple tc_r1_c1 is null (a failed sensor:
    the per-record decode path and the carried fill)."""
    names = strand_names(strands)
    seqs = np.arange(per_strand)
    msgs = messages(names, seqs, 1.7e9 + seqs.astype(np.float64))
    if failed_tc > 0:
        rng = np.random.default_rng(1)
        for i in np.flatnonzero(rng.random(len(msgs)) < failed_tc).tolist():
            doc = orjson.loads(msgs[i][1])
            doc["values"]["tc_r1_c1"] = None
            msgs[i] = (msgs[i][0], orjson.dumps(doc))
    by_part: list[list[ConsumerRecord]] = [[] for _ in range(partitions)]
    part_of = {n.encode(): i % partitions for i, n in enumerate(names)}
    for k, v in msgs:
        p = by_part[part_of[k]]
        p.append(ConsumerRecord(topic, part_of[k], len(p), 1_700_000_000_000, 0, k, v, None,
                                len(k), len(v), ()))
    per_poll = max(1, max_records // partitions)
    polls: list[Poll] = []
    for off in range(0, max(len(p) for p in by_part), per_poll):
        polls.append({TopicPartition(topic, i): p[off:off + per_poll]
                      for i, p in enumerate(by_part) if p[off:off + per_poll]})
    return polls


def _app(hop: int) -> Application:
    """An Application with the poll handler's collaborators and no broker or model."""
    app = Application(Settings())
    app.channels = tuple(CHANNELS)
    app.window = 120
    app.decoder = BatchDecoder(app.channels)
    b = app.settings.buffer
    app.buffers = StrandBuffers(app.window, len(app.channels), hop=hop,
                                min_fill=min(b.min_fill, app.window),
                                gap_restart_s=b.gap_restart_s)
    app.tracker = CommitTracker()
    app._batcher = DynamicBatcher(lambda it: len(it.metas), 1 << 30, 0.0)
    return app


def _loads(poll: Poll) -> None:
    loads = orjson.loads
    for msgs in poll.values():
        for m in msgs:
            loads(m.value)


def _run(polls: list[Poll], hop: int) -> list[tuple[float, float]]:
    """CPU seconds of each poll: ``orjson.loads`` of its values as the raw client does it,
    then the same poll through a fresh daemon's handler, back to back (so that both see the
    same machine)."""
    async def go() -> list[tuple[float, float]]:
        app = _app(hop)
        out = []
        for poll in polls:
            t0 = time.process_time()
            _loads(poll)
            t1 = time.process_time()
            await app._handle(poll)
            out.append((t1 - t0, time.process_time() - t1))
            app._batcher._items.clear()  # nothing runs the model here: drop what is due
            app._pending_windows = 0
        return out
    return asyncio.run(go())


def measure(repeat: int = 9, hop: int = 10**9, **poll_kw: Any) -> dict[str, Any]:
    """CPU microseconds per reading: the handler, orjson.loads, the difference. Each poll
    counts with its best time over ``repeat`` runs (process time), so that other jobs on a
    shared machine distort the figure less."""
    polls = build_polls(**poll_kw)
    n = sum(len(m) for p in polls for m in p.values())
    gc.collect()
    loads, handle = [math.inf] * len(polls), [math.inf] * len(polls)
    for _ in range(repeat):
        times = _run(polls, hop)
        loads = list(map(min, loads, (x for x, _ in times)))
        handle = list(map(min, handle, (h for _, h in times)))
    h, x = sum(handle) / n * 1e6, sum(loads) / n * 1e6
    return {"readings": n, "polls": len(polls), "hop": hop, "handle_us": h, "loads_us": x,
            "own_us": h - x}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strands", type=int, default=64)
    ap.add_argument("--per-strand", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--hop", type=int, default=10**9,
                    help="a window is due every HOP readings (default: never, as section 2; "
                    "1: every reading, windows gathered but not evaluated)")
    ap.add_argument("--failed-tc", type=float, default=0.0, metavar="SHARE",
                    help="share of readings with a failed (null) thermocouple, 0-1 (default 0)")
    ap.add_argument("--profile", action="store_true",
                    help="run the handler under cProfile and print the top functions")
    a = ap.parse_args()
    if a.profile:
        import cProfile
        import pstats
        polls = build_polls(a.strands, a.per_strand, failed_tc=a.failed_tc)
        with cProfile.Profile() as prof:
            _run(polls, a.hop)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return
    if not 0.0 <= a.failed_tc <= 1.0:
        ap.error(f"--failed-tc must be in [0, 1], got {a.failed_tc}")
    r = measure(a.repeat, a.hop, strands=a.strands, per_strand=a.per_strand,
                failed_tc=a.failed_tc)
    print(f"{r['readings']:,} readings in {r['polls']} polls, hop {r['hop']:,}, "
          f"{a.failed_tc:.0%} with a failed thermocouple, best of {a.repeat}:")
    print(f"  poll handler (decode + validate + buffer)  {r['handle_us']:.2f} us/reading")
    print(f"  orjson.loads alone (the raw client's share) {r['loads_us']:.2f} us/reading")
    print(f"  what the daemon adds (handler - loads)      {r['own_us']:.2f} us/reading")


if __name__ == "__main__":
    main()
