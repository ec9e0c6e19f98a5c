"""The msgspec (typed) stage of the batch decoder takes only what the per-record path takes
unchanged, with the very same values; everything else gets the per-record answer."""

from __future__ import annotations

import math
import random

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.bench.ingest_cost import build_polls
from streamer.channels import TC_VALID_RANGE
from streamer.consume.decode import BatchDecoder
from tests.daemon_helpers import CHANNELS, reading, values_at
from tests.test_batch_paths import assert_same_as_single

TC = [c for c in CHANNELS if c.startswith("tc_")]


def _raw(chans: dict[str, bytes] | None = None, **top: bytes) -> bytes:
    """A reading as JSON text, any field given as raw JSON (NaN, 1e400, duplicates...)."""
    vals = {k: orjson.dumps(v) for k, v in values_at(3).items()}
    vals.update(chans or {})
    fields = {"v": b"1", "strand": b'"C1-S1"', "heat": b'"H"', "ts": b"1000000000.5",
              "seq": b"3"}
    fields.update(top)
    body = b",".join(b'"%s":%s' % (k.encode(), v) for k, v in vals.items())
    fields.setdefault("values", b"{" + body + b"}")
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"


def _decoder_spy() -> tuple[BatchDecoder, list[int]]:
    """A BatchDecoder that counts the records it hands to the dict path."""
    dec = BatchDecoder(CHANNELS)
    seen: list[int] = []
    dicts = dec._decode_dicts

    def spy(keys: list, values: list):  # type: ignore[no-untyped-def]
        seen.append(len(values))
        return dicts(keys, values)

    dec._decode_dicts = spy  # type: ignore[method-assign]
    return dec, seen


ODD: list[bytes] = [
    _raw(v=b"1.0"), _raw(v=b"true"), _raw(v=b"2"), _raw(v=b"1e0"),
    _raw(seq=b"9223372036854775807"), _raw(seq=b"9223372036854775808"),
    _raw(seq=b"18446744073709551615"), _raw(seq=b"18446744073709551616"), _raw(seq=b"-0"),
    _raw(seq=b"1.0"), _raw(seq=b"1e2"), _raw(seq=b"true"), _raw(seq=b"-1"), _raw(seq=b'"3"'),
    _raw(ts=b"0"), _raw(ts=b"-0"), _raw(ts=b"-0.0"), _raw(ts=b"-1e-400"), _raw(ts=b"-5e-324"),
    _raw(ts=b"1e-400"), _raw(ts=b"1e400"), _raw(ts=b"18446744073709551615"),
    _raw(ts=b"18446744073709551616"), _raw(ts=b"123456789012345678901234567890"),
    _raw(ts=b"NaN"), _raw(ts=b"Infinity"), _raw(ts=b"true"), _raw(ts=b'"1"'), _raw(ts=b"null"),
    _raw(heat=b'""'), _raw(heat=b'"' + b"h" * 64 + b'"'), _raw(heat=b'"' + b"h" * 65 + b'"'),
    _raw(heat='"{}"'.format("\U0001f600" * 64).encode()),
    _raw(heat='"{}"'.format("\U0001f600" * 65).encode()),
    _raw(heat=b'"\\ud83d\\ude00"'), _raw(heat=b'"\\ud800"'), _raw(heat=b'"\\udc00x"'),
    _raw(heat=b'"\xff"'), _raw(heat=b'"\xed\xa0\x80"'), _raw(heat=b'"a\x01"'), _raw(heat=b"7"),
    _raw(strand=b'"C1-S1\\n"'), _raw(strand=b'"C1 S1"'), _raw(strand=b'"C1-S2"'),
    _raw(strand=b"1"),
    _raw({"casting_speed": b"1"}), _raw({"mould_level": b"-0"}), _raw({"mould_level": b"0"}),
    _raw({"mould_level": b"-0.0"}), _raw({"casting_speed": b"true"}),
    _raw({"mould_level": b"false"}), _raw({"superheat": b'"30.5"'}), _raw({"superheat": b"NaN"}),
    _raw({"superheat": b"Infinity"}), _raw({"superheat": b"-Infinity"}),
    _raw({"superheat": b"1e400"}), _raw({"superheat": b"3e1"}), _raw({"superheat": b"30E+0"}),
    _raw({"superheat": b"01"}), _raw({"superheat": b"1."}), _raw({"superheat": b".5"}),
    _raw({"superheat": b"+1"}), _raw({"superheat": b"[30]"}), _raw({"superheat": b"{}"}),
    _raw({"water_flow": b"3800"}), _raw({"water_flow": b"18446744073709551615"}),
    _raw({"tc_r1_c1": b"null"}), _raw({"tc_r1_c1": b"150"}), _raw({"tc_r1_c1": b"400"}),
    _raw({"casting_speed": b"null"}), _raw({"tc_r2_c2": b"true"}),
    _raw({"tc_r1_c1": b"0.1000000000000000055511151231257827021181583404541015625000001e3"}),
    # an extra channel or top-level key: ignored by the per-record path, refused by the
    # typed one, whatever it holds (msgspec would skip these without orjson's checks)
    _raw({"extra": b"1"}), _raw({"extra": b'"\xff"'}), _raw({"extra": b"1e400"}),
    _raw({"extra": b"1" * 500}), _raw({"extra": b"[" * 2000 + b"]" * 2000}),
    _raw(unit=b'"degC"'), _raw(unit=b'"\xed\xa0\x80"'), _raw(unit=b"1e99999"),
    # duplicate keys: orjson keeps the last one
    _raw({"superheat": b'30.0,"superheat":"hot"'}), _raw({"superheat": b'"hot","superheat":30.0'}),
    _raw({"superheat": b'31.0,"superheat":32.5'}), _raw(seq=b'1,"seq":2'),
    _raw(seq=b'1,"seq":2.0'), _raw(v=b'2,"v":1'),
    _raw(values=b"null"), _raw(values=b"[]"), _raw(values=b'{"casting_speed":1.2}'),
    b'{"\\u0076":1,' + _raw()[len(b'{"v":1,'):], b"\xef\xbb\xbf" + _raw(), b" \n\t" + _raw() + b" ",
    _raw() + b"\x00", _raw() + b" {}", b"[" + _raw() + b"]", b"", b"null", b"1",
]


def test_odd_records_get_the_per_record_answer() -> None:
    good = [(b"C1-S1", reading("C1-S1", i)) for i in range(40)]
    for odd in ODD:
        for key in (b"C1-S1", None):
            assert_same_as_single([(key, odd)])
            recs = good[:20] + [(key, odd)] + good[20:]
            assert_same_as_single(recs)


def test_all_odd_records_in_one_poll() -> None:
    recs = [(b"C1-S1", v) for v in ODD] + [(b"C1-S1", reading("C1-S1", i)) for i in range(50)]
    random.Random(1).shuffle(recs)
    assert_same_as_single(recs)


def test_integer_values_stay_on_the_typed_path() -> None:
    """Integers where floats belong are taken by msgspec, as floats, like np.array makes them."""
    recs = [(b"C1-S1", _raw({c: b"%d" % round(v) for c, v in values_at(i).items()},
                            ts=b"%d" % (10**9 + i), seq=b"%d" % i)) for i in range(20)]
    dec, dict_path = _decoder_spy()
    out = dec.decode_batch(recs)
    assert dict_path == [] and out.order == list(range(20))
    assert_same_as_single(recs)


def test_the_bench_readings_all_take_the_typed_path() -> None:
    """The usual poll never touches orjson in the batch decoder (what makes it cheaper)."""
    dec, dict_path = _decoder_spy()
    for poll in build_polls(strands=16, per_strand=20, max_records=200):
        for msgs in poll.values():
            out = dec.decode_columns([m.key for m in msgs], [m.value for m in msgs])
            assert len(out.order) == len(msgs) and not out.rejected
    assert dict_path == []


def test_only_the_refused_records_take_the_dict_path() -> None:
    recs = [(b"C1-S1", reading("C1-S1", i)) for i in range(30)]
    recs[3] = (b"C1-S1", reading("C1-S1", 3, tc_r1_c1=None))  # a faulty thermocouple
    recs[17] = (b"C1-S1", _raw({"extra": b"1"}, seq=b"17"))
    dec, dict_path = _decoder_spy()
    out = dec.decode_batch(recs)
    assert dict_path == [2] and out.order == list(range(30))
    assert out.degraded == {3: ("tc_r1_c1",)}
    assert_same_as_single(recs)


def test_mostly_refused_polls_pause_the_typed_path() -> None:
    """A sender whose every reading has extra channels: after one such poll the decoder
    goes the dict way for ``typed_pause_polls`` polls, then tries the typed path again."""
    dec, dict_path = _decoder_spy()
    dec.typed_pause_polls = 2
    extra = [(b"C1-S1", _raw({"tc_r9_c1": b"150.0"}, seq=b"%d" % i)) for i in range(20)]
    plain = [(b"C1-S1", reading("C1-S1", i)) for i in range(20)]
    for recs, want in [(extra, [20]), (plain, [20, 20]), (plain, [20, 20, 20]),
                       (plain, [20, 20, 20]), (extra[:10] + plain[10:], [20, 20, 20, 10])]:
        out = dec.decode_batch(recs)
        assert dict_path == want
        assert out.order == list(range(20)) and not out.rejected
        assert_same_as_single(recs)


# -- numbers as text: msgspec's and orjson's parsing must give the same float, always -------

def _number_text(x: float, draw: st.DrawFn) -> bytes:
    style = draw(st.sampled_from(["repr", "fixed", "exp", "int"]))
    if style == "repr":
        return repr(x).encode()
    if style == "int":
        return b"%d" % round(x)
    p = draw(st.integers(0, 30))
    return (f"{x:.{p}f}" if style == "fixed" else f"{x:.{p}e}").encode()


@st.composite
def numeric_record(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """A reading whose numbers are written in many ways, mostly in range, some not."""
    lo, hi = TC_VALID_RANGE
    vals: dict[str, bytes] = {}
    for c in draw(st.lists(st.sampled_from(CHANNELS), max_size=6, unique=True)):
        if c in TC and draw(st.booleans()):
            x = draw(st.floats(lo - 1, hi + 1))
        else:
            x = draw(st.floats(allow_nan=False, allow_infinity=False))
        vals[c] = _number_text(x, draw)
    ts = draw(st.floats(-1.0, 1e30) | st.integers(0, 2**70).map(float))
    seq = draw(st.integers(-5, 2**64 + 5))
    top = {"ts": _number_text(ts, draw) if math.isfinite(ts) else b"0",
           "seq": b"%d" % seq if draw(st.booleans()) else _number_text(float(seq), draw)}
    return b"C1-S1", _raw(vals, **top)


@settings(max_examples=300, deadline=None)
@given(st.lists(numeric_record(), min_size=1, max_size=10))
def test_numbers_in_any_notation_decode_the_same(recs: list) -> None:
    assert_same_as_single(recs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ODD), max_size=8), st.integers(0, 30), st.integers(0, 10**6))
def test_odd_records_anywhere_in_a_poll(odd: list[bytes], n_good: int, seed: int) -> None:
    recs = [(b"C1-S1", reading("C1-S1", i)) for i in range(n_good)] + [
        (b"C1-S1", v) for v in odd]
    random.Random(seed).shuffle(recs)
    assert_same_as_single(recs)


def test_typed_values_are_the_per_record_values_bit_for_bit() -> None:
    """float32 rows and float64 ts of the typed path equal the per-record ones exactly."""
    from streamer.consume.decode import ReadingDecoder
    rng = np.random.default_rng(0)
    recs = []
    for i in range(200):
        v = {c: float(x) for c, x in zip(CHANNELS, rng.uniform(20, 240, len(CHANNELS)))}
        v.update(casting_speed=float(rng.uniform(0, 12)), mould_level=float(rng.normal()),
                 superheat=30.0, water_flow=3800.5, water_dt=-0.0)
        recs.append((b"C1-S1", orjson.dumps({"v": 1, "strand": "C1-S1", "heat": "H",
                                              "ts": float(rng.uniform(0, 2e9)), "seq": i,
                                              "values": v})))
    dec, dict_path = _decoder_spy()
    out = dec.decode_batch(recs)
    assert dict_path == [] and out.order == list(range(200))
    single = ReadingDecoder(CHANNELS)
    for row, (k, v) in enumerate(recs):
        r = single.decode(k, v)
        assert out.values[row].tobytes() == r.values.tobytes()  # type: ignore[union-attr]
        assert out.ts[row].tobytes() == np.float64(r.ts).tobytes()  # type: ignore[union-attr]


def test_the_bench_can_fail_a_share_of_thermocouples() -> None:
    """``ingest_cost --failed-tc``: that share of readings carries a null tc_r1_c1, and each
    one decodes as a degraded reading (the per-record path), none rejected."""
    dec = BatchDecoder(CHANNELS)
    n = degraded = 0
    for poll in build_polls(strands=16, per_strand=50, max_records=400, failed_tc=0.2):
        for msgs in poll.values():
            out = dec.decode_columns([m.key for m in msgs], [m.value for m in msgs])
            assert not out.rejected
            assert set(out.degraded.values()) <= {("tc_r1_c1",)}
            n += len(msgs)
            degraded += len(out.degraded)
    assert n == 800 and 0.15 < degraded / n < 0.25
