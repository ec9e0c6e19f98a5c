"""The daemon as a real process: kill -9 and restart, two instances in one group, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from simulators.broker import create_topics, free_port
from streamer.app import Application
from tests.daemon_helpers import reading, tiny_checkpoint
from tests.test_daemon_e2e import consume_all, run_until, settings_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

WINDOW = 20
MIN_FILL = 5
STRANDS = 4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", window=WINDOW)


def start_daemon(bootstrap: str, topic: str, ckpt: Path, port: int, log: Path,
                 group: str | None = None, instance: str | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "STREAMER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "STREAMER_KAFKA__READINGS_TOPIC": topic,
        "STREAMER_KAFKA__ALERTS_TOPIC": f"{topic}.alerts",
        "STREAMER_KAFKA__DEAD_LETTER_TOPIC": f"{topic}.dlq",
        "STREAMER_KAFKA__GROUP_ID": group or f"{topic}-g",
        "STREAMER_KAFKA__AUTO_OFFSET_RESET": "earliest",
        "STREAMER_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "STREAMER_KAFKA__HEARTBEAT_INTERVAL_MS": "500",
        "STREAMER_MODEL__PATH": str(ckpt),
        "STREAMER_MODEL__TORCH_THREADS": "1",
        "STREAMER_BUFFER__MIN_FILL": str(MIN_FILL),
        "STREAMER_HTTP__PORT": str(port),
        "STREAMER_LOG__FORMAT": "json",
    }
    if instance:
        env["STREAMER_KAFKA__GROUP_INSTANCE_ID"] = instance
    return subprocess.Popen([sys.executable, "-m", "streamer", "run"], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def metric(port: int, name: str) -> float:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return -1.0
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def ready(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200
    except OSError:
        return False


async def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def stream(bootstrap: str, topic: str, seqs: range, rate_hz: float) -> None:
    """Readings of STRANDS strands, paced: one seq step per 1/rate_hz seconds."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await p.start()
    try:
        for seq in seqs:
            futs = [await p.send(topic, key=f"C1-S{s + 1}".encode(),
                                 value=reading(f"C1-S{s + 1}", seq, strand_no=s))
                    for s in range(STRANDS)]
            await asyncio.gather(*futs)
            await asyncio.sleep(1 / rate_hz)
    finally:
        await p.stop()


def alerts_by_key(msgs) -> dict[tuple[str, int], list[dict]]:
    out: dict[tuple[str, int], list[dict]] = {}
    for m in msgs:
        d = orjson.loads(m.value)
        out.setdefault((d["strand"], d["seq"]), []).append(d)
    return out


async def committed(bootstrap: str, group: str, topic: str, parts: int) -> dict[int, int]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return {p: (await c.committed(TopicPartition(topic, p))) or 0 for p in range(parts)}
    finally:
        await c.stop()


async def test_kill_9_and_restart_loses_nothing(bootstrap: str, topic_name: str, ckpt: Path,
                                                tmp_path: Path) -> None:
    t, n = topic_name, 120
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=2)
    port = free_port()
    proc = start_daemon(bootstrap, t, ckpt, port, tmp_path / "d1.log")
    try:
        await wait_for(lambda: ready(port), 60, "daemon ready")
        producer = asyncio.create_task(stream(bootstrap, t, range(n), rate_hz=15))
        await wait_for(lambda: metric(port, "streamer_evaluations_total") >= 120, 60,
                       "evaluations before the kill")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = await committed(bootstrap, f"{t}-g", t, 2)
        proc = start_daemon(bootstrap, t, ckpt, port, tmp_path / "d2.log")
        await producer
        expected = STRANDS * (n - MIN_FILL + 1)
        await wait_for(lambda: metric(port, "streamer_evaluations_total") >= 1, 60, "restart")
        await asyncio.sleep(0.1)
        msgs = await consume_all(bootstrap, f"{t}.alerts", expected, timeout_s=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "d2.log").read_text()[-3000:]

    got = alerts_by_key(msgs)
    want = {(f"C1-S{s + 1}", q) for s in range(STRANDS) for q in range(MIN_FILL - 1, n)}
    assert set(got) == want  # every reading evaluated at least once
    # nothing at or before the committed offsets was published again after the restart
    dupes = [k for k, v in got.items() if len(v) > 1]
    for k in dupes:
        for d in got[k]:
            assert d["source"]["offset"] >= before[d["source"]["partition"]], (
                "re-published a record before the committed offset", k)
    raised = [(k, d) for k, v in got.items() for d in v
              if any(e["event"] == "raised" for e in d["events"])]
    for k, d in raised:
        assert d["source"]["offset"] >= before[d["source"]["partition"]] or len(got[k]) == 1
    # buffers were full right after the restart: every alert has the window it should have
    for (strand, seq), docs in got.items():
        for d in docs:
            assert d["window"]["filled"] == min(seq + 1, WINDOW), (strand, seq, d["window"])

    # compare with an uninterrupted run of the same records: same evaluations, same results
    ref = Application(settings_for(bootstrap, t, ckpt, **{
        "kafka.group_id": f"{t}-ref", "kafka.alerts_topic": f"{t}.ref"}))
    assert await run_until(ref, lambda: ref.stats.evaluations >= len(want)) == 0
    ref_alerts = alerts_by_key(await consume_all(bootstrap, f"{t}.ref", len(want)))
    assert set(ref_alerts) == want
    for k in want:
        for d in got[k]:
            for typ, prob in ref_alerts[k][0]["probabilities"].items():
                assert d["probabilities"][typ] == pytest.approx(prob, abs=1e-4), k


async def test_two_instances_split_partitions_and_take_over(
        bootstrap: str, topic_name: str, ckpt: Path, tmp_path: Path) -> None:
    t, n = topic_name, 150
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=4)
    ports = [free_port(), free_port()]
    procs = [start_daemon(bootstrap, t, ckpt, ports[i], tmp_path / f"i{i}.log",
                          instance=f"streamer-{i}") for i in range(2)]
    try:
        await wait_for(lambda: all(ready(p) for p in ports), 90, "both ready")
        producer = asyncio.create_task(stream(bootstrap, t, range(n), rate_hz=15))
        await wait_for(lambda: all(metric(p, "streamer_evaluations_total") > 0 for p in ports),
                       60, "both instances evaluating")
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(30) == 0  # drained and exited cleanly
        log0 = (tmp_path / "i0.log").read_text()
        assert "drained and committed" in log0
        await producer
        expected = STRANDS * (n - MIN_FILL + 1)
        msgs = await consume_all(bootstrap, f"{t}.alerts", expected, timeout_s=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                assert p.wait(30) == 0
    got = alerts_by_key(msgs)
    want = {(f"C1-S{s + 1}", q) for s in range(STRANDS) for q in range(MIN_FILL - 1, n)}
    assert set(got) == want
