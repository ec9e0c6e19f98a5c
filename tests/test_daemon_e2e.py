"""The daemon against a real broker: every reading evaluated, bad records dead-lettered,
offsets committed only after acks, warm-up after restart, SIGTERM drain."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from simulators.broker import create_topics
from streamer.app import Application
from streamer.config import load_settings
from streamer.formats import load_schema
from tests.daemon_helpers import reading, tiny_checkpoint
from tests.test_decode import BAD

pytestmark = pytest.mark.broker

WINDOW = 20


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", window=WINDOW)


def settings_for(bootstrap: str, topic: str, ckpt: Path, **over: Any):
    base = {
        "kafka.bootstrap_servers": bootstrap, "kafka.readings_topic": topic,
        "kafka.alerts_topic": f"{topic}.alerts", "kafka.dead_letter_topic": f"{topic}.dlq",
        "kafka.group_id": f"{topic}-g", "kafka.auto_offset_reset": "earliest",
        "model.path": str(ckpt), "buffer.min_fill": 5, "http.port": 0,
        "kafka.session_timeout_ms": 6000, "kafka.heartbeat_interval_ms": 500,
        "shutdown.drain_timeout_s": 10,
    }
    base.update(over)
    return load_settings(None, base)


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await p.start()
    try:
        futs = [await p.send(topic, key=k, value=v) for k, v in records]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


async def consume_all(bootstrap: str, topic: str, expect: int, timeout_s: float = 30
                      ) -> list[Any]:
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < expect and time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=300)
            for msgs in batch.values():
                out += msgs
        # a little longer, to catch records beyond what was expected
        batch = await c.getmany(timeout_ms=500)
        for msgs in batch.values():
            out += msgs
    finally:
        await c.stop()
    return out


async def run_until(app: Application, cond, timeout_s: float = 60) -> int:
    task = asyncio.create_task(app.run(install_signal_handlers=False))
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    app.request_stop()
    return await asyncio.wait_for(task, 30)


def readings(strands: int, n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    out = []
    for seq in range(start, start + n):
        for s in range(strands):
            name = f"C1-S{s + 1}"
            out.append((name.encode(), reading(name, seq, strand_no=s)))
    return out


async def test_every_reading_evaluated_and_bad_records_dead_lettered(
        bootstrap: str, topic_name: str, ckpt: Path) -> None:
    t = topic_name
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=3)
    good = readings(strands=4, n=30)
    records: list[tuple[bytes | None, bytes | None]] = []
    bad = [(k, v) for _, k, v, _ in BAD]
    for i, rec in enumerate(good):  # interleave the bad corpus with valid readings
        records.append(rec)
        if i % 4 == 0 and bad:
            records.append(bad.pop())
    records += bad
    await produce(bootstrap, t, records)

    app = Application(settings_for(bootstrap, t, ckpt))
    expected = 4 * (30 - 5 + 1)  # from min_fill on, every reading (hop 1)
    code = await run_until(app, lambda: app.stats.evaluations >= expected
                           and sum(app.stats.dead_letters.values()) >= len(BAD))
    assert code == 0
    assert app.stats.evaluations == expected
    alerts = await consume_all(bootstrap, f"{t}.alerts", expected)
    assert len(alerts) == expected
    schema = load_schema("alert")
    seen = set()
    for m in alerts:
        doc = orjson.loads(m.value)
        jsonschema.validate(doc, schema)
        assert m.key == doc["strand"].encode()
        assert doc["window"]["filled"] == min(doc["seq"] + 1, WINDOW)
        seen.add((doc["strand"], doc["seq"]))
    assert seen == {(f"C1-S{s + 1}", q) for s in range(4) for q in range(4, 30)}

    dlq = await consume_all(bootstrap, f"{t}.dlq", len(BAD))
    assert len(dlq) == len(BAD)
    by_reason: dict[str, int] = {}
    for m in dlq:
        h = dict(m.headers)
        assert h["dlq.source.topic"] == t.encode()
        assert int(h["dlq.source.offset"]) >= 0 and h["dlq.detail"]
        by_reason[h["dlq.reason"].decode()] = by_reason.get(h["dlq.reason"].decode(), 0) + 1
    want: dict[str, int] = {}
    for _, _, _, reason in BAD:
        want[reason] = want.get(reason, 0) + 1
    assert by_reason == want
    # original bytes kept (the oversized one is under the DLQ limit, so it is whole)
    originals = {v for _, _, v, _ in BAD if v}
    assert {m.value for m in dlq if m.value} == originals

    # committed offsets = end of each partition: everything was acknowledged. (Ends are
    # read from the records: Tansu's ListOffsets(latest) is wrong after batched produce.)
    source = await consume_all(bootstrap, t, len(records))
    ends: dict[int, int] = {}
    for m in source:
        ends[m.partition] = max(ends.get(m.partition, 0), m.offset + 1)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{t}-g", enable_auto_commit=False)
    await c.start()
    try:
        for p, end in ends.items():
            assert await c.committed(TopicPartition(t, p)) == end
    finally:
        await c.stop()


async def test_restart_warms_up_and_continues_without_gap(bootstrap: str, topic_name: str,
                                                         ckpt: Path) -> None:
    t = topic_name
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=2)
    await produce(bootstrap, t, readings(strands=3, n=40))
    app = Application(settings_for(bootstrap, t, ckpt))
    assert await run_until(app, lambda: app.stats.evaluations >= 3 * 36) == 0

    await produce(bootstrap, t, readings(strands=3, n=10, start=40))
    app2 = Application(settings_for(bootstrap, t, ckpt))
    assert await run_until(app2, lambda: app2.stats.evaluations >= 30) == 0
    # buffers were refilled from the log: the very first new reading of each strand was
    # evaluated with a full window, and nothing before the committed offset was re-published
    assert app2.stats.evaluations == 30
    assert app2.stats.warmup_records >= 3 * WINDOW
    alerts = [orjson.loads(m.value) for m in await consume_all(bootstrap, f"{t}.alerts", 138)]
    after = [a for a in alerts if a["seq"] >= 40]
    assert len(after) == 30 and all(a["window"]["filled"] == WINDOW for a in after)
    assert len(alerts) == 3 * 36 + 30  # no duplicates of already committed evaluations


async def test_unreachable_broker_gives_up_with_a_message(ckpt: Path) -> None:
    from simulators.broker import free_port

    s = settings_for(f"127.0.0.1:{free_port()}", "x", ckpt, **{"kafka.connect_retry_max_s": 1})
    app = Application(s)
    assert await asyncio.wait_for(app.run(install_signal_handlers=False), 30) == 1
    assert "cannot reach Kafka" in str(app._fatal)


async def test_bad_model_file_stops_start_up_naming_the_field(tmp_path: Path) -> None:
    from streamer.app import StartupError

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    app = Application(settings_for("127.0.0.1:1", "x", bad))
    assert await asyncio.wait_for(app.run(install_signal_handlers=False), 30) == 1
    assert isinstance(app._fatal, StartupError) and "model.path" in str(app._fatal)


async def test_a_failed_thermocouple_is_carried_like_training_decodes_it(
        bootstrap: str, topic_name: str, ckpt: Path) -> None:
    """tc_r1_c1 (10 degC above its row) fails for seq 25-34; the first daemon reads seq 0-29,
    a second one warms up from the log and reads on. Both the live path and the warm-up
    fill the failure exactly as ``decode_series`` does for training and evaluation."""
    import numpy as np

    from streamer.consume.series import decode_series
    from streamer.formats.reading import encode_reading
    from tests.daemon_helpers import CHANNELS, values_at

    t = topic_name
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=1)
    rows = []
    for seq in range(40):
        v: dict[str, float | None] = dict(values_at(seq))
        v["tc_r1_c1"] = None if 25 <= seq < 35 else v["tc_r1_c1"] + 10.0  # type: ignore[operator]
        rows.append(v)
    recs = [(b"C1-S1", encode_reading("C1-S1", "C1-H00001", 1_764_000_000.0 + q, q, v))
            for q, v in enumerate(rows)]
    await produce(bootstrap, t, recs[:30])
    app = Application(settings_for(bootstrap, t, ckpt))
    assert await run_until(app, lambda: app.stats.evaluations >= 26) == 0
    await produce(bootstrap, t, recs[30:])
    app2 = Application(settings_for(bootstrap, t, ckpt))
    assert await run_until(app2, lambda: app2.stats.evaluations >= 10) == 0

    series = np.array([[np.nan if v[c] is None else v[c] for c in CHANNELS] for v in rows])
    want, keep, filled = decode_series(series, CHANNELS)
    assert keep.all() and filled == 10
    st = app2.buffers.state("C1-S1")
    assert st is not None and st.total == 40
    got = app2.buffers.data[st.slot, np.arange(20, 40) % app2.buffers.capacity]
    np.testing.assert_allclose(got, want[20:], rtol=0, atol=1e-4)
    j = CHANNELS.index("tc_r1_c1")
    assert abs(float(got[5, j]) - series[24, j]) < 1.0  # carried: no 10 degC step down
    alerts = [orjson.loads(m.value) for m in await consume_all(bootstrap, f"{t}.alerts", 36)]
    assert {a["seq"] for a in alerts if a["degraded_channels"] == ["tc_r1_c1"]} == set(
        range(25, 35))


async def test_an_ensemble_of_models_with_context_is_served_like_offline(
        bootstrap: str, topic_name: str, tmp_path: Path) -> None:
    """The daemon with an ensemble checkpoint whose members read the last 12 of 30 readings
    (architecture.steps, columns.baseline): every alert carries the ensemble's id and the
    probabilities the ensemble gives offline for that window, partial windows included."""
    import numpy as np
    import torch

    from streamer.consume.series import decode_series
    from streamer.formats.reading import encode_reading
    from streamer.model.checkpoint import load_checkpoint, save_checkpoint, save_ensemble
    from streamer.model.lstm import SteelDefectLSTM, default_config
    from tests.daemon_helpers import CHANNELS, values_at

    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        cfg = default_config()
        cfg["architecture"].update(hidden_size=32, num_layers=1, steps=12)
        cfg["columns"].update(steps=12, baseline=8)
        cfg["attention"]["hidden_size"] = 8
        cfg["data"]["window"] = 30
        save_checkpoint(tmp_path / f"m{seed}.pt", SteelDefectLSTM(cfg))
        members.append(load_checkpoint(tmp_path / f"m{seed}.pt"))
    ens_id = save_ensemble(tmp_path / "ens.pt", members)
    ens = load_checkpoint(tmp_path / "ens.pt")

    t = topic_name
    await create_topics(bootstrap, [t, f"{t}.alerts", f"{t}.dlq"], partitions=1)
    rows = [dict(values_at(q)) for q in range(45)]
    await produce(bootstrap, t, [(b"C1-S1", encode_reading("C1-S1", "C1-H00001",
                                                           1_764_000_000.0 + q, q, v))
                                 for q, v in enumerate(rows)])
    app = Application(settings_for(bootstrap, t, tmp_path / "ens.pt"))
    assert await run_until(app, lambda: app.stats.evaluations >= 41) == 0
    alerts = [orjson.loads(m.value) for m in await consume_all(bootstrap, f"{t}.alerts", 41)]
    assert len(alerts) == 41 and {a["model_id"] for a in alerts} == {ens_id}

    values, keep, _ = decode_series(np.array([[v[c] for c in CHANNELS] for v in rows]),
                                    CHANNELS)
    assert keep.all()
    for a in alerts:
        q = a["seq"]
        n = min(q + 1, 30)
        x = torch.from_numpy(values[q + 1 - n:q + 1][None].astype(np.float32))
        want = ens.model.predict_proba(x)[0].numpy()
        got = [a["probabilities"][d] for d in ens.defect_types]
        np.testing.assert_allclose(got, want, atol=1e-4)
