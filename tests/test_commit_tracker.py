"""Offsets become committable only in poll order and only after every derived ack."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from streamer.commit.tracker import CommitTracker, DeliveryFailed

TP0, TP1 = TopicPartition("r", 0), TopicPartition("r", 1)


async def test_commit_waits_for_acks_and_seal_in_order() -> None:
    loop = asyncio.get_running_loop()
    t = CommitTracker()
    a = t.open({TP0: 10})
    b = t.open({TP0: 20, TP1: 5})
    fa, fb = loop.create_future(), loop.create_future()
    a.futures.append(fa)
    b.futures.append(fb)
    b.sealed = True
    fb.set_result(None)
    assert t.ready_offsets() == {}  # a is not sealed: nothing after it either
    a.sealed = True
    assert t.ready_offsets() == {}  # a's alert not acknowledged yet
    fa.set_result(None)
    assert t.ready_offsets() == {TP0: 20, TP1: 5}
    assert len(t) == 0


async def test_failed_delivery_is_never_committed() -> None:
    loop = asyncio.get_running_loop()
    t = CommitTracker()
    cp = t.open({TP0: 3})
    f = loop.create_future()
    f.set_exception(RuntimeError("broker said no"))
    cp.futures.append(f)
    cp.sealed = True
    with pytest.raises(DeliveryFailed):
        t.ready_offsets()


async def test_forget_revoked_partitions() -> None:
    t = CommitTracker()
    cp = t.open({TP0: 3, TP1: 4})
    cp.sealed = True
    t.forget({TP1})
    assert t.ready_offsets() == {TP0: 3}
