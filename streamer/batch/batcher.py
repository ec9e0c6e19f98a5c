"""Dynamic batching (as Triton's dynamic batcher): take what is queued, up to ``max_batch``
windows, waiting at most ``max_delay_s`` for more. With ``max_delay_s = 0`` a batch is
whatever queued while the previous one ran, which under load already grows large; raise the
delay only while p99 latency stays within budget.

Items are never split or reordered: an item's windows came from one poll and complete one
commit checkpoint, and alarm states must see each strand's windows in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class DynamicBatcher(Generic[T]):
    def __init__(self, size_of: Callable[[T], int], max_batch: int, max_delay_s: float):
        self._size_of = size_of
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self._items: deque[T] = deque()
        self._waiter = asyncio.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._waiter.set()

    def __len__(self) -> int:
        return len(self._items)

    async def _wait(self, timeout: float | None) -> bool:
        self._waiter.clear()
        if self._items:
            return True
        try:
            await asyncio.wait_for(self._waiter.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def next_batch(self) -> list[T]:
        """The next items to run together: at least one, at most max_batch windows in all
        (a single item larger than max_batch is returned alone)."""
        while not self._items:
            await self._wait(None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_delay_s
        batch = [self._items.popleft()]
        n = self._size_of(batch[0])
        while n < self.max_batch:
            if not self._items:
                remaining = deadline - loop.time()
                if remaining <= 0 or not await self._wait(remaining):
                    break
                continue
            size = self._size_of(self._items[0])
            if n + size > self.max_batch:
                break
            batch.append(self._items.popleft())
            n += size
        return batch
