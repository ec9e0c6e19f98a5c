"""Event-level scoring: what operators judge an alarm system by.

Matching rules (the same for the model, the baselines and the demo):

- a ground-truth defect is **caught** when an alarm of its type is raised on its strand in
  [onset_ts - early_s, critical_ts]; its **lead time** is critical_ts minus the first such
  raise (for a sticker: seconds before the breakout);
- an event whose critical time has not been reached by the end of the data is **pending**,
  neither caught nor missed;
- a raise matching no defect of its type is a **false alarm** if it overlaps no defect of
  any type on that strand (window [onset - early_s, critical + late_s]); if it overlaps a
  defect of another type it is **mistyped** (counted apart: the operator was still right to
  look); a raise of the right type in (critical, critical + late_s] is **late**.
- false alarms are reported per strand-day of observed data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median

from streamer.evaluation.intervals import poisson_rate_ci, proportion_ci


@dataclass(frozen=True, slots=True)
class Raise:
    strand: str
    defect: str
    ts: float


@dataclass(frozen=True, slots=True)
class TruthEvent:
    event_id: str
    strand: str
    type: str
    onset_ts: float
    critical_ts: float


@dataclass
class TypeScore:
    events: int = 0
    caught: int = 0
    missed: int = 0
    pending: int = 0
    lead_times_s: list[float] = field(default_factory=list)
    false_alarms: int = 0
    mistyped: int = 0
    late: int = 0

    @property
    def detection_rate(self) -> float | None:
        judged = self.caught + self.missed
        return self.caught / judged if judged else None

    def as_dict(self, strand_days: float) -> dict[str, object]:
        lt = sorted(self.lead_times_s)
        return {
            "events": self.events, "caught": self.caught, "missed": self.missed,
            "pending": self.pending, "detection_rate": self.detection_rate,
            "lead_time_median_s": median(lt) if lt else None,
            "lead_time_p10_s": percentile(lt, 10) if lt else None,
            "false_alarms": self.false_alarms, "mistyped": self.mistyped, "late": self.late,
            "false_alarms_per_strand_day": self.false_alarms / strand_days if strand_days else None,
            "detection_rate_ci95": proportion_ci(self.caught, self.caught + self.missed),
            "false_alarms_per_strand_day_ci95": poisson_rate_ci(self.false_alarms, strand_days),
        }


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    a, b = sorted_values[lo], sorted_values[hi]
    if a == b or pos == lo:  # also keeps inf (an alert that never came) from turning NaN
        return a
    return a + (b - a) * (pos - lo)


@dataclass
class EventScore:
    by_type: dict[str, TypeScore]
    strand_days: float
    caught_ids: set[str] = field(default_factory=set)
    false_alarm_raises: list[Raise] = field(default_factory=list)  # the raises counted false

    @property
    def false_alarms(self) -> int:
        return sum(t.false_alarms for t in self.by_type.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "strand_days": self.strand_days,
            "false_alarms": self.false_alarms,
            "false_alarms_per_strand_day": (self.false_alarms / self.strand_days
                                            if self.strand_days else None),
            "false_alarms_per_strand_day_ci95": poisson_rate_ci(self.false_alarms,
                                                                self.strand_days),
            "by_type": {k: v.as_dict(self.strand_days) for k, v in self.by_type.items()},
        }


def score_events(raises: Iterable[Raise], events: Iterable[TruthEvent], *,
                 observed_until: Mapping[str, float], strand_seconds: float,
                 defect_types: Iterable[str] = ("sticker", "crack", "slag"),
                 early_s: float = 0.0, late_s: float = 60.0) -> EventScore:
    """Score raises against ground truth. ``observed_until``: last reading ts per strand."""
    by_type = {t: TypeScore() for t in defect_types}
    events = list(events)
    raises = sorted(raises, key=lambda r: r.ts)
    by_strand: dict[str, list[TruthEvent]] = {}
    for e in events:
        by_strand.setdefault(e.strand, []).append(e)
    score = EventScore(by_type, strand_seconds / 86400.0)
    for e in events:
        ts = by_type.setdefault(e.type, TypeScore())
        ts.events += 1
        hits = [r.ts for r in raises if r.strand == e.strand and r.defect == e.type
                and e.onset_ts - early_s <= r.ts <= e.critical_ts]
        if hits:
            ts.caught += 1
            ts.lead_times_s.append(e.critical_ts - hits[0])
            score.caught_ids.add(e.event_id)
        elif e.critical_ts > observed_until.get(e.strand, float("-inf")):
            ts.pending += 1
        else:
            ts.missed += 1
    for r in raises:
        ts = by_type.setdefault(r.defect, TypeScore())
        near = [e for e in by_strand.get(r.strand, [])
                if e.onset_ts - early_s <= r.ts <= e.critical_ts + late_s]
        same = [e for e in near if e.type == r.defect]
        if any(r.ts <= e.critical_ts for e in same):
            continue  # a hit (the first one counted above; repeats are not false alarms)
        if same:
            ts.late += 1
        elif near:
            ts.mistyped += 1
        else:
            ts.false_alarms += 1
            score.false_alarm_raises.append(r)
    return score
