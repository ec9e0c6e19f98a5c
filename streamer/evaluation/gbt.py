"""Baseline 2: gradient-boosted trees on window summary features, one classifier per type.

Features of the window of the last ``window`` readings ending at reading i (fewer at the
start of a series, as for the model), computed for every reading of a strand at once with
causal rolling statistics (:mod:`streamer.evaluation.rolling`):

- per channel (all 29 by default): last value, mean, std, min, max, least-squares slope
  over the last 10 s and 30 s, last minus mean (8 per channel);
- thermocouple grid (:data:`GRID_FEATURES`): the rule-system quantities (5 s rise rate
  minus the mould-wide median, held rises, lower-minus-upper row differences, drop below
  the 65 s running mean, mould level swing) summarised over TCs and time, and the
  mould-wide median TC rate (which moves with casting speed).

Trained on a separate heat set (a seed different from the held-out one), every
``stride``-th window, natural class balance (so that probabilities mean what the alarm
thresholds assume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamer.evaluation.rolling import lag, rmax, rmean, rmin, rslope, rstd
from streamer.evaluation.rules import (
    RuleSettings,
    TcGrid,
    level_swing,
    rule_scores,
    tc_drop_below_mean,
    tc_rise_rate,
)

CHANNEL_STATS = ("last", "mean", "std", "min", "max", "slope10", "slope30", "last_minus_mean")
GRID_FEATURES = (
    "tc_rise_max", "tc_rise_max_30s", "tc_rise_held5_max", "tc_rise_held5_max_60s",
    "tc_rise_count_ge_0.3", "tc_common_rate", "tc_common_rate_min_60s",
    "row_inversion_max", "row_inversion_max_minus_window_mean", "row_inversion_max_60s",
    "tc_drop_max", "tc_drop_max_120s", "tc_drop_count_ge_5", "tc_drop_column_rows_ge_5_120s",
    "level_swing_60s", "level_swing_30s", "speed_change_60s",
    "rule_sticker", "rule_crack", "rule_slag",
)


def feature_names(channels: Sequence[str]) -> list[str]:
    return [f"{c}:{s}" for c in channels for s in CHANNEL_STATS] + list(GRID_FEATURES)


def window_features(values: np.ndarray, channels: Sequence[str], window: int,
                    hz: float = 1.0) -> np.ndarray:
    """[N, D] float32 features of the window ending at every reading of one strand."""
    v = np.asarray(values, dtype=np.float64)
    n, f = v.shape
    s10, s30 = max(2, int(round(10 * hz))), max(2, int(round(30 * hz)))
    mean = rmean(v, window)
    per = np.stack([v, mean, rstd(v, window), rmin(v, window), rmax(v, window),
                    rslope(v, s10, hz), rslope(v, s30, hz), v - mean], axis=2)  # [N, F, 8]
    cols = [per.reshape(n, f * len(CHANNEL_STATS))]

    rs = RuleSettings()
    grid = TcGrid.from_channels(channels)
    tc = v[:, grid.idx]
    k5 = max(1, int(round(5 * hz)))
    rise, sm = tc_rise_rate(tc, hz, rs)
    flat_rise = rise.reshape(n, -1)
    held = rmin(rise, k5).reshape(n, -1).max(1)
    sm_rate = (sm - lag(sm, k5)) * (hz / k5)
    common = np.median(sm_rate.reshape(n, -1), axis=1)
    inv = (sm[:, 1:] - sm[:, :-1]).reshape(n, -1)
    inv_rel = (inv - rmean(inv, window)).max(1)
    drop = tc_drop_below_mean(tc, hz, rs)  # [N, rows, cols]
    w120 = max(1, int(round(120 * hz)))
    col_rows = (rmax(drop, w120) >= 5.0).sum(1).max(1)  # rows of a column that dropped >= 5
    flat_drop = drop.reshape(n, -1)
    if "mould_level" in channels:
        level = v[:, list(channels).index("mould_level")]
        sw60, sw30 = level_swing(level, hz, rs), rmax(level, s30) - rmin(level, s30)
    else:
        sw60 = sw30 = np.zeros(n)
    if "casting_speed" in channels:
        speed = v[:, list(channels).index("casting_speed")]
        dspeed = speed - lag(speed, int(round(60 * hz)))
    else:
        dspeed = np.zeros(n)
    rule = rule_scores(values, channels, hz, ("sticker", "crack", "slag"), rs)
    w60 = max(1, int(round(60 * hz)))
    grid_cols = [
        flat_rise.max(1), rmax(flat_rise.max(1), s30), held, rmax(held, w60),
        (flat_rise >= 0.3).sum(1), common, rmin(common, w60),
        inv.max(1), inv_rel, rmax(inv.max(1), w60),
        flat_drop.max(1), rmax(flat_drop.max(1), w120), (flat_drop >= 5.0).sum(1), col_rows,
        sw60, sw30, dspeed,
        rule[:, 0], rule[:, 1], rule[:, 2],
    ]
    cols.append(np.stack(grid_cols, axis=1))
    x = np.concatenate(cols, axis=1).astype(np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class GbtBaseline:
    """One HistGradientBoostingClassifier per defect type."""

    defect_types: list[str]
    channels: list[str]
    window: int
    hz: float = 1.0
    threads: int | None = 1  # OpenMP threads of the trees (None: the library default)
    params: dict[str, Any] = field(default_factory=lambda: dict(
        max_iter=200, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=40,
        l2_regularization=1.0, early_stopping=False, random_state=0))
    models: list[Any] = field(default_factory=list)
    train_info: dict[str, Any] = field(default_factory=dict)

    def fit(self, series: Sequence[Any], min_fill: int, stride: int = 2,
            progress: bool = False, max_windows: int | None = None) -> "GbtBaseline":
        """Fit on every ``stride``-th window (a larger stride if that would exceed
        ``max_windows``)."""
        import math
        import time

        from sklearn.ensemble import HistGradientBoostingClassifier
        from tqdm import tqdm

        t0 = time.perf_counter()
        available = sum(max(0, len(s) - min_fill + 1) for s in series)
        if max_windows:
            stride = max(stride, math.ceil(available / max_windows))
        xs, ys = [], []
        for s in tqdm(series, desc="gbt features (train)", unit="strand", disable=not progress):
            ends = np.arange(min_fill - 1, len(s), stride)
            if not len(ends):
                continue
            xs.append(window_features(s.values, self.channels, self.window, self.hz)[ends])
            ys.append(s.labels[ends])
        if not xs:
            raise ValueError("GBT training set holds no windows")
        x, y = np.concatenate(xs), np.concatenate(ys)
        t1 = time.perf_counter()
        self.models = []
        for k, t in enumerate(tqdm(self.defect_types, desc="gbt fit", unit="type",
                                   disable=not progress)):
            if y[:, k].min() == y[:, k].max():
                raise ValueError(f"GBT training set has only one class for {t}")
            m = HistGradientBoostingClassifier(**self.params)
            with self._limit():
                m.fit(x, y[:, k])
            self.models.append(m)
        self.train_info = {
            "windows": int(len(x)), "stride": stride, "windows_available": int(available),
            "features": int(x.shape[1]),
            "positives": {t: int(y[:, k].sum()) for k, t in enumerate(self.defect_types)},
            "feature_s": round(t1 - t0, 2), "fit_s": round(time.perf_counter() - t1, 2),
            "params": self.params,
        }
        return self

    def predict_series(self, values: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """[len(ends), K] probabilities of the windows ending at ``ends`` of one strand."""
        x = window_features(values, self.channels, self.window, self.hz)[ends]
        with self._limit():
            p = [m.predict_proba(x)[:, 1] for m in self.models]
        return np.stack(p, axis=1).astype(np.float32)

    def _limit(self) -> Any:
        """Limit OpenMP threads (on a busy 2-core machine, 2 threads fit 9-60x slower).

        Only libraries already loaded are limited, hence after scikit-learn's import."""
        import contextlib

        if not self.threads:
            return contextlib.nullcontext()
        import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime first)
        from threadpoolctl import threadpool_limits

        return threadpool_limits(self.threads)
