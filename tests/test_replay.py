"""Replay into a real broker, read back by an independent consumer.

Each test can fail: counts, order, keys, schema, values and timing are all read back from
the broker, never taken from replay's own bookkeeping alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from simulators.bench_replay import synthetic_heats
from simulators.broker import create_topics
from simulators.heatfile import write_heats
from simulators.replay import ReplayError, ReplayPlan, ReplayStats, encode_event, replay
from streamer.channels import ChannelLayout
from streamer.formats import load_schema
from streamer.formats.reading import ReadingEncoder, encode_reading

pytestmark = pytest.mark.broker

T0 = 1_735_689_600.0
READING = jsonschema.Draft202012Validator(load_schema("reading"))
EVENT = jsonschema.Draft202012Validator(load_schema("event"))


def ev(event_id: str, strand: str, onset: float, kind_type: str = "sticker",
       **over: Any) -> dict[str, Any]:
    row = dict(event_id=event_id, strand=strand, heat="H1", type=kind_type, onset_ts=T0 + onset,
               critical_ts=T0 + onset + 8, row=1, col=3, severity=4.5,
               detail='{"peak_degc": 12.5}')
    row.update(over)
    return row


async def consume(bootstrap: str, topics: list[str], expect: int,
                  timeout_s: float = 15.0) -> list[Any]:
    """Every record of the topics, read from the beginning by a group-less consumer."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        idle_until = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for msgs in batch.values() for m in msgs]
            out += got
            if len(out) >= expect:
                # keep reading briefly: more than expected would be a bug too
                idle_until = idle_until or time.monotonic() + 0.5
                if time.monotonic() > idle_until:
                    break
    finally:
        await consumer.stop()
    return out


def source_rows(heats: Any) -> dict[tuple[str, int], tuple[float, np.ndarray]]:
    """(strand, seq) -> (ts, values) straight from the heat set's table."""
    out = {}
    for s in heats.strands:
        ts, seq, values = heats.strand_arrays(s)
        for t, q, v in zip(ts, seq, values):
            out[(s, int(q))] = (float(t), v)
    return out


# ---------------------------------------------------------------------------- no broker
def test_encoder_matches_encode_reading_and_schema() -> None:
    channels = list(ChannelLayout(tc_rows=2, tc_cols=3).channels)
    rng = np.random.default_rng(1)
    values = rng.normal(100, 30, (7, len(channels))).astype(np.float32)
    values[2, 4] = np.nan
    values[5, 0] = np.inf
    ts = T0 + np.arange(7) * 0.37
    strands = ["A-1", "B.2", "A-1", "C:3", "A-1", "B.2", "C:3"]
    msgs = ReadingEncoder(channels).encode(ts, np.arange(7) * 3, values, strands, 'heat "q"')
    assert len(msgs) == 7
    for i, raw in enumerate(msgs):
        doc = orjson.loads(raw)
        READING.validate(doc)
        ref = orjson.loads(encode_reading(strands[i], 'heat "q"', float(ts[i]), i * 3,
                                          dict(zip(channels, values[i].tolist()))))
        assert list(doc) == list(ref) and list(doc["values"]) == channels
        assert (doc["strand"], doc["heat"], doc["ts"], doc["seq"]) == \
               (ref["strand"], ref["heat"], ref["ts"], ref["seq"])
        for ch, v in zip(channels, values[i]):
            got = doc["values"][ch]
            if not np.isfinite(v):
                assert got is None
            else:
                assert np.float32(got) == v  # shortest float32 text parses back exactly
    assert orjson.loads(msgs[2])["values"][channels[4]] is None


def test_event_message_validates_and_schema_rejects_bad_defect_type() -> None:
    doc = orjson.loads(encode_event("defect", ev("e1", "C1-S1", 5.0)))
    EVENT.validate(doc)
    assert doc["detail"] == {"peak_degc": 12.5} and doc["critical_ts"] >= doc["onset_ts"]
    nuis = orjson.loads(encode_event("nuisance", ev("n1", "C1-S1", 5.0, "tc_spike",
                                                    severity=float("nan"), detail="")))
    EVENT.validate(nuis)
    assert nuis["severity"] is None and nuis["detail"] == {}
    with pytest.raises(jsonschema.ValidationError):
        EVENT.validate({**doc, "type": "tc_spike"})  # a defect must be a defect type
    with pytest.raises(jsonschema.ValidationError):
        EVENT.validate({k: v for k, v in doc.items() if k != "onset_ts"})


def test_plan_merges_by_time_and_keeps_strand_order() -> None:
    heats = synthetic_heats(3, 20, stagger_s=0.25)
    plan = ReplayPlan.from_heats(heats)
    assert plan.n == 60
    assert np.all(np.diff(plan.ts) >= 0)
    names = [plan.strand_names[c] for c in plan.strand_codes[:6]]
    assert names == ["C1-S1", "C1-S2", "C1-S3"] * 2  # interleaved, not strand after strand
    limited = ReplayPlan.from_heats(heats, strands=["C1-S2"], strand_map={"C1-S2": "X9"},
                                    limit=5)
    assert limited.n == 5 and limited.strand_names == ["X9"]
    with pytest.raises(ValueError, match="not in the source"):
        ReplayPlan.from_heats(heats, strands=["nope"])
    with pytest.raises(ValueError, match="several source strands"):
        ReplayPlan.from_heats(heats, strand_map={"C1-S1": "Z", "C1-S2": "Z"})


# ---------------------------------------------------------------------------- broker
async def test_replay_complete_in_order_valid_and_interleaved(bootstrap: str,
                                                              topic_name: str) -> None:
    heats = synthetic_heats(4, 60, stagger_s=0.2)
    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, speed=None,
                         create_topic=True, partitions=1)
    assert stats.complete and stats.acked == stats.sent == 240
    msgs = await consume(bootstrap, [topic_name], 240)
    assert len(msgs) == 240
    src = source_rows(heats)
    last_seq: dict[str, int] = {}
    order = []
    for m in msgs:
        doc = orjson.loads(m.value)
        READING.validate(doc)
        assert m.key == doc["strand"].encode()
        assert doc["seq"] > last_seq.get(doc["strand"], -1)
        last_seq[doc["strand"]] = doc["seq"]
        ts, values = src[(doc["strand"], doc["seq"])]
        assert doc["ts"] == ts
        got = np.array([np.nan if doc["values"][c] is None else doc["values"][c]
                        for c in heats.channels], dtype=np.float32)
        np.testing.assert_array_equal(got, values)  # NaN == NaN here; None <-> NaN
        order.append((doc["ts"], doc["strand"]))
    # one partition: the log order is the send order, merged by event time
    assert [t for t, _ in order] == sorted(t for t, _ in order)
    assert [s for _, s in order[:8]] == ["C1-S1", "C1-S2", "C1-S3", "C1-S4"] * 2
    assert set(last_seq) == set(heats.strands)
    assert stats.last_acked == {s: (src[(s, q)][0], q) for s, q in last_seq.items()}


async def test_each_strand_stays_on_one_partition_in_seq_order(bootstrap: str,
                                                               topic_name: str) -> None:
    heats = synthetic_heats(["C1-S1", "C1-S2", "C2-S1", "C2-S2", "C3-S1"], 40)
    await create_topics(bootstrap, [topic_name], partitions=3)
    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, speed=None,
                         strand_map={"C3-S1": "C9-S9"}, chunk_size=7)
    assert stats.complete
    msgs = await consume(bootstrap, [topic_name], 200)
    assert len(msgs) == 200
    parts: dict[bytes, set[int]] = defaultdict(set)
    seqs: dict[bytes, list[int]] = defaultdict(list)
    for m in msgs:
        parts[m.key].add(m.partition)
        seqs[m.key].append(orjson.loads(m.value)["seq"])
    assert set(parts) == {b"C1-S1", b"C1-S2", b"C2-S1", b"C2-S2", b"C9-S9"}
    assert all(len(p) == 1 for p in parts.values())
    for key, s in seqs.items():
        assert s == sorted(s) and len(set(s)) == len(s) == 40, key


async def test_speed_factor_is_respected(bootstrap: str, topic_name: str) -> None:
    heats = synthetic_heats(1, 10, hz=1.0)  # 10 readings 1 s apart: 9 s of event time
    t = time.monotonic()
    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, speed=20.0,
                         create_topic=True, partitions=1)
    wall = time.monotonic() - t
    assert stats.complete
    # 9 s / 20 = 0.45 s between first and last send; loose band, behaviour not benchmark
    assert 0.40 <= stats.elapsed_s <= 1.2, stats.elapsed_s
    assert wall < 5
    msgs = await consume(bootstrap, [topic_name], 10)
    stamps = [m.timestamp for m in msgs]  # producer create time (ms) = send time
    assert 380 <= stamps[-1] - stamps[0] <= 1100, stamps
    gaps = np.diff(stamps)
    assert gaps.min() >= 30, stamps  # 50 ms apart, not sent in one burst


async def test_events_follow_the_replay_clock(bootstrap: str, topic_name: str) -> None:
    """At speed 20, an event is published after the readings at or before its onset and
    before the first reading after it; events past the last reading are not sent."""
    events = [ev("e1", "C1-S1", 3.5), ev("e2", "C1-S2", 6.2, "crack"),
              ev("late", "C1-S1", 500.0)]
    nuisances = [ev("n1", "C1-S2", 1.5, "tc_spike")]
    heats = synthetic_heats(2, 10, events=events, nuisances=nuisances, stagger_s=0.0)
    etopic = topic_name + "-ev"
    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, events_topic=etopic,
                         speed=20.0, create_topic=True, partitions=1,
                         strand_map={"C1-S2": "C7-S2"})
    assert stats.complete and (stats.events_total, stats.events_acked) == (3, 3)
    msgs = await consume(bootstrap, [topic_name, etopic], 23)
    readings = [(m.timestamp, orjson.loads(m.value)) for m in msgs if m.topic == topic_name]
    evs = {orjson.loads(m.value)["event_id"]: (m.timestamp, orjson.loads(m.value), m.key)
           for m in msgs if m.topic == etopic}
    assert len(readings) == 20 and set(evs) == {"e1", "e2", "n1"}
    for stamp, doc, key in evs.values():
        EVENT.validate(doc)
        assert key == doc["strand"].encode()
        before = [s for s, r in readings if r["ts"] <= doc["onset_ts"]]
        after = [s for s, r in readings if r["ts"] > doc["onset_ts"]]
        assert max(before) <= stamp <= min(after), (doc["event_id"], before[-2:], stamp, after[:2])
    assert evs["e2"][1]["strand"] == "C7-S2" and evs["e2"][1]["kind"] == "defect"
    assert evs["n1"][1]["kind"] == "nuisance"


async def test_events_at_start(bootstrap: str, topic_name: str) -> None:
    heats = synthetic_heats(1, 5, events=[ev("e1", "C1-S1", 3.0)])
    etopic = topic_name + "-ev"
    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, events_topic=etopic,
                         events_at="start", speed=10.0, create_topic=True, partitions=1)
    assert stats.complete and stats.events_acked == 1
    msgs = await consume(bootstrap, [topic_name, etopic], 6)
    first_reading = min(m.timestamp for m in msgs if m.topic == topic_name)
    (event,) = [m for m in msgs if m.topic == etopic]
    assert event.timestamp <= first_reading


async def test_stop_event_reports_what_the_broker_has(bootstrap: str, topic_name: str) -> None:
    heats = synthetic_heats(3, 100)
    stop = asyncio.Event()
    seen: list[int] = []

    def on_progress(st: ReplayStats) -> None:
        seen.append(st.sent)
        if st.acked >= 30:
            stop.set()

    stats = await replay(heats, bootstrap=bootstrap, topic=topic_name, speed=100.0,
                         create_topic=True, partitions=2, stop=stop, on_progress=on_progress,
                         progress_interval_s=0.05)
    assert stats.interrupted and not stats.complete
    assert 30 <= stats.acked == stats.sent < 300
    assert seen and seen == sorted(seen)
    msgs = await consume(bootstrap, [topic_name], stats.acked)
    assert len(msgs) == stats.acked
    last: dict[str, tuple[float, int]] = {}
    for m in msgs:
        doc = orjson.loads(m.value)
        if doc["seq"] > last.get(doc["strand"], (0.0, -1))[1]:
            last[doc["strand"]] = (doc["ts"], doc["seq"])
    assert stats.last_acked == last
    assert any("last acknowledged reading per strand" in s for s in stats.summary_lines())


async def test_missing_topic_is_an_error_without_create(bootstrap: str, topic_name: str) -> None:
    with pytest.raises(ReplayError, match="do not exist"):
        await replay(synthetic_heats(1, 3), bootstrap=bootstrap, topic=topic_name,
                     speed=None, connect_attempts=1)


async def test_unreachable_broker_retries_then_fails() -> None:
    from simulators.broker import free_port

    t = time.monotonic()
    with pytest.raises(ReplayError, match="cannot reach a Kafka broker .* after 3 attempts"):
        await replay(synthetic_heats(1, 3), bootstrap=f"127.0.0.1:{free_port()}",
                     connect_attempts=3)
    assert 0.5 <= time.monotonic() - t < 10  # backoff 0.5 + 1.0 s


async def test_existing_producer_is_used_and_left_running(bootstrap: str,
                                                          topic_name: str) -> None:
    from simulators.replay import start_producer

    producer, _ = await start_producer(bootstrap, idempotence=False)
    try:
        await create_topics(bootstrap, [topic_name], partitions=1)
        s1 = await replay(synthetic_heats(1, 5), producer=producer, topic=topic_name)
        s2 = await replay(synthetic_heats(["C1-S2"], 5), producer=producer, topic=topic_name,
                          speed=None)
        assert s1.complete and s2.complete and s1.idempotent is None
    finally:
        await producer.stop()
    assert len(await consume(bootstrap, [topic_name], 10)) == 10


def test_heat_folder_path_source(tmp_path: Path) -> None:
    folder = write_heats(tmp_path / "h", synthetic_heats(2, 4))
    from simulators.replay import load_source

    assert load_source(folder).readings.num_rows == 8
    assert load_source(folder / "readings.parquet").readings.num_rows == 8


async def test_broker_dying_mid_way_says_how_far_it_got(topic_name: str) -> None:
    from simulators.broker import EmbeddedBroker

    broker = EmbeddedBroker().start()
    try:
        async def kill_when_started() -> None:
            while not seen or seen[-1] < 40:
                await asyncio.sleep(0.02)
            broker.stop()

        seen: list[int] = []
        killer = asyncio.create_task(kill_when_started())
        t = time.monotonic()
        with pytest.raises(ReplayError, match="not delivered|could not be queued") as info:
            await replay(synthetic_heats(4, 100), bootstrap=broker.bootstrap, topic=topic_name,
                         create_topic=True, speed=25.0, idempotence=False,
                         producer_options={"request_timeout_ms": 1000},
                         on_progress=lambda st: seen.append(st.acked),
                         progress_interval_s=0.02)
        await killer
    finally:
        broker.stop()
    stats = info.value.stats
    assert stats is not None and not stats.complete
    assert 40 <= stats.acked < 400 and stats.failed > 0
    assert stats.acked + stats.failed == stats.sent <= 400
    assert any(ln.startswith("failed: ") for ln in stats.summary_lines())
    assert time.monotonic() - t < 20
