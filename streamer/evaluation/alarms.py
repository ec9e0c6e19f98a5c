"""Per-reading scores -> raised alarms, through the daemon's own alarm logic.

:func:`raises_from_scores` feeds one strand's scores, reading by reading in time order,
to :class:`streamer.alarm.levels.AlarmStates` (thresholds, per type where they differ,
hysteresis, repeat suppression exactly as the daemon applies them) and collects every
``raised`` event. Readings where every type is below its watch threshold and every level is
``normal`` cannot change the state, so they are skipped; the result is identical to calling
``update`` on every reading (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from streamer.alarm.levels import AlarmStates
from streamer.alarm.thresholds import ResolvedThresholds
from streamer.config import AlertSettings
from streamer.evaluation.events import EventScore, Raise, TruthEvent


def alert_settings(threshold: float = 0.8, **overrides: Any) -> AlertSettings:
    """The daemon's default alert settings with the alarm threshold at ``threshold``
    (watch / warning lowered to it when they are above it)."""
    return uniform_settings(AlertSettings(**overrides), threshold)


def uniform_settings(base: AlertSettings, threshold: float) -> AlertSettings:
    """``base`` with one alarm threshold for every type (no ``alarm_by_type``); watch and
    warning lowered to it when they are above it, as the daemon does per type."""
    return AlertSettings(**{**base.model_dump(), "alarm": threshold, "alarm_by_type": {},
                            "warning": min(base.warning, threshold),
                            "watch": min(base.watch, threshold)})


def raises_from_scores(strand: str, ts: np.ndarray, scores: np.ndarray,
                       defect_types: Sequence[str], settings: AlertSettings,
                       states: AlarmStates | None = None,
                       thresholds: ResolvedThresholds | None = None) -> list[Raise]:
    """Raised alarms of one strand; ``thresholds``: per-type alarm thresholds (None: from
    ``settings`` alone, as :class:`AlarmStates` resolves them)."""
    states = states or AlarmStates(settings, list(defect_types), thresholds)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(ts)
    if n == 0:
        return []
    watch = np.array([th[0] for th in states.thresholds])  # per type, clamped to its alarm
    hot = np.flatnonzero((scores >= watch).any(1))
    out: list[Raise] = []
    pos = 0  # index into hot
    i = int(hot[0]) if len(hot) else n
    while i < n:
        d = states.update(strand, float(ts[i]), scores[i])
        for k, what in d.events:
            if what == "raised":
                out.append(Raise(strand, defect_types[k], float(ts[i])))
        if any(d.levels):
            i += 1
        else:
            pos = int(np.searchsorted(hot, i, side="right"))
            i = int(hot[pos]) if pos < len(hot) else n
    return out


def false_alarm_kinds(false_raises: Iterable[Raise], nuisances: Iterable[TruthEvent],
                      after_s: float = 60.0) -> dict[str, dict[str, int]]:
    """Per defect type: false alarms counted by the hard-negative kind in progress.

    A nuisance is in progress at t if onset_ts <= t <= critical_ts + after_s (its signal
    may linger a little after its end); with several, the one with the latest onset wins;
    with none, the kind is "none"."""
    by_strand: dict[str, list[TruthEvent]] = {}
    for nz in nuisances:
        by_strand.setdefault(nz.strand, []).append(nz)
    out: dict[str, dict[str, int]] = {}
    for r in false_raises:
        cands = [nz for nz in by_strand.get(r.strand, [])
                 if nz.onset_ts <= r.ts <= nz.critical_ts + after_s]
        kind = max(cands, key=lambda nz: nz.onset_ts).type if cands else "none"
        d = out.setdefault(r.defect, {})
        d[kind] = d.get(kind, 0) + 1
    return out


def event_report(score: EventScore, nuisances: Sequence[TruthEvent]) -> dict[str, Any]:
    d = score.as_dict()
    kinds = false_alarm_kinds(score.false_alarm_raises, nuisances)
    total: dict[str, int] = {}
    for per in kinds.values():
        for k, c in per.items():
            total[k] = total.get(k, 0) + c
    d["false_alarms_by_nuisance"] = dict(sorted(total.items(), key=lambda kv: -kv[1]))
    for t, per in kinds.items():
        if t in d["by_type"]:
            d["by_type"][t]["false_alarms_by_nuisance"] = dict(
                sorted(per.items(), key=lambda kv: -kv[1]))
    return d
