"""Baseline 1: the classical thermocouple / level rule system, as a per-reading score.

The rules are the ones plants use (DOMAIN.md); docs/evaluation.md states them exactly.
Each rule is a conjunction/disjunction of conditions ``value >= limit``. Each condition
becomes a ratio ``q = value / limit`` (q >= 1 iff it holds); AND takes the minimum of the
ratios, OR the maximum, and the score is ``clip(0.8 * q, 0, 1)``. So the score reaches the
alarm threshold 0.8 exactly when the classical rule fires, and below that it grades how
close the rule came (which is what window ROC/PR need). Everything is causal: the score at
reading i uses readings up to i only.

Sticker (per column c and adjacent row pair r -> r + 1, max over all pairs):
  rise(tc, t)  = (T(t) - T(t - 5 s)) / 5 s minus the median of that rate over all TCs
                 (T = 3-reading moving average; the median removes mould-wide warming,
                 e.g. a casting-speed increase, which is not a sticker)
  upper        = rise(r, c) >= 0.3 degC/s at some time in the last 60 s
  propagation  = rise(r + 1, c) >= 0.3 degC/s at some time s in the last 30 s while the
                 upper TC rose >= 0.3 degC/s at some time in [s - 60 s, s - 2 s]
  inversion    = T(r + 1, c) - T(r, c) >= 1 degC (the lower TC hotter than the upper one)
  alarm        = upper AND (propagation OR inversion)
Crack: some TC reads >= 8 degC below its 65 s running mean (common-mode corrected: minus
  the median of that deviation over all TCs, so a mould-wide cooling is not a crack).
Slag:  mould level max - min over the last 60 s >= 20 mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamer.channels import parse_tc_name
from streamer.evaluation.rolling import lag, rmax, rmean, rmin

ALARM_AT = 0.8  # score of a rule that exactly fires


@dataclass(frozen=True)
class RuleSettings:
    rise_rate: float = 0.3  # degC/s  (DOMAIN.md: >= 0.3 degC/s over a 5 s window)
    rise_window_s: float = 5.0
    smooth_s: float = 3.0  # moving average before rates (sensor noise)
    persist_s: float = 5.0  # the rise must hold this many consecutive seconds
    upper_recent_s: float = 60.0  # upper rise counts this long
    lag_min_s: float = 2.0  # the lower TC follows the upper one at least this late ...
    lag_max_s: float = 60.0  # ... and at most this late (row pitch 115 mm at 0.12-3.5 m/min)
    propagation_recent_s: float = 30.0
    inversion_degc: float = 1.0
    crack_drop_degc: float = 8.0  # DOMAIN.md: >= 8 degC below the 65 s running mean
    crack_mean_s: float = 65.0
    level_swing_mm: float = 20.0  # DOMAIN.md: > 20 mm within 60 s
    level_window_s: float = 60.0


@dataclass
class TcGrid:
    """Column indices of the thermocouples: idx[r][c] (0-based row, col) into the channels."""

    idx: np.ndarray  # [rows, cols] int

    @classmethod
    def from_channels(cls, channels: Sequence[str]) -> "TcGrid":
        pos = {}
        for i, c in enumerate(channels):
            rc = parse_tc_name(c)
            if rc is not None:
                pos[rc] = i
        if not pos:
            raise ValueError("no thermocouple channels (tc_r{row}_c{col})")
        rows = max(r for r, _ in pos)
        cols = max(c for _, c in pos)
        missing = [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)
                   if (r, c) not in pos]
        if missing:
            raise ValueError(f"thermocouple grid incomplete, missing {missing[:5]}")
        idx = np.array([[pos[(r, c)] for c in range(1, cols + 1)] for r in range(1, rows + 1)])
        return cls(idx)

    @property
    def flat(self) -> np.ndarray:
        return self.idx.ravel()


def steps(seconds: float, hz: float) -> int:
    """Readings in ``seconds`` at ``hz`` (at least one)."""
    return max(1, int(round(seconds * hz)))


def tc_rise_rate(tc: np.ndarray, hz: float, s: RuleSettings = RuleSettings()
                 ) -> tuple[np.ndarray, np.ndarray]:
    """([N, rows, cols] 5 s rise rate (degC/s) of the smoothed TCs minus the mould-wide
    median, the smoothed TCs)."""
    sm = rmean(tc, steps(s.smooth_s, hz))
    k = steps(s.rise_window_s, hz)
    rate = (sm - lag(sm, k)) * (hz / k)
    med = np.median(rate.reshape(len(rate), -1), axis=1)
    return rate - med[:, None, None], sm


def tc_drop_below_mean(tc: np.ndarray, hz: float, s: RuleSettings = RuleSettings()
                       ) -> np.ndarray:
    """[N, rows, cols] degC below the 65 s running mean, minus the median over all TCs."""
    dev = tc - rmean(tc, steps(s.crack_mean_s, hz))
    med = np.median(dev.reshape(len(dev), -1), axis=1)
    return -(dev - med[:, None, None])


def level_swing(level: np.ndarray, hz: float, s: RuleSettings = RuleSettings()) -> np.ndarray:
    w = steps(s.level_window_s, hz)
    return rmax(level, w) - rmin(level, w)


def rule_scores(values: np.ndarray, channels: Sequence[str], hz: float = 1.0,
                defect_types: Sequence[str] = ("sticker", "crack", "slag"),
                settings: RuleSettings = RuleSettings()) -> np.ndarray:
    """[N, K] rule scores in [0, 1] for every reading of one strand (time order)."""
    s = settings
    v = np.asarray(values, dtype=np.float64)
    grid = TcGrid.from_channels(channels)
    tc = v[:, grid.idx]  # [N, rows, cols]
    out = np.zeros((len(v), len(defect_types)), dtype=np.float32)
    q: dict[str, np.ndarray] = {}

    rise, sm = tc_rise_rate(tc, hz, s)
    qr = rmin(rise / s.rise_rate, steps(s.persist_s, hz))  # >= 1: rises >= 0.3 degC/s, held
    upper = rmax(qr[:, :-1], steps(s.upper_recent_s, hz))  # [N, rows-1, cols]
    lo_k, hi_k = steps(s.lag_min_s, hz), steps(s.lag_max_s, hz)
    upper_lagged = lag(rmax(qr[:, :-1], hi_k - lo_k + 1), lo_k)  # max over [t-hi, t-lo]
    prop = rmax(np.minimum(qr[:, 1:], upper_lagged), steps(s.propagation_recent_s, hz))
    inv = (sm[:, 1:] - sm[:, :-1]) / s.inversion_degc
    pair = np.minimum(upper, np.maximum(prop, inv))
    q["sticker"] = pair.reshape(len(v), -1).max(1) if pair.size else np.zeros(len(v))

    q["crack"] = tc_drop_below_mean(tc, hz, s).reshape(len(v), -1).max(1) / s.crack_drop_degc

    if "mould_level" in channels:
        q["slag"] = level_swing(v[:, list(channels).index("mould_level")], hz, s) / s.level_swing_mm
    for k, t in enumerate(defect_types):
        if t in q:
            out[:, k] = np.clip(ALARM_AT * q[t], 0.0, 1.0)
    return out
