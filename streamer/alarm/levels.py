"""Per-strand, per-defect-type alarm state.

Levels: normal < watch < warning < alarm from thresholds (defaults 0.5 / 0.7 / 0.8). A level
is entered when the probability reaches its threshold and left only when the probability
falls below ``threshold - hysteresis``, so a probability hovering at a threshold does not
flicker. The alarm threshold may differ per defect type (``alerts.alarm_by_type``, the
checkpoint's operating thresholds; :mod:`streamer.alarm.thresholds` resolves them); a type's
watch and warning are lowered to its alarm threshold when they are above it.

On-delay (ISA-18.2's alarm on-delay, per type; :mod:`streamer.alarm.thresholds` resolves it
from ``alerts.on_delay_by_type`` / ``alerts.on_delay_s``, else the checkpoint's, else 0):
the alarm level is entered only once the probability has stayed at or above the alarm
threshold for that many seconds of event time; until then the level is ``warning``. A
probability that touches the threshold for a second or two on a look-alike then raises no
alarm, at the cost of up to that many seconds of lead time on a real defect (0 = off).

Events: ``raised`` when a type's level reaches ``alarm``; ``cleared`` when it falls back to
watch or normal. A new crossing within ``repeat_suppression_s`` (event time) of the last
raise for that strand and type does not raise again; the alert lists ``repeat`` under
``suppressed``. While the process is unstable (opt-in), a sticker alarm is not raised and the
alert names the rule. Time is the readings' event time, so a replay behaves like the plant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamer.alarm.thresholds import ResolvedThresholds, resolve_thresholds
from streamer.config import AlertSettings
from streamer.formats.alert import LEVELS

NORMAL, WATCH, WARNING, ALARM = range(4)


@dataclass(slots=True)
class _TypeState:
    level: int = NORMAL
    active: bool = False  # an alarm was raised and not yet cleared
    last_raised_ts: float = -1e18
    suppressed_episode: bool = False  # this crossing was suppressed; don't clear it either
    above_since: float | None = None  # event time from which p has stayed >= the alarm threshold


@dataclass(slots=True)
class Decision:
    levels: list[int]
    events: list[tuple[int, str]]  # (type index, "raised" | "cleared")
    suppressed: list[str] = field(default_factory=list)
    changed: bool = False


class AlarmStates:
    def __init__(self, settings: AlertSettings, defect_types: tuple[str, ...] | list[str],
                 thresholds: ResolvedThresholds | None = None):
        """``thresholds``: the resolved per-type alarm thresholds (config > checkpoint >
        ``alerts.alarm``); None resolves from ``settings`` alone (no checkpoint), raising
        ThresholdError for an ``alerts.alarm_by_type`` key that is not one of ``defect_types``."""
        self.cfg = settings
        self.types = tuple(defect_types)
        self.resolved = thresholds or resolve_thresholds(settings, self.types)
        if self.resolved.defect_types != self.types:
            raise ValueError(f"thresholds are for {self.resolved.defect_types}, not {self.types}")
        per_type = self.resolved.levels(settings)
        # (watch, warning, alarm) per type, in output order
        self.thresholds: list[tuple[float, float, float]] = [
            per_type[t].as_tuple() for t in self.types]
        self._states: dict[str, list[_TypeState]] = {}
        self.on_delay: list[float] = [self.resolved.delay(t) for t in self.types]
        self._sticker = self.types.index("sticker") if "sticker" in self.types else -1

    def _level(self, k: int, st: _TypeState, ts: float, p: float) -> int:
        h = self.cfg.hysteresis
        th = self.thresholds[k]
        level = st.level
        while level < ALARM and p >= th[level]:  # th[level] enters level+1
            level += 1
        while level > NORMAL and p < th[level - 1] - h:
            level -= 1
        if p >= th[ALARM - 1]:
            if st.above_since is None:
                st.above_since = ts
            if level == ALARM and st.level < ALARM and ts - st.above_since < self.on_delay[k]:
                level = WARNING  # not held long enough yet: the operator sees a warning
        else:
            st.above_since = None
        return level

    def update(self, strand: str, ts: float, probs: np.ndarray,
               unstable: str | None = None) -> Decision:
        states = self._states.get(strand)
        if states is None:
            states = self._states[strand] = [_TypeState() for _ in self.types]
        d = Decision(levels=[], events=[])
        for k, st in enumerate(states):
            new = self._level(k, st, ts, float(probs[k]))
            if new != st.level:
                d.changed = True
            if new == ALARM and st.level < ALARM and not st.active and not st.suppressed_episode:
                if unstable is not None and k == self._sticker:
                    d.suppressed.append(f"unstable:{unstable}")
                    st.suppressed_episode = True
                elif ts - st.last_raised_ts < self.cfg.repeat_suppression_s:
                    d.suppressed.append("repeat")
                    st.suppressed_episode = True
                else:
                    st.active, st.last_raised_ts = True, ts
                    d.events.append((k, "raised"))
            elif new <= WATCH:
                if st.active:
                    st.active = False
                    d.events.append((k, "cleared"))
                st.suppressed_episode = False
            st.level = new
            d.levels.append(new)
        if d.events:
            d.changed = True
        return d

    def forget(self, strand: str) -> None:
        self._states.pop(strand, None)

    @staticmethod
    def level_name(level: int) -> str:
        return LEVELS[level]


def unstable_reason(window: np.ndarray, length: int, channels: tuple[str, ...] | list[str],
                    cfg: AlertSettings, hz: float = 1.0) -> str | None:
    """The plant rule that makes the process unstable in this window, or None (DOMAIN.md).

    Rules from practice (Ansari et al. 2022): cast length < 2 m since the strand started;
    mould level change > 20 mm within 60 s; speed outside [0.2, 10] m/min; speed changing by
    more than 7.2 m/min^2 within 60 s. Computed from the window alone, so restart-safe.
    """
    if "casting_speed" not in channels or "mould_level" not in channels:
        return None
    w = window[:length]
    speed = w[:, list(channels).index("casting_speed")]
    level = w[:, list(channels).index("mould_level")]
    last = max(1, int(60 * hz))
    s60, l60 = speed[-last:], level[-last:]
    if not (cfg.speed_min_m_min <= speed[-1] <= cfg.speed_max_m_min):
        return "speed_out_of_range"
    if float(l60.max() - l60.min()) > cfg.level_swing_mm:
        return "level_swing"
    if float(s60.max() - s60.min()) > 7.2 * (len(s60) / hz / 60.0):
        return "speed_change"
    stopped = np.nonzero(speed < cfg.speed_min_m_min)[0]
    if stopped.size:  # the strand (re)started inside this window
        cast_m = float(speed[stopped[-1] + 1:].sum()) / hz / 60.0
        if cast_m < cfg.min_cast_length_m:
            return "cast_start"
    return None
