"""Window metrics, the alarm pipeline and the seed check, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.alarm.levels import AlarmStates
from streamer.evaluation.alarms import (
    alert_settings,
    event_report,
    false_alarm_kinds,
    raises_from_scores,
)
from streamer.evaluation.data import (
    SeedLeakError,
    check_heldout_seed,
    training_seeds,
)
from streamer.evaluation.events import Raise, TruthEvent, score_events
from streamer.evaluation.window_metrics import (
    average_precision,
    pr_curve,
    roc_auc,
    roc_curve,
    window_metrics,
)

# -- window metrics ---------------------------------------------------------------------------


def test_roc_auc_and_ap_hand_computed() -> None:
    # scores desc: 0.8(+) 0.4(-) 0.35(+) 0.1(-). Pairs (+,-): (0.8,0.4) (0.8,0.1) (0.35,0.1)
    # ranked right, (0.35,0.4) wrong -> AUC 3/4. AP: recall 0.5 at precision 1 (0.8), then
    # recall 1 at precision 2/3 (0.35): 0.5 * 1 + 0.5 * 2/3 = 5/6.
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(y, s) == pytest.approx(0.75)
    assert average_precision(y, s) == pytest.approx(5 / 6)
    fpr, tpr, thr = roc_curve(y, s)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert thr[1:].tolist() == [0.8, 0.4, 0.35, 0.1]
    precision, recall, _ = pr_curve(y, s)
    assert precision.tolist() == pytest.approx([1, 0.5, 2 / 3, 0.5])
    assert recall.tolist() == [0.5, 0.5, 1, 1]


def test_ties_count_half() -> None:
    # positives {0.5, 0.9}, negatives {0.5, 0.1}: 3 pairs right + one tie (1/2) -> 3.5 / 4.
    # AP: threshold 0.9 -> P 1, R 0.5; threshold 0.5 takes both tied windows -> P 2/3, R 1.
    y = [1, 0, 1, 0]
    s = [0.5, 0.5, 0.9, 0.1]
    assert roc_auc(y, s) == pytest.approx(0.875)
    assert average_precision(y, s) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_perfect_inverted_constant_and_one_class() -> None:
    y = [0, 1, 0, 1, 1]
    assert roc_auc(y, [0.1, 0.9, 0.2, 0.8, 0.7]) == 1.0
    assert average_precision(y, [0.1, 0.9, 0.2, 0.8, 0.7]) == 1.0
    assert roc_auc(y, [0.9, 0.1, 0.8, 0.2, 0.3]) == 0.0
    assert roc_auc(y, [0.5] * 5) == 0.5
    assert average_precision(y, [0.5] * 5) == pytest.approx(3 / 5)  # = prevalence
    assert roc_auc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert average_precision([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert roc_auc([1, 1], [0.1, 0.2]) is None
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0, 1], [0.1, float("nan")])


def test_matches_scikit_learn_on_random_cases() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    for _ in range(50):
        y = rng.integers(0, 2, 40)
        s = rng.integers(0, 6, 40) / 5  # many ties
        if y.min() == y.max():
            continue
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_window_metrics_any_defect_uses_max_score() -> None:
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.7], [0.1, 0.3], [0.4, 0.2]])
    m = window_metrics(labels, scores, ["sticker", "crack"])
    # sticker: positive 0.9 beats all three negatives -> 1.0
    assert m["sticker"]["roc_auc"] == 1.0 and m["sticker"]["positives"] == 1
    # crack: positive 0.3 vs negatives 0.1, 0.7, 0.2 -> 2/3
    assert m["crack"]["roc_auc"] == pytest.approx(2 / 3)
    # any: labels [1, 0, 1, 0], scores max -> [0.9, 0.7, 0.3, 0.4]:
    # pairs (0.9>0.7) (0.9>0.4) (0.3<0.7) (0.3<0.4) -> 1/2
    assert m["any"]["roc_auc"] == pytest.approx(0.5)
    assert m["any"]["positives"] == 2 and m["any"]["windows"] == 4
    # AP(any): 0.9 (+) P 1 R .5; 0.7 (-); 0.4 (-); 0.3 (+) P 2/4 R 1 -> .5 + .25
    assert m["any"]["average_precision"] == pytest.approx(0.75)


# -- alarms and event scoring -------------------------------------------------------------------


def _naive(strand: str, ts: np.ndarray, scores: np.ndarray, types: list[str], settings) -> list:
    st = AlarmStates(settings, types)
    out = []
    for t, p in zip(ts, scores):
        for k, what in st.update(strand, float(t), p).events:
            if what == "raised":
                out.append(Raise(strand, types[k], float(t)))
    return out


def test_event_pipeline_hand_computed() -> None:
    """A 1 Hz stream of one strand over half a day with one sticker and one crack.

    sticker E1: onset 1000, critical 1090; p crosses 0.8 at t = 1040 -> caught, lead 50 s.
    crack E2: onset 20000, critical 20200; p reaches 0.75 only (warning) -> missed.
    false: sticker p 0.85 at 5000-5009 -> one false alarm; it dips to 0.77 (>= 0.8 - 0.05
    hysteresis: stays in alarm) and comes back: still one alarm. Then 0.5 at 5010 -> cleared;
    0.9 again at 5100 is within the 300 s repeat suppression -> not raised; at 9000 -> a
    second false alarm, during a tc_spike in progress.
    """
    types = ["sticker", "crack", "slag"]
    ts = np.arange(0, 43200, dtype=np.float64)
    p = np.zeros((len(ts), 3))
    p[1040:1060, 0] = 0.9
    p[1060:1100, 0] = 0.6
    p[20050:20100, 1] = 0.75
    p[5000:5010, 0] = 0.85
    p[5004, 0] = 0.77
    p[5010:5020, 0] = 0.5
    p[5100:5110, 0] = 0.9
    p[9000:9005, 0] = 0.95
    settings = alert_settings(0.8)
    raises = raises_from_scores("A", ts, p, types, settings)
    assert [(r.defect, r.ts) for r in raises] == [("sticker", 1040.0), ("sticker", 5000.0),
                                                  ("sticker", 9000.0)]
    assert raises == _naive("A", ts, p, types, settings)
    truth = [TruthEvent("E1", "A", "sticker", 1000, 1090),
             TruthEvent("E2", "A", "crack", 20000, 20200)]
    score = score_events(raises, truth, observed_until={"A": 43199.0}, strand_seconds=43200.0)
    nuisances = [TruthEvent("N1", "A", "tc_spike", 8999, 9001),
                 TruthEvent("N2", "A", "speed_change", 30000, 30060)]
    rep = event_report(score, nuisances)
    st, cr = rep["by_type"]["sticker"], rep["by_type"]["crack"]
    assert (st["caught"], st["missed"], st["detection_rate"]) == (1, 0, 1.0)
    assert st["lead_time_median_s"] == 50.0 and st["lead_time_p10_s"] == 50.0
    assert (cr["caught"], cr["missed"], cr["detection_rate"]) == (0, 1, 0.0)
    assert st["false_alarms"] == 2
    assert st["false_alarms_per_strand_day"] == pytest.approx(4.0)  # 2 in half a day
    assert rep["false_alarms_per_strand_day"] == pytest.approx(4.0)
    assert rep["false_alarms_by_nuisance"] == {"tc_spike": 1, "none": 1}


def test_lower_threshold_catches_the_crack() -> None:
    types = ["sticker", "crack", "slag"]
    ts = np.arange(0, 1000, dtype=np.float64)
    p = np.zeros((len(ts), 3))
    p[300:350, 1] = 0.75
    assert raises_from_scores("A", ts, p, types, alert_settings(0.8)) == []
    got = raises_from_scores("A", ts, p, types, alert_settings(0.7))
    assert got == [Raise("A", "crack", 300.0)]
    s = alert_settings(0.6)
    assert (s.watch, s.warning, s.alarm) == (0.5, 0.6, 0.6)


def test_skipping_quiet_readings_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    types = ["sticker", "crack", "slag"]
    ts = np.arange(20000, dtype=np.float64)
    # bursts of high scores on a quiet background, with values around every threshold
    p = rng.uniform(0, 0.45, (len(ts), 3))
    for start in rng.integers(0, len(ts) - 50, 120):
        p[start:start + rng.integers(1, 40), rng.integers(0, 3)] = rng.choice(
            [0.47, 0.52, 0.66, 0.72, 0.78, 0.81, 0.95])
    for delay in (0.0, 3.0):
        settings = alert_settings(0.8, repeat_suppression_s=30.0, on_delay_s=delay)
        fast = raises_from_scores("S", ts, p, types, settings)
        assert len(fast) > 10
        assert fast == _naive("S", ts, p, types, settings)
    # the on-delay removes the bursts too short to hold it, and delays the rest
    quick = raises_from_scores("S", ts, p, types, alert_settings(0.8, repeat_suppression_s=30.0))
    assert len(fast) < len(quick)


def test_false_alarm_kinds_latest_nuisance_and_tail() -> None:
    nz = [TruthEvent("N1", "A", "speed_change", 100, 160),
          TruthEvent("N2", "A", "tc_spike", 150, 152),
          TruthEvent("N3", "B", "near_sticker", 100, 130)]
    raises = [Raise("A", "sticker", 155),  # both in progress: latest onset (tc_spike)
              Raise("A", "sticker", 215),  # 55 s after speed_change ended: still counted
              Raise("A", "crack", 300),  # nothing
              Raise("B", "sticker", 120)]
    assert false_alarm_kinds(raises, nz) == {
        "sticker": {"tc_spike": 1, "speed_change": 1, "near_sticker": 1},
        "crack": {"none": 1}}


# -- seeds and decoding -------------------------------------------------------------------------


def test_training_seeds_from_metadata_forms() -> None:
    assert training_seeds({"data_seeds": [0, 3]}) == {0, 3}
    assert training_seeds({"data_seed": 4, "sim_seed": 5}) == {4, 5}
    assert training_seeds({"data": [{"name": "simulate", "seed": 7}, {"seed": None}]}) == {7}
    assert training_seeds({"data": {"seeds": [1, 2]}}) == {1, 2}
    assert training_seeds({"seed": 11, "epochs": 3}) == set()  # init seed, not a data seed


def test_seed_leak_refused() -> None:
    with pytest.raises(SeedLeakError, match="seed 3"):
        check_heldout_seed(3, {"data_seeds": [0, 3]})
    assert check_heldout_seed(9001, {"data_seeds": [0, 3]}) == []
    warnings = check_heldout_seed(9001, {})
    assert len(warnings) == 1 and "no training data seed" in warnings[0]


def test_exact_intervals_match_known_values_and_contain_the_estimate() -> None:
    from streamer.evaluation.intervals import poisson_rate_ci, proportion_ci

    lo, hi = poisson_rate_ci(0, 1.0)
    assert lo == 0.0 and hi == pytest.approx(3.6889, abs=1e-4)  # the "rule of 3.7"
    lo, hi = poisson_rate_ci(17, 8.0)  # Garwood: 9.903 .. 27.218 events
    assert (lo, hi) == pytest.approx((9.903 / 8, 27.218 / 8), abs=1e-3)
    assert poisson_rate_ci(3, 0.0) is None
    assert proportion_ci(3, 3) == pytest.approx((0.2924, 1.0), abs=1e-4)
    assert proportion_ci(0, 0) is None
    for k, n in ((0, 10), (137, 140), (150, 154)):
        lo, hi = proportion_ci(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
    # more exposure at the same rate: a narrower interval
    a, b = poisson_rate_ci(5, 8.0), poisson_rate_ci(50, 80.0)
    assert b[1] - b[0] < a[1] - a[0]


def test_event_score_reports_intervals() -> None:
    from streamer.evaluation.events import EventScore, TypeScore

    score = EventScore({"sticker": TypeScore(events=4, caught=3, missed=1, false_alarms=2)}, 2.0)
    d = score.as_dict()
    lo, hi = d["false_alarms_per_strand_day_ci95"]
    assert lo < d["false_alarms_per_strand_day"] == 1.0 < hi
    st = d["by_type"]["sticker"]
    assert st["detection_rate_ci95"][0] < 0.75 < st["detection_rate_ci95"][1]
    assert tuple(st["false_alarms_per_strand_day_ci95"]) == (lo, hi)  # one type: same count
