"""Event-level metrics checked against hand-computed cases."""

from __future__ import annotations

import pytest

from streamer.evaluation.events import Raise, TruthEvent, percentile, score_events

EV = [
    TruthEvent("e1", "A", "sticker", onset_ts=100, critical_ts=190),  # caught at 130: lead 60
    TruthEvent("e2", "A", "sticker", onset_ts=1000, critical_ts=1080),  # caught at 1070: lead 10
    TruthEvent("e3", "B", "sticker", onset_ts=500, critical_ts=590),  # missed (raise too late)
    TruthEvent("e4", "B", "crack", onset_ts=2000, critical_ts=2100),  # caught at 2000: lead 100
    TruthEvent("e5", "B", "slag", onset_ts=9000, critical_ts=9100),  # pending: data ends 8000
]
RAISES = [
    Raise("A", "sticker", 130), Raise("A", "sticker", 150),  # second raise: same event, not false
    Raise("A", "sticker", 1070),
    Raise("B", "sticker", 620),  # 30 s after e3's critical time: late
    Raise("B", "crack", 2000),
    Raise("B", "slag", 2050),  # during a crack: mistyped, not false
    Raise("A", "crack", 5000), Raise("B", "sticker", 7000),  # nothing there: 2 false alarms
]


def test_hand_computed_case() -> None:
    s = score_events(RAISES, EV, observed_until={"A": 8000, "B": 8000},
                     strand_seconds=2 * 43200)
    st, cr, sl = s.by_type["sticker"], s.by_type["crack"], s.by_type["slag"]
    assert (st.events, st.caught, st.missed, st.pending) == (3, 2, 1, 0)
    assert st.detection_rate == pytest.approx(2 / 3)
    assert sorted(st.lead_times_s) == [10, 60]
    assert (st.late, st.false_alarms) == (1, 1)
    assert (cr.caught, cr.lead_times_s, cr.false_alarms) == (1, [100], 1)
    assert (sl.pending, sl.mistyped, sl.false_alarms) == (1, 1, 0)
    assert s.strand_days == 1.0 and s.false_alarms == 2
    d = s.as_dict()
    assert d["false_alarms_per_strand_day"] == 2.0
    assert d["by_type"]["sticker"]["lead_time_median_s"] == 35.0
    assert d["by_type"]["sticker"]["lead_time_p10_s"] == pytest.approx(15.0)


def test_percentile_matches_numpy_linear() -> None:
    np = pytest.importorskip("numpy")
    vals = sorted([3.0, 1.0, 7.5, 2.0, 10.0, 4.0])
    for q in (0, 10, 50, 90, 99, 100):
        assert percentile(vals, q) == pytest.approx(float(np.percentile(vals, q)))


def test_early_tolerance() -> None:
    ev = [TruthEvent("e", "A", "slag", 100, 160)]
    assert score_events([Raise("A", "slag", 95)], ev, observed_until={"A": 500},
                        strand_seconds=500).by_type["slag"].caught == 0
    assert score_events([Raise("A", "slag", 95)], ev, observed_until={"A": 500},
                        strand_seconds=500, early_s=10).by_type["slag"].caught == 1
