"""The rule-system and gradient-boosted-tree baselines on hand-made signals."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.channels import ChannelLayout
from streamer.evaluation.gbt import GbtBaseline, feature_names, window_features
from streamer.evaluation.rolling import lag, rmax, rmean, rmin, rslope, rstd
from streamer.evaluation.rules import ALARM_AT, rule_scores

CH = list(ChannelLayout(3, 4).channels)  # 5 process tags + 3 x 4 TCs
TYPES = ("sticker", "crack", "slag")
N = 600


def tc(row: int, col: int) -> int:
    return CH.index(f"tc_r{row}_c{col}")


def quiet(seed: int = 0, noise: float = 0.2) -> np.ndarray:
    """Steady casting: rows 160/155/150 degC, a little sensor noise, level +-1 mm."""
    rng = np.random.default_rng(seed)
    v = np.zeros((N, len(CH)))
    v[:, 0], v[:, 2], v[:, 3], v[:, 4] = 1.2, 25.0, 3500.0, 7.0
    v[:, 1] = rng.normal(0, 0.5, N)
    for r, base in ((1, 160.0), (2, 155.0), (3, 150.0)):
        for c in range(1, 5):
            v[:, tc(r, c)] = base + rng.normal(0, noise, N)
    return v


def bump(t0: float, rise_s: float, amp: float, fall_tau: float) -> np.ndarray:
    t = np.arange(N, dtype=float)
    up = np.clip((t - t0) / rise_s, 0, 1) * amp
    down = np.where(t > t0 + rise_s, np.exp(-(t - t0 - rise_s) / fall_tau), 1.0)
    return up * down


def first_alarm(scores: np.ndarray, k: int) -> int | None:
    hit = np.flatnonzero(scores[:, k] >= ALARM_AT)
    return int(hit[0]) if len(hit) else None


def test_rule_fires_on_a_propagating_sticker_not_before() -> None:
    v = quiet()
    v[:, tc(1, 2)] += bump(300, 15, 12, 10)  # 0.8 degC/s rise at the upper TC
    v[:, tc(2, 2)] += bump(312, 15, 14, 10)  # the lower TC follows 12 s later, more
    s = rule_scores(v, CH, 1.0, TYPES)
    at = first_alarm(s, 0)
    assert at is not None and 312 <= at <= 330
    assert s[:300, 0].max() < ALARM_AT
    assert first_alarm(s, 1) is None and first_alarm(s, 2) is None


def test_rule_fires_on_inversion_without_a_lower_rise_rate() -> None:
    # lower TC creeps up slowly (0.1 degC/s) to above the upper one after an upper rise
    v = quiet()
    v[:, tc(1, 3)] += bump(300, 10, 5, 20)
    v[:, tc(2, 3)] += np.clip((np.arange(N) - 300) * 0.12, 0, 9)
    s = rule_scores(v, CH, 1.0, TYPES)
    at = first_alarm(s, 0)
    # inversion (lower >= upper + 1 degC): 155 + 0.12 (t - 300) >= 160 + 5 e^-(..)/20 + 1
    assert at is not None and 330 < at < 360


def test_single_tc_rise_without_propagation_is_not_a_sticker() -> None:
    v = quiet()
    v[:, tc(1, 2)] += bump(300, 15, 12, 10)
    assert first_alarm(rule_scores(v, CH, 1.0, TYPES), 0) is None


def test_uniform_warm_up_is_not_a_sticker_nor_a_crack() -> None:
    """A casting-speed increase warms every TC together (0.375 degC/s), then they cool."""
    v = quiet()
    warm = np.clip((np.arange(N) - 200) / 40, 0, 1) * 15 - np.clip((np.arange(N) - 400) / 30,
                                                                   0, 1) * 15
    for r in (1, 2, 3):
        for c in range(1, 5):
            v[:, tc(r, c)] += warm * (1.0 - 0.05 * r)
    s = rule_scores(v, CH, 1.0, TYPES)
    assert s[:, 0].max() < ALARM_AT and s[:, 1].max() < ALARM_AT
    # the same rise on one column only (upper then lower row) is a sticker
    v2 = quiet()
    v2[:, tc(1, 1)] += warm
    v2[:, tc(2, 1)] += lag(warm, 10) * 1.1
    assert first_alarm(rule_scores(v2, CH, 1.0, TYPES), 0) is not None


def test_single_spike_is_not_an_alarm() -> None:
    for r in (1, 2):
        v = quiet()
        v[300:302, tc(r, 2)] += 60.0
        s = rule_scores(v, CH, 1.0, TYPES)
        assert s[:, 0].max() < ALARM_AT and s[:, 1].max() < ALARM_AT, r


def test_crack_rule_8_degc_below_running_mean() -> None:
    v = quiet()
    drop = np.clip((np.arange(N) - 300) / 4, 0, 1) * 12.0
    v[:, tc(1, 3)] -= drop
    s = rule_scores(v, CH, 1.0, TYPES)
    at = first_alarm(s, 1)
    # 8 below the 65 s mean: once the drop passes ~8 + the part the mean already absorbed
    assert at is not None and 302 <= at <= 306
    assert s[:300, 1].max() < ALARM_AT
    # a 6 degC dip (near-crack) does not reach it
    v = quiet()
    v[:, tc(1, 3)] -= np.clip((np.arange(N) - 300) / 4, 0, 1) * 6.0
    assert first_alarm(rule_scores(v, CH, 1.0, TYPES), 1) is None


def test_level_rule_20_mm_within_60_s() -> None:
    t = np.arange(N)
    for pp, fires in ((30.0, True), (15.0, False)):
        v = quiet()
        v[:, 1] += np.where((t >= 300) & (t < 360), pp / 2 * np.sin(2 * np.pi * t / 20), 0)
        s = rule_scores(v, CH, 1.0, TYPES)
        assert (first_alarm(s, 2) is not None) == fires, pp
        assert s[:300, 2].max() < ALARM_AT
        if fires:
            assert 300 <= first_alarm(s, 2) <= 320


def test_rule_scores_are_causal_and_graded() -> None:
    v = quiet()
    v[:, tc(1, 2)] += bump(300, 15, 12, 10)
    v[:, tc(2, 2)] += bump(312, 15, 14, 10)
    s = rule_scores(v, CH, 1.0, TYPES)
    w = v.copy()
    w[400:] += 50.0 * np.random.default_rng(5).normal(size=w[400:].shape)
    np.testing.assert_array_equal(rule_scores(w, CH, 1.0, TYPES)[:400], s[:400])
    assert s.min() >= 0 and s.max() <= 1
    assert len(np.unique(s[:, 0])) > 20  # a grade, not only 0 / 1


def test_rolling_helpers_match_brute_force() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(100, 10, (40, 2))
    for w in (1, 3, 7):
        for i in range(40):
            seg = x[max(0, i - w + 1):i + 1]
            np.testing.assert_allclose(rmax(x, w)[i], seg.max(0))
            np.testing.assert_allclose(rmin(x, w)[i], seg.min(0))
            np.testing.assert_allclose(rmean(x, w)[i], seg.mean(0))
            np.testing.assert_allclose(rstd(x, w)[i], seg.std(0), atol=1e-6)
            if len(seg) >= 2 and w >= 2:
                np.testing.assert_allclose(rslope(x, w)[i],
                                           np.polyfit(np.arange(len(seg)), seg, 1)[0])
    assert lag(np.arange(5.0), 2).tolist() == [0, 0, 0, 1, 2]


def test_gbt_features_shape_finite_causal() -> None:
    v = quiet()
    v[:, tc(1, 2)] += bump(300, 15, 12, 10)
    x = window_features(v, CH, window=120)
    names = feature_names(CH)
    assert x.shape == (N, len(names)) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert len(set(names)) == len(names)
    i_last = names.index("tc_r1_c2:last")
    np.testing.assert_allclose(x[:, i_last], v[:, tc(1, 2)], rtol=1e-6)
    i_slope = names.index("casting_speed:slope30")
    assert abs(x[200, i_slope]) < 1e-5  # constant speed
    i_max = names.index("tc_r1_c2:max")
    assert x[330, i_max] == pytest.approx(v[211:331, tc(1, 2)].max(), rel=1e-6)
    w = v.copy()
    w[400:] += 30.0
    np.testing.assert_array_equal(window_features(w, CH, window=120)[:400], x[:400])


def test_gbt_learns_a_separable_signal() -> None:
    class S:  # minimal StrandSeries
        def __init__(self, values: np.ndarray, labels: np.ndarray):
            self.values, self.labels, self.ts = values, labels, np.arange(len(values), dtype=float)

        def __len__(self) -> int:
            return len(self.values)

    series = []
    for seed in range(4):
        v = quiet(seed)
        y = np.zeros((N, 3), dtype=np.uint8)
        t = np.arange(N)
        on = (t >= 200 + 50 * seed) & (t < 260 + 50 * seed)
        v[:, 1] += np.where(on, 15 * np.sin(2 * np.pi * t / 20), 0)
        y[on, 2] = 1
        y[100 + seed:130, 0] = 1  # some labels so that each type has both classes
        y[150 + seed:170, 1] = 1
        series.append(S(v, y))
    g = GbtBaseline(list(TYPES), CH, 120, params=dict(max_iter=30, random_state=0))
    g.fit(series[:3], min_fill=60, stride=2)
    p = g.predict_series(series[3].values, np.arange(59, N))
    assert p.shape == (N - 59, 3) and ((p >= 0) & (p <= 1)).all()
    y = series[3].labels[59:, 2].astype(bool)
    assert p[y, 2].mean() > 0.5 > p[~y, 2].mean()
    assert g.train_info["windows"] == 3 * len(range(59, N, 2))
    # a cap on the windows raises the stride: 3 x 541 available, at most 400 -> stride 5
    g.fit(series[:3], min_fill=60, stride=2, max_windows=400)
    assert g.train_info["stride"] == 5 and g.train_info["windows_available"] == 3 * 541
    assert g.train_info["windows"] == 3 * len(range(59, N, 5)) <= 400


def test_tree_fingerprint_survives_json_and_names_what_differs() -> None:
    import json

    import numpy as np

    from streamer.evaluation.gbt_training import fingerprint_differences, training_fingerprint
    from streamer.json_file import json_default

    info = {"windows": np.int64(300), "stride": 3, "windows_available": 900, "features": 204,
            "positives": {"sticker": 12}, "params": {"max_iter": 200},
            "source": {"simulate": True, "seed": 11}, "fit_s": 1.5}
    stored = json.loads(json.dumps(training_fingerprint(info), default=json_default))
    assert "fit_s" not in stored  # timings are not part of which trees these are
    assert fingerprint_differences(stored, info) == []
    assert fingerprint_differences(stored, {**info, "stride": 2, "windows": 450}) == [
        "stride", "windows"]
    assert fingerprint_differences(None, info) == sorted(stored)
