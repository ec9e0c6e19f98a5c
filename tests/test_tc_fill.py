"""A failed thermocouple is filled without a step, and recorded series are decoded exactly
as the daemon decodes them poll by poll."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.buffer.ring import StrandBuffers
from streamer.channels import ChannelLayout
from streamer.consume.decode import BatchDecoder
from streamer.consume.series import decode_series
from streamer.consume.tc_fill import TcFill
from streamer.formats.reading import encode_reading

CHANNELS = list(ChannelLayout(2, 4).channels)  # 5 process tags, 2 rows x 4 columns
TC = {c: i for i, c in enumerate(CHANNELS) if c.startswith("tc_")}


def strand_series(n: int, seed: int) -> np.ndarray:
    """[n, F]: plausible process tags; each TC = its row's common movement + its own offset +
    a little noise."""
    rng = np.random.default_rng(seed)
    v = np.empty((n, len(CHANNELS)))
    v[:, :5] = [1.2, 0.0, 25.0, 3800.0, 7.0]
    common = 150 + np.cumsum(rng.normal(0, 0.3, n))
    for i in TC.values():
        v[:, i] = common + rng.uniform(-8, 8) + rng.normal(0, 0.1, n)
    return v


def test_carrying_keeps_the_offset_where_the_row_mean_makes_a_step() -> None:
    v = strand_series(60, seed=1)
    j = TC["tc_r1_c2"]
    truth = v[:, j].copy()
    v[20:40, j] = np.nan  # the sensor drops out for 20 readings
    out, keep, filled = decode_series(v, CHANNELS)
    assert keep.all() and filled == 20
    carried_err = np.abs(out[20:40, j] - truth[20:40]).max()
    row = [TC[f"tc_r1_c{c}"] for c in (1, 3, 4)]
    row_mean_err = np.abs(v[20:40, row].mean(1) - truth[20:40]).max()
    assert carried_err < 1.0  # the noise of the others, not the offset
    assert row_mean_err > 2.0  # what the row mean alone would have put in (offsets +-8)
    # the first filled value continues from the last good one: no step at the failure
    assert abs(out[20, j] - truth[19]) < 1.5


def test_a_failure_at_a_strands_first_reading_takes_the_row_mean() -> None:
    v = strand_series(5, seed=2)
    j = TC["tc_r2_c1"]
    v[0, j] = 300.0
    out, _, filled = decode_series(v, CHANNELS)
    row = [TC[f"tc_r2_c{c}"] for c in (2, 3, 4)]
    assert filled == 1 and out[0, j] == pytest.approx(v[0, row].mean(), rel=1e-6)


def test_the_previous_reading_is_the_previous_kept_one() -> None:
    v = strand_series(10, seed=3)
    v[4, 0] = np.nan  # casting speed missing: reading 4 is dropped
    v[5, TC["tc_r1_c1"]] = 0.5
    out, keep, _ = decode_series(v, CHANNELS)
    assert not keep[4]
    fill = TcFill(CHANNELS)
    want = out[3].copy()
    bad = np.zeros(len(CHANNELS), dtype=bool)
    bad[TC["tc_r1_c1"]] = True
    cur = v[5].astype(np.float32)
    fill.carry(cur, want, bad)
    assert out[5, TC["tc_r1_c1"]] == cur[TC["tc_r1_c1"]]


def test_decode_series_matches_the_daemon_poll_by_poll() -> None:
    """Two strands interleaved, cut into polls of random sizes, through the daemon's decoder,
    fill and ring buffer; the ring holds exactly what decode_series gives for each strand."""
    rng = np.random.default_rng(7)
    n = 300
    series = {s: strand_series(n, seed=10 + k) for k, s in enumerate(("C1-S1", "C1-S2"))}
    for v in series.values():
        tcs = list(TC.values())
        for r in rng.choice(n, 60, replace=False):  # single readings with faults
            v[r, rng.choice(tcs, int(rng.integers(1, 3)), replace=False)] = rng.choice(
                [np.nan, 0.5, 300.0, -5.0])
        j = int(rng.choice(tcs))
        v[100:160, j] = np.nan  # a long dropout, across many polls
        v[200, [TC[f"tc_r2_c{c}"] for c in range(1, 5)]] = np.nan  # a whole row: rejected
        v[210, 3] = -1.0  # water flow implausible: rejected
    records = [(s.encode(), encode_reading(s, "H1", 1000.0 + t, t, dict(zip(CHANNELS, v[t]))))
               for t in range(n) for s, v in series.items()]
    dec = BatchDecoder(CHANNELS)
    buffers = StrandBuffers(window=n, n_features=len(CHANNELS), slack=n)
    i = 0
    while i < len(records):
        k = int(rng.integers(1, 40))
        poll = records[i:i + k]
        d = dec.decode_columns([r[0] for r in poll], [r[1] for r in poll])
        dec.tc_fill.carry_poll(d.values, d.strands, d.degraded, buffers.last_values)
        start = 0
        while start < len(d.order):
            start = buffers.append_batch(d.strands, d.heats, d.ts, d.seq, d.values, 0.0,
                                         start=start).stop
        i += k
    for s, v in series.items():
        want, keep, filled = decode_series(v, CHANNELS)
        assert filled > 60 and keep.sum() == n - 2
        st = buffers.state(s)
        assert st is not None and st.total == n - 2
        got = buffers.data[st.slot, :st.total]
        np.testing.assert_array_equal(got, want[keep])
