"""Decoding and validation of readings: every malformed input is a clear rejection."""

from __future__ import annotations

import orjson
import pytest

from streamer.consume.decode import MAX_MESSAGE_BYTES, Reading, ReadingDecoder, Rejected
from tests.daemon_helpers import CHANNELS, reading, values_at

dec = ReadingDecoder(CHANNELS)


def doc(**over: object) -> dict[str, object]:
    d: dict[str, object] = {"v": 1, "strand": "C1-S1", "heat": "H1", "ts": 1.7e9, "seq": 5,
                            "values": values_at(5)}
    d.update(over)
    return d


def test_valid_reading_in_channel_order() -> None:
    r = dec.decode(b"C1-S1", reading("C1-S1", 5))
    assert isinstance(r, Reading)
    assert r.values.dtype.name == "float32" and r.values.shape == (len(CHANNELS),)
    assert r.values[0] == pytest.approx(1.2)
    assert r.degraded == ()


def test_out_of_range_thermocouple_is_replaced_by_row_mean() -> None:
    v = values_at(5)
    v["tc_r2_c3"] = 400.0
    v["tc_r1_c1"] = None
    r = dec.decode(None, orjson.dumps(doc(values=v)))
    assert isinstance(r, Reading)
    assert set(r.degraded) == {"tc_r2_c3", "tc_r1_c1"}
    row2 = [CHANNELS.index(f"tc_r2_c{c}") for c in range(1, 9)]
    others = [v[f"tc_r2_c{c}"] for c in range(1, 9) if c != 3]
    assert r.values[CHANNELS.index("tc_r2_c3")] == pytest.approx(sum(others) / 7, rel=1e-5)
    assert r.values[row2].max() < 250


BAD: list[tuple[str, bytes | None, bytes | None, str]] = [
    ("truncated", b"C1-S1", reading("C1-S1", 1)[:-7], "invalid_json"),
    ("not json", b"C1-S1", b"{strand: C1-S1}", "invalid_json"),
    ("NaN literal", b"C1-S1", reading("C1-S1", 1).replace(b'"superheat":30.0', b'"superheat":NaN'),
     "invalid_json"),
    ("Infinity", b"C1-S1", reading("C1-S1", 1).replace(b'"superheat":30.0', b'"superheat":Infinity'),
     "invalid_json"),
    ("huge number", b"C1-S1", reading("C1-S1", 1).replace(b'"superheat":30.0', b'"superheat":1e400'),
     "invalid_json"),
    ("array top", None, b"[1,2,3]", "schema"),
    ("wrong version", None, orjson.dumps(doc(v=2)), "version"),
    ("string ts", None, orjson.dumps(doc(ts="yesterday")), "schema"),
    ("negative seq", None, orjson.dumps(doc(seq=-1)), "schema"),
    ("float seq", None, orjson.dumps(doc(seq=1.5)), "schema"),
    ("bool seq", None, orjson.dumps(doc(seq=True)), "schema"),
    ("values list", None, orjson.dumps(doc(values=[1.0] * 29)), "schema"),
    ("missing channels", None, orjson.dumps(doc(values={"casting_speed": 1.0})), "missing_channels"),
    ("wrong channel count", None,
     orjson.dumps(doc(values={k: v for k, v in values_at(1).items() if k != "tc_r3_c8"})),
     "missing_channels"),
    ("string value", None, orjson.dumps(doc(values={**values_at(1), "superheat": "hot"})), "type"),
    ("null process value", None, orjson.dumps(doc(values={**values_at(1), "casting_speed": None})),
     "range"),
    ("speed out of range", None, orjson.dumps(doc(values={**values_at(1), "casting_speed": -3})),
     "range"),
    ("whole row dead", None,
     orjson.dumps(doc(values={**values_at(1), **{f"tc_r1_c{c}": 0.0 for c in range(1, 9)}})), "range"),
    ("empty value", b"C1-S1", b"", "empty"),
    ("tombstone", b"C1-S1", None, "tombstone"),
    ("binary garbage", b"C1-S1", bytes(range(256)) * 3, "invalid_json"),
    ("oversized", b"C1-S1", b'{"v":1,"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}', "oversized"),
    ("unknown strand format", None, orjson.dumps(doc(strand="strand #1 / west")), "strand"),
    ("empty strand", None, orjson.dumps(doc(strand="")), "strand"),
    ("key mismatch", b"C1-S2", reading("C1-S1", 1), "key"),
    ("key not utf8", b"\xff\xfe", reading("C1-S1", 1), "key"),
    ("missing heat", None, orjson.dumps({k: v for k, v in doc().items() if k != "heat"}), "schema"),
]


@pytest.mark.parametrize("name,key,value,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_rejected_with_reason(name: str, key: bytes | None, value: bytes | None,
                                           reason: str) -> None:
    r = dec.decode(key, value)
    assert isinstance(r, Rejected), name
    assert r.reason == reason, (name, r)
    assert r.detail
