"""A plain third-party client (confluent-kafka / librdkafka) produces readings the daemon
accepts and reads its alerts; `streamer alerts` filters and prints them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.broker import create_topics
from streamer.app import Application
from tests.daemon_helpers import tiny_checkpoint, values_at
from tests.test_daemon_e2e import run_until, settings_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.broker


async def test_confluent_kafka_producer_and_consumer(bootstrap: str, topic_name: str,
                                                      tmp_path: Path) -> None:
    t = topic_name
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=2)
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for seq in range(12):
        # the documented format written by hand, as a plant integrator would
        doc = {"v": 1, "strand": "W2-S7", "heat": "W2-88121", "ts": 1764000000 + seq,
               "seq": seq, "values": values_at(seq)}
        producer.produce(t, key="W2-S7", value=json.dumps(doc))
    assert producer.flush(10) == 0

    ckpt = tiny_checkpoint(tmp_path / "m.pt", window=20)
    app = Application(settings_for(bootstrap, t, ckpt))
    assert await run_until(app, lambda: app.stats.evaluations >= 8) == 0
    assert app.stats.evaluations == 8 and not app.stats.dead_letters  # min_fill 5: seq 4..11

    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"{t}-cf",
                                         "auto.offset.reset": "earliest"})
    consumer.subscribe([f"{t}.alerts"])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < 8 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(json.loads(msg.value()))
    consumer.close()
    assert sorted(a["seq"] for a in got) == list(range(4, 12))
    assert {a["strand"] for a in got} == {"W2-S7"}


def _alert(strand: str, seq: int, level: str, events: list[dict]) -> dict:
    probs = {"sticker": 0.9 if level == "alarm" else 0.1, "crack": 0.0, "slag": 0.0}
    return {
        "v": 1, "strand": strand, "heat": "H", "ts": 1764000000.0 + seq, "seq": seq,
        "source": {"topic": "r", "partition": 0, "offset": seq}, "model_id": "m",
        "probabilities": probs, "levels": {"sticker": level, "crack": "normal", "slag": "normal"},
        "level": level, "defect": "sticker" if level != "normal" else None, "events": events,
        "suppressed": [], "explanation": {"steps": [], "channels": []}, "degraded_channels": [],
        "window": {"length": 120, "filled": 120},
        "timings": {"reading_ts": 0, "received_ts": 0, "inferred_ts": 0, "published_ts": 0},
    }


def test_alerts_cli_filters(bootstrap: str, topic_name: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    docs = [_alert("C1-S1", 1, "normal", []),
            _alert("C1-S1", 2, "alarm", [{"defect": "sticker", "event": "raised"}]),
            _alert("C1-S2", 3, "watch", []),
            _alert("C1-S1", 4, "normal", [{"defect": "sticker", "event": "cleared"}])]

    async def fill() -> None:
        await create_topics(bootstrap, [topic_name])
        p = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await p.start()
        for d in docs:
            await p.send_and_wait(topic_name, key=d["strand"].encode(),
                                  value=json.dumps(d).encode())
        await p.stop()

    asyncio.run(fill())

    def cli(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, "-m", "streamer", "alerts", "--bootstrap", bootstrap, "--topic",
             topic_name, "--from-beginning", "--no-follow", *args],
            capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    rows = [json.loads(line) for line in cli("--format", "json", "--events-only")]
    assert [(r["seq"], r["events"][0]["event"]) for r in rows] == [(2, "raised"), (4, "cleared")]
    rows = [json.loads(line) for line in cli("--format", "json", "--strand", "C1-S2")]
    assert [r["seq"] for r in rows] == [3]
    rows = [json.loads(line) for line in cli("--format", "json", "--level", "watch")]
    assert [r["seq"] for r in rows] == [2, 3]
    table = cli("--format", "table", "--events-only")
    assert table[0].startswith("time (UTC)") and "sticker raised" in table[1]
