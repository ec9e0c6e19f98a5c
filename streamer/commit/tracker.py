"""Which offsets are safe to commit.

Each poll of the consumer becomes a :class:`Checkpoint`: the next offset per partition, plus
the delivery futures of every alert and dead letter derived from its records. A checkpoint
is *sealed* once all its windows went through the model and their alerts were handed to the
producer. Checkpoints complete in poll order; the committable offsets are those of the
newest sealed checkpoint whose futures, and all earlier ones', are done. A failed delivery
is never committed past: the daemon stops and restarts from the last commit (at-least-once).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition


class DeliveryFailed(Exception):
    """An alert or dead letter was not acknowledged by the broker."""


@dataclass
class Checkpoint:
    offsets: dict[TopicPartition, int]
    futures: list[asyncio.Future[Any]] = field(default_factory=list)
    sealed: bool = False
    pending_windows: int = 0

    def done(self) -> bool:
        return self.sealed and all(f.done() for f in self.futures)


class CommitTracker:
    def __init__(self) -> None:
        self._queue: deque[Checkpoint] = deque()

    def open(self, offsets: dict[TopicPartition, int]) -> Checkpoint:
        cp = Checkpoint(dict(offsets))
        self._queue.append(cp)
        return cp

    def __len__(self) -> int:
        return len(self._queue)

    def ready_offsets(self) -> dict[TopicPartition, int]:
        """Pop the completed prefix of checkpoints and merge their offsets (max per partition)."""
        merged: dict[TopicPartition, int] = {}
        while self._queue and self._queue[0].done():
            cp = self._queue.popleft()
            for f in cp.futures:
                exc = f.exception()
                if exc is not None:
                    raise DeliveryFailed(f"a derived record was not delivered: {exc!r}") from exc
            for tp, off in cp.offsets.items():
                merged[tp] = max(off, merged.get(tp, off))
        return merged

    async def wait_all(self, timeout_s: float) -> bool:
        """Wait until every open checkpoint is sealed and delivered (drain). True if so."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._queue and not all(cp.done() for cp in self._queue):
            if asyncio.get_running_loop().time() > deadline:
                return False
            pending = [f for cp in self._queue for f in cp.futures if not f.done()]
            if pending:
                await asyncio.wait(pending, timeout=0.05)
            else:
                await asyncio.sleep(0.005)
        return True

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop offsets of partitions no longer ours (after a revoke we may not commit them)."""
        for cp in self._queue:
            for tp in partitions:
                cp.offsets.pop(tp, None)
