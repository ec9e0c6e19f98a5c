"""The embedded broker starts, answers the Kafka protocol, and leaves no orphan process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from simulators.broker import BrokerError, EmbeddedBroker, create_topics, wait_until_answers

pytestmark = pytest.mark.broker


async def test_produce_and_consume_round_trip(bootstrap: str, topic_name: str) -> None:
    assert await create_topics(bootstrap, [topic_name], partitions=3) == [topic_name]
    assert await create_topics(bootstrap, [topic_name], partitions=3) == []  # idempotent
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic_name, key=f"s{i % 3}".encode(), value=b"%d" % i)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic_name, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )
    await consumer.start()
    got: list[int] = []
    try:
        deadline = time.monotonic() + 15
        while len(got) < 30 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += [int(m.value) for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert sorted(got) == list(range(30))


def test_broker_stops_and_port_closes() -> None:
    broker = EmbeddedBroker().start()
    pid, port = broker.pid, broker.port
    broker.stop()
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(BrokerError):
        wait_until_answers("127.0.0.1", port, timeout_s=0.5)


def test_no_orphan_when_caller_is_killed() -> None:
    """kill -9 the process that started the broker: the broker must die with it."""
    code = textwrap.dedent(
        """
        import sys, time
        from simulators.broker import EmbeddedBroker
        b = EmbeddedBroker().start()
        print(b.pid, flush=True)
        time.sleep(60)
        """
    )
    caller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert caller.stdout is not None
    broker_pid = int(caller.stdout.readline())
    os.kill(broker_pid, 0)  # alive
    caller.send_signal(signal.SIGKILL)
    caller.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(broker_pid, 0)
        except ProcessLookupError:
            return
        # a zombie still answers kill(0) until reaped by init; check its state
        try:
            with open(f"/proc/{broker_pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.1)
    os.kill(broker_pid, signal.SIGKILL)
    pytest.fail("broker outlived its killed caller")
