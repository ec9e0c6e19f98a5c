"""Levels with hysteresis, raised/cleared events, repeat and instability suppression."""

from __future__ import annotations

import numpy as np

from streamer.alarm.levels import ALARM, NORMAL, WARNING, WATCH, AlarmStates, unstable_reason
from streamer.channels import ChannelLayout
from streamer.config import AlertSettings

TYPES = ("sticker", "crack", "slag")


def p(s: float, c: float = 0.0, g: float = 0.0) -> np.ndarray:
    return np.array([s, c, g])


def test_levels_use_thresholds_and_hysteresis() -> None:
    a = AlarmStates(AlertSettings(), TYPES)
    seq = [(0.1, NORMAL), (0.5, WATCH), (0.47, WATCH), (0.44, NORMAL), (0.75, WARNING),
           (0.81, ALARM), (0.78, ALARM), (0.76, ALARM), (0.74, WARNING), (0.0, NORMAL)]
    for t, (prob, want) in enumerate(seq):
        assert a.update("s", float(t), p(prob)).levels[0] == want, (t, prob)


def test_raise_once_clear_and_suppress_repeats() -> None:
    a = AlarmStates(AlertSettings(repeat_suppression_s=300), TYPES)
    assert a.update("s", 0, p(0.9)).events == [(0, "raised")]
    assert a.update("s", 1, p(0.95)).events == []  # still in alarm: no second raise
    assert a.update("s", 2, p(0.72)).events == []  # warning: alarm still active
    assert a.update("s", 3, p(0.3)).events == [(0, "cleared")]
    d = a.update("s", 100, p(0.9))  # within 5 min of the raise
    assert d.events == [] and d.suppressed == ["repeat"]
    assert a.update("s", 101, p(0.2)).events == []  # a suppressed episode is not cleared
    assert a.update("s", 400, p(0.9)).events == [(0, "raised")]
    assert a.update("other", 400, p(0.0, 0.9)).events == [(1, "raised")]  # per strand, type


def test_on_delay_raises_only_after_the_probability_held() -> None:
    a = AlarmStates(AlertSettings(on_delay_s=3.0), TYPES)
    # 0.9 for 3 s (t = 0..2): held 2 s only -> warning, never an alarm
    for t in range(3):
        d = a.update("s", float(t), p(0.9))
        assert d.levels[0] == WARNING and d.events == [], t
    assert a.update("s", 3.0, p(0.7)).levels[0] == WARNING  # below alarm: the clock resets
    for t in (4, 5, 6):
        assert a.update("s", float(t), p(0.85)).events == []
    d = a.update("s", 7.0, p(0.81))  # held from t = 4 to 7: 3 s
    assert d.levels[0] == ALARM and d.events == [(0, "raised")]
    # once in alarm, hysteresis as before: 0.77 >= 0.8 - 0.05 keeps it
    assert a.update("s", 8.0, p(0.77)).levels[0] == ALARM
    # per type: the crack's clock is its own
    assert a.update("s", 8.0, p(0.77, 0.9)).levels[1] == WARNING
    # off by default: the first reading at the threshold raises
    b = AlarmStates(AlertSettings(), TYPES)
    assert b.update("s", 0.0, p(0.8)).events == [(0, "raised")]


def test_on_delay_per_type() -> None:
    """A type's own delay (alerts.on_delay_by_type): the sticker raises at once while the
    crack, on the same readings, waits its 2 s."""
    a = AlarmStates(AlertSettings(on_delay_by_type={TYPES[1]: 2.0}), TYPES)
    assert a.on_delay == [0.0, 2.0, 0.0]
    d = a.update("s", 0.0, p(0.9, 0.9))
    assert d.events == [(0, "raised")] and d.levels[1] == WARNING
    assert a.update("s", 1.0, p(0.9, 0.9)).events == []
    assert a.update("s", 2.0, p(0.9, 0.9)).events == [(1, "raised")]


def test_unstable_process_suppresses_sticker_only() -> None:
    a = AlarmStates(AlertSettings(suppress_unstable=True), TYPES)
    d = a.update("s", 0, p(0.9, 0.9), unstable="level_swing")
    assert d.suppressed == ["unstable:level_swing"] and d.events == [(1, "raised")]


def test_unstable_rules() -> None:
    ch = ChannelLayout().channels
    cfg = AlertSettings()
    w = np.zeros((120, len(ch)), np.float32)
    w[:, 0] = 1.2
    assert unstable_reason(w, 120, ch, cfg) is None
    w2 = w.copy()
    w2[100:, 1] = 25.0  # level jumps 25 mm
    assert unstable_reason(w2, 120, ch, cfg) == "level_swing"
    w3 = w.copy()
    w3[-1, 0] = 0.1
    assert unstable_reason(w3, 120, ch, cfg) == "speed_out_of_range"
    w4 = w.copy()
    w4[:90, 0] = 0.0  # cast started 30 s ago at 1.2 m/min: 0.6 m cast
    w4[90:, 0] = 1.2
    assert unstable_reason(w4, 120, ch, cfg) == "cast_start"
