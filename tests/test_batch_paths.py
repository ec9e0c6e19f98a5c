"""The fast batch paths give exactly what the per-record paths give."""

from __future__ import annotations

import random

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.buffer.ring import StrandBuffers
from streamer.consume.decode import BatchDecoder, Reading, ReadingDecoder, Rejected
from tests.daemon_helpers import CHANNELS, reading, values_at
from tests.test_decode import BAD


def corpus(seed: int, n: int) -> list[tuple[bytes | None, bytes | None]]:
    rng = random.Random(seed)
    out: list[tuple[bytes | None, bytes | None]] = []
    for i in range(n):
        r = rng.random()
        strand = f"C1-S{rng.randint(1, 4)}"
        if r < 0.15:
            _, k, v, _ = rng.choice(BAD)
            out.append((k, v))
        elif r < 0.25:  # degraded thermocouple
            v = values_at(i)
            v["tc_r2_c2"] = rng.choice([None, 300.0, 0.5])
            out.append((strand.encode(), orjson.dumps(
                {"v": 1, "strand": strand, "heat": "H", "ts": 1e9 + i, "seq": i, "values": v})))
        elif r < 0.3:  # channels in another order, plus an extra one
            v = dict(reversed(list(values_at(i).items())))
            v["extra_tag"] = 1.0
            out.append((None, orjson.dumps(
                {"v": 1, "strand": strand, "heat": "H", "ts": 1e9 + i, "seq": i, "values": v})))
        else:
            out.append((strand.encode(), reading(strand, i)))
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 60))
def test_decode_batch_equals_decode(seed: int, n: int) -> None:
    recs = corpus(seed, n)
    single = ReadingDecoder(CHANNELS)
    batch = BatchDecoder(CHANNELS)
    out = batch.decode_batch(recs)
    want = [single.decode(k, v) for k, v in recs]
    assert sorted(out.order + [i for i, _ in out.rejected]) == list(range(n))
    for i, rej in out.rejected:
        assert isinstance(want[i], Rejected) and want[i].reason == rej.reason
    assert out.order == sorted(out.order)
    for row, i in enumerate(out.order):
        w = want[i]
        assert isinstance(w, Reading)
        assert (out.strands[row], out.heats[row], out.ts[row], out.seq[row]) == (
            w.strand, w.heat, w.ts, w.seq)
        np.testing.assert_array_equal(out.values[row], w.values)
        assert out.degraded.get(row, ()) == w.degraded


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_append_batch_equals_append(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 80)
    strands = [f"s{rng.randint(0, 3)}" for _ in range(n)]
    seq = np.array([rng.randint(0, 40) for _ in range(n)], dtype=np.int64)
    ts = seq.astype(np.float64) + np.array([rng.choice([0, 0, 0, 30]) for _ in range(n)])
    values = np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
    kw = dict(window=4, n_features=3, hop=rng.randint(1, 3), min_fill=rng.randint(1, 4),
              gap_restart_s=10, slack=3, initial_slots=1)
    a, b = StrandBuffers(**kw), StrandBuffers(**kw)
    codes_a, windows_a = [], []
    for i in range(n):
        code, ref = a.append(strands[i], "H", float(ts[i]), int(seq[i]), values[i], 0.0)
        codes_a.append(code)
        if ref is not None:
            windows_a.append(a.gather([ref])[0][0].copy())
    codes_b, windows_b, start = [], [], 0
    while start < n:
        res = b.append_batch(strands, ["H"] * n, ts, seq, values, 0.0, start=start)
        codes_b += res.codes[start:res.stop].tolist()
        if res.due:
            w, _ = b.gather([r for _, r in res.due])
            windows_b += [x.copy() for x in w]
        start = res.stop
    assert codes_b == codes_a
    assert len(windows_b) == len(windows_a)
    for x, y in zip(windows_a, windows_b):
        np.testing.assert_array_equal(x, y)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False,
                                                                         allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@st.composite
def hostile_record(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.none() | st.binary(max_size=8)), draw(st.none() | st.binary(max_size=64))
    base: dict[str, object] = {"v": 1, "strand": "C1-S1", "heat": "H", "ts": 1e9, "seq": 1,
                               "values": values_at(1)}
    if kind == 1:  # one top-level field replaced by anything
        base[draw(st.sampled_from(list(base)))] = draw(json_values)
    elif kind == 2:  # one channel replaced by anything
        vals = dict(values_at(1))
        vals[draw(st.sampled_from(CHANNELS))] = draw(json_values)
        base["values"] = vals
    else:
        base = draw(json_values)  # type: ignore[assignment]
    return b"C1-S1", orjson.dumps(base)


def assert_same_as_single(recs: list[tuple[bytes | None, bytes | None]]) -> None:
    """The batch decoder's answer, reading by reading, is the per-record decoder's."""
    out = BatchDecoder(CHANNELS).decode_batch(recs)
    single = ReadingDecoder(CHANNELS)
    want = [single.decode(k, v) for k, v in recs]
    assert sorted(out.order + [i for i, _ in out.rejected]) == list(range(len(recs)))
    assert out.order == sorted(out.order)
    for i, rej in out.rejected:
        assert isinstance(want[i], Rejected) and want[i].reason == rej.reason, (recs[i], rej)
    for row, i in enumerate(out.order):
        w = want[i]
        assert isinstance(w, Reading), (recs[i], w)
        assert (out.strands[row], out.heats[row], out.ts[row], out.seq[row]) == (
            w.strand, w.heat, w.ts, w.seq)
        np.testing.assert_array_equal(out.values[row], w.values)
        assert out.degraded.get(row, ()) == w.degraded
    assert np.isfinite(out.values).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_record(), max_size=12))
def test_decoders_never_raise_on_hostile_input(recs: list) -> None:
    assert_same_as_single(recs)


@settings(max_examples=200, deadline=None)
@given(st.lists(hostile_record(), max_size=6), st.integers(0, 40))
def test_hostile_records_among_good_ones(bad: list, n_good: int) -> None:
    """A few odd records in a poll of good ones: the good ones stay on the fast path, the
    odd ones get the per-record answer, in input order."""
    recs = [(b"C1-S1", reading("C1-S1", i)) for i in range(n_good)] + bad
    random.Random(n_good).shuffle(recs)
    assert_same_as_single(recs)


def _doc(**over: object) -> bytes:
    d: dict[str, object] = {"v": 1, "strand": "C1-S1", "heat": "H", "ts": 1e9, "seq": 1,
                            "values": values_at(1)}
    d.update(over)
    return orjson.dumps(d)


def test_batch_path_rejects_what_the_record_path_rejects() -> None:
    """Cases the batch path once got wrong: a bool or a numeric string where a number
    belongs converted silently, and a seq beyond int64 raised."""
    odd = [
        _doc(values={**values_at(1), "casting_speed": True}),
        _doc(values={**values_at(1), "mould_level": False}),
        _doc(values={**values_at(1), "superheat": "30.5"}),
        _doc(seq=2**63), _doc(seq=2**64 - 1), _doc(ts=True), _doc(v=True),
        _doc(values={**values_at(1), "mould_level": 0, "casting_speed": 1}),  # real 0 and 1
        _doc(values={**values_at(1), "extra_tag": "text"}),  # extra channels are ignored
    ]
    recs = [(b"C1-S1", v) for v in odd] + [(b"C1-S1", reading("C1-S1", i)) for i in range(30)]
    assert_same_as_single(recs)
    out = BatchDecoder(CHANNELS).decode_batch(recs)
    assert [i for i, _ in out.rejected] == [0, 1, 2, 3, 4, 5]


def _poll_stream(rng: random.Random, n_strands: int, polls: int, per_poll: int
                 ) -> list[tuple[list[str], np.ndarray, np.ndarray]]:
    """Polls of interleaved strands, each strand's seq and ts rising; now and then a gap
    (a window restart), a duplicate, a reading out of order or a new strand."""
    seq = {f"s{i}": rng.randint(0, 5) for i in range(n_strands)}
    out = []
    for _ in range(polls):
        names, ts, sq = [], [], []
        for _ in range(rng.randint(1, per_poll)):
            s = f"s{rng.randint(0, n_strands - 1)}"
            r = rng.random()
            if r < 0.03:  # duplicate / out of order
                q = max(0, seq[s] - rng.randint(0, 2))
            else:
                q = seq[s] = seq[s] + 1
            t = float(q) + (30.0 if r > 0.97 else 0.0) * (q // 7)
            names.append(s)
            ts.append(t)
            sq.append(q)
        out.append((names, np.array(ts), np.array(sq, dtype=np.int64)))
    return out


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_vectorised_append_equals_row_by_row(seed: int) -> None:
    rng = random.Random(seed)
    window = rng.randint(2, 6)
    kw = {"window": window, "n_features": 2, "hop": rng.randint(1, 4),
          "min_fill": rng.randint(1, window), "gap_restart_s": 10, "slack": rng.randint(1, 5),
          "initial_slots": rng.randint(1, 3)}
    ref, vec = StrandBuffers(**kw), StrandBuffers(**kw)
    vec.vector_min_rows = 0
    ref.vector_min_rows = 10**9
    polls = _poll_stream(rng, rng.randint(1, 6), rng.randint(1, 6), rng.choice([4, 12, 40]))
    for p, (names, ts, sq) in enumerate(polls):
        values = np.random.default_rng(seed + p).normal(size=(len(names), 2)).astype(np.float32)
        heats = [f"H{q // 10}" for q in sq.tolist()]
        start = 0
        while start < len(names):
            a = ref.append_batch(names, heats, ts, sq, values, float(p), p % 2, start)
            b = vec.append_batch(names, heats, ts, sq, values, float(p), p % 2, start)
            assert b.stop == a.stop
            np.testing.assert_array_equal(b.codes, a.codes)
            assert [(r, w.slot, w.end, w.length) for r, w in b.due] == [
                (r, w.slot, w.end, w.length) for r, w in a.due]
            if a.due:
                np.testing.assert_array_equal(vec.gather([w for _, w in b.due])[0],
                                              ref.gather([w for _, w in a.due])[0])
            start = a.stop
        assert vec.snapshot() == ref.snapshot()
