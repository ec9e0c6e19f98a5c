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


@settings(max_examples=300, deadline=None)
@given(st.lists(hostile_record(), max_size=12))
def test_decoders_never_raise_on_hostile_input(recs: list) -> None:
    out = BatchDecoder(CHANNELS).decode_batch(recs)
    assert sorted(out.order + [i for i, _ in out.rejected]) == list(range(len(recs)))
    assert np.isfinite(out.values).all()
