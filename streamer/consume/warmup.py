"""Re-read the log before the committed offset to refill ring buffers after an assignment.

Strands interleave in a partition, so "window offsets back" is not enough: read backwards in
doubling spans until every strand seen has a full window, the partition's beginning is
reached, or ``max_rewind_records`` is hit. A separate consumer with no group does the
reading, so the group consumer's position and heartbeats are untouched.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamer.config import KafkaSettings
from streamer.kafka_client import security_kwargs


async def _read_range(consumer: AIOKafkaConsumer, tp: TopicPartition, lo: int, hi: int
                      ) -> list[Any]:
    consumer.seek(tp, lo)
    out: list[Any] = []
    empty = 0
    while True:
        batch = await consumer.getmany(tp, timeout_ms=300, max_records=10_000)
        msgs = batch.get(tp, [])
        if not msgs:
            empty += 1
            if empty >= 3 or await consumer.position(tp) >= hi:
                return out
            continue
        empty = 0
        for m in msgs:
            if m.offset >= hi:
                return out
            out.append(m)
        if msgs[-1].offset >= hi - 1:
            return out


async def warm_up_partition(k: KafkaSettings, tp: TopicPartition, target: int, window: int,
                            max_records: int) -> list[Any]:
    """Records of ``tp`` in [start, target), oldest first, enough to fill every strand's window."""
    if target <= 0 or max_records <= 0:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=k.bootstrap_servers, client_id=f"{k.client_id}-warmup",
        group_id=None, enable_auto_commit=False, **security_kwargs(k),
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        begin = (await consumer.beginning_offsets([tp]))[tp]
        floor = max(begin, target - max_records)
        chunks: list[list[Any]] = []
        counts: Counter[bytes | None] = Counter()
        hi, span = target, 2 * window
        while hi > floor:
            lo = max(floor, hi - span)
            recs = await _read_range(consumer, tp, lo, hi)
            chunks.append(recs)
            counts.update(m.key for m in recs)
            hi = lo
            if counts and min(counts.values()) >= window:
                break
            span *= 2
        return [m for chunk in reversed(chunks) for m in chunk]
    finally:
        await consumer.stop()
