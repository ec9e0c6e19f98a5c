"""Benchmark: replay at max speed vs a raw aiokafka producer sending the same messages.

    python -m simulators.bench_replay [--bootstrap HOST:PORT] [--records 200000]

Without --bootstrap it starts the embedded broker (Tansu) on this machine. All runs use
the same producer settings (:data:`simulators.replay.PRODUCER_DEFAULTS`, idempotence off
so every broker is measured the same way), the same topic layout and the same keys and
values: the messages are first encoded once with replay's encoder, then

1. ``raw send()``: ``await producer.send(topic, value, key=key)`` per message, then wait
   for every future: the plain aiokafka way;
2. ``raw batch``: the same pre-encoded messages through ``create_batch``/``send_batch``,
   partition by the default partitioner, i.e. replay's send path without the encoding;
3. ``replay``: :func:`simulators.replay.replay` at ``speed=None`` from the heat set,
   which includes reading the columns and encoding the JSON.

Each run goes to its own fresh topic and counts from its first send to the last
acknowledgement. Prints records/s and MB/s (keys + values, 1 MB = 1e6 bytes) and the ratio
replay / raw. Also: :func:`synthetic_heats`, a heat set for tests and this benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import numpy as np

from simulators.heatfile import EVENT_SCHEMA, HeatSet
from streamer.channels import ChannelLayout


def synthetic_heats(
    strands: int | list[str] = 4,
    per_strand: int = 100,
    *,
    hz: float = 1.0,
    start_ts: float = 1_735_689_600.0,
    layout: ChannelLayout | None = None,
    seed: int = 0,
    nan_every: int = 37,
    stagger_s: float | None = None,
    events: list[dict[str, Any]] | None = None,
    nuisances: list[dict[str, Any]] | None = None,
) -> HeatSet:
    """A small, deterministic heat set: plausible random-walk values, some NaN thermocouples.

    Strand k starts ``k * stagger_s`` later (default: half a sample per strand, so strands
    interleave in a known way). ``events``/``nuisances``: rows of events.parquet.
    """
    import pyarrow as pa

    layout = layout or ChannelLayout()
    names = strands if isinstance(strands, list) else [f"C1-S{k + 1}" for k in range(strands)]
    channels = list(layout.channels)
    rng = np.random.default_rng(seed)
    dt = 1.0 / hz
    stagger = dt / (len(names) + 1) if stagger_s is None else stagger_s
    base = np.array([1.2, 0.0, 28.0, 3900.0, 7.0] + [150.0] * (len(channels) - 5),
                    dtype=np.float64)
    cols: dict[str, list[Any]] = {"ts": [], "strand": [], "heat": [], "seq": []}
    blocks = []
    for k, name in enumerate(names):
        ts = start_ts + k * stagger + np.arange(per_strand) * dt
        walk = base + np.cumsum(rng.normal(0, 0.05, (per_strand, len(channels))), axis=0)
        v = walk.astype(np.float32)
        if nan_every:
            v[::nan_every, -1] = np.nan
        blocks.append(v)
        cols["ts"].append(ts)
        cols["strand"] += [name] * per_strand
        cols["heat"] += [f"{name}-H{1 + i // max(1, per_strand // 2):04d}" for i in range(per_strand)]
        cols["seq"].append(np.arange(per_strand, dtype=np.int64) + 1000 * k)
    values = np.concatenate(blocks) if blocks else np.empty((0, len(channels)), np.float32)
    table = {
        "ts": pa.array(np.concatenate(cols["ts"]) if cols["ts"] else [], type=pa.float64()),
        "strand": pa.array(cols["strand"], type=pa.string()),
        "heat": pa.array(cols["heat"], type=pa.string()),
        "seq": pa.array(np.concatenate(cols["seq"]) if cols["seq"] else [], type=pa.int64()),
    }
    for j, ch in enumerate(channels):
        table[ch] = pa.array(values[:, j], type=pa.float32())

    def ev_table(rows: list[dict[str, Any]] | None) -> pa.Table:
        if not rows:
            return EVENT_SCHEMA.empty_table()
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)

    manifest = {"channels": channels, "tc_rows": layout.tc_rows, "tc_cols": layout.tc_cols,
                "source": "synthetic (bench_replay)"}
    return HeatSet(manifest=manifest, readings=pa.table(table), events=ev_table(events),
                   nuisances=ev_table(nuisances))


# ---------------------------------------------------------------------------- bench
async def _new_topic(bootstrap: str, partitions: int) -> str:
    from simulators.broker import create_topics

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [topic], partitions)
    return topic


async def _producer(bootstrap: str) -> Any:
    from simulators.replay import start_producer

    producer, _ = await start_producer(bootstrap, idempotence=False)
    return producer


async def bench_raw_send(bootstrap: str, msgs: list[tuple[bytes, bytes]], partitions: int) -> float:
    topic = await _new_topic(bootstrap, partitions)
    p = await _producer(bootstrap)
    try:
        await p.partitions_for(topic)
        t = time.perf_counter()
        futs = [await p.send(topic, v, key=k) for k, v in msgs]
        await asyncio.gather(*futs)
        return time.perf_counter() - t
    finally:
        await p.stop()


async def bench_raw_batch(bootstrap: str, msgs: list[tuple[bytes, bytes]], partitions: int) -> float:
    from aiokafka.partitioner import DefaultPartitioner

    topic = await _new_topic(bootstrap, partitions)
    p = await _producer(bootstrap)
    try:
        parts = sorted(await p.partitions_for(topic))
        part_of = {k: DefaultPartitioner()(k, parts, parts) for k in {k for k, _ in msgs}}
        t = time.perf_counter()
        builders: dict[int, Any] = {}
        futs = []
        for k, v in msgs:
            part = part_of[k]
            b = builders.get(part)
            if b is None:
                b = builders[part] = p.create_batch()
            if b.append(timestamp=None, key=k, value=v) is None:
                b.close()
                futs.append(await p.send_batch(b, topic, partition=part))
                b = builders[part] = p.create_batch()
                b.append(timestamp=None, key=k, value=v)
        for part, b in builders.items():
            b.close()
            futs.append(await p.send_batch(b, topic, partition=part))
        await asyncio.gather(*futs)
        return time.perf_counter() - t
    finally:
        await p.stop()


async def bench_replay(bootstrap: str, heats: HeatSet, partitions: int) -> tuple[float, int]:
    from simulators.replay import ReplayPlan, replay

    topic = await _new_topic(bootstrap, partitions)
    p = await _producer(bootstrap)
    try:
        plan = ReplayPlan.from_heats(heats)  # column reads + merge: outside the timing
        t = time.perf_counter()
        stats = await replay(plan, topic=topic, producer=p, speed=None)
        dt = time.perf_counter() - t
        assert stats.complete, stats.summary_lines()
        return dt, stats.bytes_sent
    finally:
        await p.stop()


def encoded_messages(plan: Any) -> list[tuple[bytes, bytes]]:
    """(key, value) of every reading of a ReplayPlan, in send order, as replay encodes them."""
    from streamer.formats.reading import ReadingEncoder

    enc = ReadingEncoder(plan.channels)
    keys = np.array([s.encode() for s in plan.strand_names], dtype=object)
    out: list[tuple[bytes, bytes]] = []
    for i in range(0, plan.n, 512):
        j = min(plan.n, i + 512)
        codes = plan.strand_codes[i:j]
        vals = enc.encode(plan.ts[i:j], plan.seq[i:j], plan.values[i:j],
                          (codes, plan.strand_names), (plan.heat_codes[i:j], plan.heat_names))
        out += zip(keys[codes].tolist(), vals)
    return out


async def run_bench(bootstrap: str, records: int, strands: int, partitions: int,
                    repeat: int) -> dict[str, Any]:
    from simulators.replay import ReplayPlan

    heats = synthetic_heats(strands, records // strands)
    plan = ReplayPlan.from_heats(heats)
    t = time.perf_counter()
    msgs = encoded_messages(plan)
    enc_s = time.perf_counter() - t
    n = len(msgs)
    nbytes = sum(len(k) + len(v) for k, v in msgs)
    best: dict[str, float] = {}
    replay_bytes = 0
    for _ in range(repeat):
        best["raw send()"] = min(best.get("raw send()", 1e9),
                                 await bench_raw_send(bootstrap, msgs, partitions))
        best["raw batch"] = min(best.get("raw batch", 1e9),
                                await bench_raw_batch(bootstrap, msgs, partitions))
        dt, replay_bytes = await bench_replay(bootstrap, heats, partitions)
        best["replay"] = min(best.get("replay", 1e9), dt)
    assert replay_bytes == nbytes, (replay_bytes, nbytes)
    return {"records": n, "bytes": nbytes, "encode_only_s": enc_s, "seconds": best}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m simulators.bench_replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=None,
                    help="broker to use (default: start the embedded Tansu broker)")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--strands", type=int, default=8)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    args = ap.parse_args(argv)

    async def go(bootstrap: str) -> dict[str, Any]:
        return await run_bench(bootstrap, args.records, args.strands, args.partitions,
                               args.repeat)

    if args.bootstrap:
        where = args.bootstrap
        res = asyncio.run(go(args.bootstrap))
    else:
        from simulators.broker import EmbeddedBroker

        with EmbeddedBroker() as b:
            where = f"embedded Tansu at {b.bootstrap}"
            res = asyncio.run(go(b.bootstrap))
    n, nb = res["records"], res["bytes"]
    print(f"broker: {where}; {n} readings ({nb / n:.0f} B each with key), "
          f"{args.strands} strands, {args.partitions} partitions, acks=all, "
          f"best of {args.repeat}")
    print(f"  encode only (replay's encoder, no Kafka): {n / res['encode_only_s']:>10,.0f} "
          "records/s")
    rates = {}
    for name, sec in res["seconds"].items():
        rates[name] = n / sec
        print(f"  {name:<11} {n / sec:>10,.0f} records/s  {nb / 1e6 / sec:7.1f} MB/s  "
              f"({sec:.2f} s)")
    print(f"  ratio replay / raw send(): {rates['replay'] / rates['raw send()']:.2f}; "
          f"replay / raw batch: {rates['replay'] / rates['raw batch']:.2f}")


if __name__ == "__main__":
    main()
