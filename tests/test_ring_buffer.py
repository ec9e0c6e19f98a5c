"""Ring buffers: windows are exactly the last readings, in order, however they were appended."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.buffer.ring import AppendResult, StrandBuffers


def feed(buf: StrandBuffers, strand: str, seqs: range, ts0: float = 0.0, now: float = 0.0):
    refs = []
    for s in seqs:
        code, ref = buf.append(strand, "H", ts0 + s, s, np.full(3, s, np.float32), now)
        assert code != AppendResult.DUPLICATE
        if ref is not None:
            refs.append(ref)
    return refs


def test_windows_are_the_last_readings_oldest_first() -> None:
    buf = StrandBuffers(window=5, n_features=3, min_fill=2, initial_slots=2)
    refs = feed(buf, "a", range(0, 13)) + feed(buf, "b", range(100, 103))
    # a: windows due from the 2nd reading on (min_fill=2), each reading (hop=1)
    assert len(refs) == 12 + 2
    # the ring holds window + slack readings: gather the last few of "a" and all of "b"
    w, lengths = buf.gather(refs[-7:])
    ends = [8, 9, 10, 11, 12]
    for row, end in enumerate(ends):
        assert lengths[row] == 5
        np.testing.assert_array_equal(w[row, :, 0], np.arange(end - 4, end + 1))
    np.testing.assert_array_equal(lengths[-2:], [2, 3])
    np.testing.assert_array_equal(w[-1, :3, 0], [100, 101, 102])
    assert not w[-1, 3:].any()  # padding is zero


def test_hop_min_fill_duplicates_and_gap_restart() -> None:
    buf = StrandBuffers(window=4, n_features=3, hop=2, min_fill=3, gap_restart_s=5)
    refs = feed(buf, "a", range(0, 8))
    # first evaluation once min_fill (3) readings are in, then every hop (2) readings
    assert [r.end for r in refs] == [2, 4, 6]
    code, _ = buf.append("a", "H", 7, 7, np.zeros(3, np.float32), 0)
    assert code == AppendResult.DUPLICATE
    code, _ = buf.append("a", "H", 6.5, 99, np.zeros(3, np.float32), 0)  # older time
    assert code == AppendResult.DUPLICATE
    code, ref = buf.append("a", "H", 20, 8, np.zeros(3, np.float32), 0)  # 13 s gap
    assert code == AppendResult.RESTARTED and ref is None
    assert buf.state("a").filled == 1


def test_slots_grow_evict_and_drop_by_partition() -> None:
    buf = StrandBuffers(window=3, n_features=3, initial_slots=1)
    for i in range(5):
        buf.append(f"s{i}", "H", 0, 0, np.zeros(3, np.float32), now=float(i), partition=i % 2)
    assert len(buf) == 5 and buf.data.shape[0] >= 5
    assert sorted(buf.evict_idle(now=10.0, idle_s=7.5)) == ["s0", "s1", "s2"]
    assert buf.drop_partitions({1}) == ["s3"]
    assert list(buf.strands) == ["s4"]


def test_min_fill_must_fit_window() -> None:
    with pytest.raises(ValueError, match="min_fill"):
        StrandBuffers(window=3, n_features=1, min_fill=4)
