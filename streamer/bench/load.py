"""Load for the benchmark: synthetic reading messages, paced producers, an alert listener."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamer.channels import ChannelLayout
from streamer.formats.reading import ReadingEncoder

CHANNELS = list(ChannelLayout().channels)
_ENCODER = ReadingEncoder(CHANNELS)


def strand_names(n: int) -> list[str]:
    return [f"B{i // 8 + 1}-S{i % 8 + 1}" for i in range(n)]


def messages(strands: list[str], seqs: np.ndarray, ts: np.ndarray, seed: int = 0
             ) -> list[tuple[bytes, bytes]]:
    """(key, value) of one reading per strand for each (seq, ts): plausible steady casting."""
    rng = np.random.default_rng(seed)
    n_s = len(strands)
    base = np.array([1.2, 0.0, 28.0, 3800.0, 7.0] + [150.0] * (len(CHANNELS) - 5), np.float32)
    out: list[tuple[bytes, bytes]] = []
    codes = np.tile(np.arange(n_s), len(seqs))
    sd = np.array([0.01, 2.0, 0.3, 20.0, 0.1] + [0.5] * (len(CHANNELS) - 5), np.float32)
    vals = base + sd * rng.standard_normal((len(codes), len(CHANNELS)), dtype=np.float32)
    enc = _ENCODER.encode(np.repeat(ts, n_s), np.repeat(seqs, n_s), vals, (codes, strands),
                          "BENCH-H1")
    keys = [s.encode() for s in strands]
    for i, v in enumerate(enc):
        out.append((keys[codes[i]], v))
    return out


def backlog(strands: list[str], per_strand: int, end_ts: float) -> list[tuple[bytes, bytes]]:
    """``per_strand`` readings of every strand, one a second, the last one before ``end_ts``."""
    seqs = np.arange(per_strand)
    return messages(strands, seqs, end_ts - per_strand + seqs.astype(np.float64))


async def produce_all(bootstrap: str, topic: str, msgs: list[tuple[bytes, bytes]],
                      batched: bool = True) -> float:
    """Send everything as fast as the broker takes it; seconds from first send to last ack."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                         max_batch_size=512 * 1024)
    await p.start()
    try:
        t0 = time.perf_counter()
        futs = [await p.send(topic, key=k, value=v) for k, v in msgs]
        await asyncio.gather(*futs)
        return time.perf_counter() - t0
    finally:
        await p.stop()


async def consume_decode(bootstrap: str, topic: str, n: int, timeout_s: float = 120) -> float:
    """Raw aiokafka consume + orjson decode of n records: seconds from first record to last."""
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=20)
    await c.start()
    try:
        got, t0 = 0, None
        deadline = time.monotonic() + timeout_s
        while got < n and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=200, max_records=10_000)
            for msgs in batch.values():
                if t0 is None and msgs:
                    t0 = time.perf_counter()
                for m in msgs:
                    orjson.loads(m.value)
                got += len(msgs)
        if got < n or t0 is None:
            raise RuntimeError(f"raw consumer read {got} of {n} records")
        return time.perf_counter() - t0
    finally:
        await c.stop()


@dataclass
class LatencyProbe:
    """Listens to the alerts topic; latency = receipt time - the reading's event time."""

    since_ts: float = 0.0
    latencies: list[float] = field(default_factory=list)
    received: int = 0

    async def run(self, bootstrap: str, topic: str, stop: asyncio.Event) -> None:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="latest", enable_auto_commit=False,
                             fetch_max_wait_ms=10)
        await c.start()
        try:
            await c.getmany(timeout_ms=100)  # resolve the start position before the load
            while not stop.is_set():
                batch = await c.getmany(timeout_ms=100)
                now = time.time()
                for msgs in batch.values():
                    for m in msgs:
                        ts = orjson.loads(m.value)["ts"]
                        self.received += 1
                        if ts >= self.since_ts:
                            self.latencies.append(now - ts)
        finally:
            await c.stop()


async def paced_load(bootstrap: str, topic: str, strands: list[str], rate_hz: float,
                     seconds: float, first_seq: int, seed: int = 1,
                     start_at: float | None = None) -> int:
    """One reading per strand every 1/rate_hz s with ts = now; returns records sent.
    ``start_at`` (wall clock) lines up the ticks of several load processes."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1,
                         max_batch_size=512 * 1024)
    await p.start()
    sent = 0
    try:
        if start_at is not None:
            await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.monotonic()
        tick = 0
        while True:
            due = t0 + tick / rate_hz
            if due - t0 >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.time()
            msgs = messages(strands, np.array([first_seq + tick]), np.array([now]), seed + tick)
            for k, v in msgs:
                await p.send(topic, key=k, value=v)
            sent += len(msgs)
            tick += 1
        await p.flush()
        return sent
    finally:
        await p.stop()


# -- the load spread over processes: one Python producer sends ~30k readings/s, so loads of
# -- many thousand strands are split by strand across processes (spawned, so no forked loop)

def _slices(strands: list[str], procs: int) -> list[list[str]]:
    k = max(1, min(procs, len(strands)))
    return [strands[i::k] for i in range(k)]


def _paced_proc(bootstrap: str, topic: str, strands: list[str], rate_hz: float, seconds: float,
                first_seq: int, start_at: float) -> int:
    return asyncio.run(paced_load(bootstrap, topic, strands, rate_hz, seconds, first_seq,
                                  start_at=start_at))


def _backlog_proc(bootstrap: str, topic: str, strands: list[str], per_strand: int,
                  end_ts: float) -> float:
    return asyncio.run(produce_all(bootstrap, topic, backlog(strands, per_strand, end_ts)))


async def _in_processes(fn, jobs: list[tuple]) -> list:  # type: ignore[no-untyped-def]
    import concurrent.futures
    import multiprocessing

    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(len(jobs), mp_context=ctx) as pool:
        return list(await asyncio.gather(*(loop.run_in_executor(pool, fn, *j) for j in jobs)))


async def paced_load_split(bootstrap: str, topic: str, strands: list[str], rate_hz: float,
                           seconds: float, first_seq: int, procs: int) -> int:
    """:func:`paced_load` over ``procs`` processes, ticks aligned; records sent in all."""
    if procs <= 1:
        return await paced_load(bootstrap, topic, strands, rate_hz, seconds, first_seq)
    start_at = time.time() + 3.0  # spawned processes import numpy and aiokafka first
    sent = await _in_processes(_paced_proc, [
        (bootstrap, topic, part, rate_hz, seconds, first_seq, start_at)
        for part in _slices(strands, procs)])
    return sum(sent)


async def produce_backlog(bootstrap: str, topic: str, strands: list[str], per_strand: int,
                          end_ts: float, procs: int = 1) -> None:
    """``per_strand`` readings of every strand, one a second, the last just before
    ``end_ts``, sent as fast as the broker takes them (over ``procs`` processes)."""
    if procs <= 1:
        await produce_all(bootstrap, topic, backlog(strands, per_strand, end_ts))
        return
    await _in_processes(_backlog_proc, [(bootstrap, topic, part, per_strand, end_ts)
                                        for part in _slices(strands, procs)])
