"""Dynamic batching: fills up to max_batch, waits at most max_delay, keeps item order."""

from __future__ import annotations

import asyncio
import time

from streamer.batch.batcher import DynamicBatcher


async def test_takes_what_is_queued_up_to_max_batch_in_order() -> None:
    b: DynamicBatcher[list[int]] = DynamicBatcher(len, max_batch=4, max_delay_s=0)
    for item in ([1, 2], [3], [4, 5], [6]):
        b.put(item)
    assert await b.next_batch() == [[1, 2], [3]]  # [4, 5] would exceed 4 windows
    assert await b.next_batch() == [[4, 5], [6]]


async def test_oversized_item_alone_and_delay_bound() -> None:
    b: DynamicBatcher[list[int]] = DynamicBatcher(len, max_batch=3, max_delay_s=0.2)
    b.put([1, 2, 3, 4])
    assert await b.next_batch() == [[1, 2, 3, 4]]
    b.put([1])
    t0 = time.monotonic()
    assert await b.next_batch() == [[1]]  # nothing else came: returns after max_delay
    assert 0.15 <= time.monotonic() - t0 < 1.0


async def test_waits_for_first_item_and_collects_late_arrivals() -> None:
    b: DynamicBatcher[list[int]] = DynamicBatcher(len, max_batch=10, max_delay_s=0.3)
    task = asyncio.create_task(b.next_batch())
    await asyncio.sleep(0.05)
    b.put([1])
    await asyncio.sleep(0.05)
    b.put([2])
    assert await task == [[1], [2]]
