"""`streamer evaluate`: the model and two baselines on the same held-out heats.

:func:`evaluate_heats` scores every window (hop 1, from ``min_fill`` readings, inside one
strand's series) with each system, then

- window level: ROC-AUC and average precision per defect type and for "any defect"
  (:mod:`streamer.evaluation.window_metrics`);
- event level: the per-reading scores go, strand by strand in time order, through the
  daemon's :class:`~streamer.alarm.levels.AlarmStates`; the raised alarms are scored by
  :func:`streamer.evaluation.events.score_events` against ``events.parquet`` and false
  alarms are broken down by the hard negative in progress (``nuisances.parquet``).

docs/evaluation.md defines every number.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulators.heatfile import HeatSet
from streamer.alarm.thresholds import (
    ResolvedThresholds,
    describe_delays,
    on_delay_of,
    resolve_thresholds,
)
from streamer.config import AlertSettings
from streamer.evaluation.alarms import event_report, raises_from_scores, uniform_settings
from streamer.evaluation.data import StrandSeries, load_series, truth_events
from streamer.evaluation.events import Raise, score_events
from streamer.evaluation.window_metrics import window_metrics

SYSTEMS = ("model", "rules", "gbt")
SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)  # alarm thresholds of the operating-point sweep
LABELS = {"model": "model (LSTM)", "rules": "rule system", "gbt": "gradient-boosted trees"}


@dataclass
class SystemResult:
    name: str
    scores: list[np.ndarray] = field(default_factory=list)  # per strand [n_windows, K]
    raises: list[Raise] = field(default_factory=list)
    lead_times: dict[str, list[float]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Evaluation:
    defect_types: list[str]
    series: list[StrandSeries]
    ends: list[np.ndarray]  # per strand: end step of every evaluated window
    systems: dict[str, SystemResult]
    counts: dict[str, Any]
    truth: list[Any]
    hz: float

    def labels(self) -> np.ndarray:
        return np.concatenate([s.labels[e] for s, e in zip(self.series, self.ends)])

    def scores(self, system: str) -> np.ndarray:
        return np.concatenate(self.systems[system].scores)


def model_scores(loaded: Any, series: Sequence[StrandSeries], min_fill: int, batch: int = 512,
                 progress: bool = True) -> list[np.ndarray]:
    """Model probabilities of every window (hop 1) of every strand, via the daemon's engine."""
    from tqdm import tqdm

    from streamer.infer.engine import InferenceEngine
    from streamer.training.windows import Segment, iter_strand_windows

    engine = InferenceEngine(loaded.model, device="cpu")
    window = loaded.window
    total = sum(max(0, len(s) - min_fill + 1) for s in series)
    out = []
    with tqdm(total=total, desc="model", unit="win", unit_scale=True, disable=not progress,
              mininterval=1.0) as bar:
        for s in series:
            seg = Segment(s.strand, np.zeros(len(s), dtype=object), s.ts, s.values, s.labels)
            parts = []
            for _, x, lengths in iter_strand_windows(seg, window, min_fill, batch):
                parts.append(engine.run(x, lengths).probs)
                bar.update(len(x))
            k = len(loaded.defect_types)
            out.append(np.concatenate(parts).astype(np.float32) if parts
                       else np.zeros((0, k), np.float32))
    return out


def rules_scores(series: Sequence[StrandSeries], ends: Sequence[np.ndarray],
                 channels: Sequence[str], hz: float, defect_types: Sequence[str],
                 progress: bool = False) -> list[np.ndarray]:
    """Rule-system scores of the windows ending at ``ends`` of every strand."""
    from tqdm import tqdm

    from streamer.evaluation.rules import RuleSettings, rule_scores

    rs = RuleSettings()
    return [rule_scores(s.values, channels, hz, defect_types, rs)[e]
            for s, e in zip(tqdm(series, desc="rules", unit="strand", disable=not progress),
                            ends)]


def gbt_scores(gbt: Any, series: Sequence[StrandSeries], ends: Sequence[np.ndarray],
               progress: bool = False) -> list[np.ndarray]:
    """Boosted-tree probabilities of the windows ending at ``ends`` of every strand."""
    from tqdm import tqdm

    return [gbt.predict_series(s.values, e)
            for s, e in zip(tqdm(series, desc="gbt", unit="strand", disable=not progress), ends)]


def _score(ev: Evaluation, res: SystemResult, settings: AlertSettings,
           thresholds: ResolvedThresholds | None = None) -> tuple[list[Raise], Any]:
    raises: list[Raise] = []
    for s, e, sc in zip(ev.series, ev.ends, res.scores):
        raises += raises_from_scores(s.strand, s.ts[e], sc, ev.defect_types, settings,
                                     thresholds=thresholds)
    observed = {s.strand: float(s.ts[-1]) for s in ev.series if len(s)}
    score = score_events(raises, ev.truth, observed_until=observed,
                         strand_seconds=ev.counts["strand_seconds"],
                         defect_types=ev.defect_types)
    return raises, score


def sweep_points(ev: Evaluation, res: SystemResult, thresholds: Sequence[float],
                 base: AlertSettings | None = None) -> list[dict[str, Any]]:
    """Per-type event numbers with one alarm threshold for every type, for each threshold.

    Types do not interact in the alarm logic or the matching, so a type's numbers at a
    per-type threshold map equal its numbers here at that type's threshold."""
    base = base or AlertSettings()
    points = []
    for th in sorted(set(thresholds)):
        settings = uniform_settings(base, th)
        _, sc = _score(ev, res, settings, resolve_thresholds(settings, ev.defect_types,
                                                             override=th))
        d = sc.as_dict()
        points.append({"threshold": th,
                       "false_alarms_per_strand_day": d["false_alarms_per_strand_day"],
                       "by_type": {t: {k: v[k] for k in (
                           "caught", "missed", "detection_rate", "false_alarms",
                           "false_alarms_per_strand_day", "mistyped", "lead_time_median_s",
                           "lead_time_p10_s")} for t, v in d["by_type"].items()}})
    return points


def _event_level(ev: Evaluation, res: SystemResult, threshold: float, nuisances: list[Any],
                 sweep: Sequence[float] = SWEEP, base: AlertSettings | None = None,
                 thresholds: ResolvedThresholds | None = None) -> None:
    """Event numbers at ``thresholds`` (per type; None = ``threshold`` for every type), then
    the sweep (which also holds ``threshold`` and every per-type value)."""
    base = base or AlertSettings()
    settings = uniform_settings(base, threshold)
    if thresholds is None:
        thresholds = resolve_thresholds(settings, ev.defect_types, override=threshold)
    res.raises, score = _score(ev, res, settings, thresholds)
    res.lead_times = {t: sorted(v.lead_times_s) for t, v in score.by_type.items()}
    res.report["events"] = event_report(score, nuisances)
    res.report["events"]["raised_alarms"] = len(res.raises)
    res.report["alarm_thresholds"] = thresholds.as_dict()
    res.report["operating_points"] = sweep_points(  # at the operating point's on-delay
        ev, res, set(sweep) | {threshold} | set(thresholds.alarm.values()),
        base.model_copy(update={"on_delay_s": None,
                                "on_delay_by_type": dict(thresholds.on_delay)}))


def evaluate_heats(heldout: HeatSet, *, defect_types: Sequence[str], channels: Sequence[str],
                   window: int, loaded: Any | None = None, gbt: Any | None = None,
                   rules: bool = True, threshold: float = 0.8, min_fill: int = 60,
                   batch: int = 512, progress: bool = True,
                   model_thresholds: ResolvedThresholds | None = None,
                   alerts: AlertSettings | None = None,
                   sweep: Sequence[float] = SWEEP,
                   baseline_thresholds: Mapping[str, ResolvedThresholds] | None = None
                   ) -> Evaluation:
    """Score the held-out heats with each requested system (gbt: a fitted GbtBaseline).

    Alarms of the model use ``model_thresholds`` (per type, as the daemon resolves them;
    None = ``threshold`` for every type). A baseline's scores are not the model's
    probabilities: it uses its own per-type thresholds from ``baseline_thresholds[name]``
    (chosen for it on development heats), else ``threshold`` for every type. ``alerts``: the
    other alert settings (hysteresis, repeat suppression, watch, warning); None = the
    daemon's defaults."""
    from streamer.evaluation.rules import RuleSettings

    defect_types = list(defect_types)
    hz = float(heldout.manifest.get("hz") or 1.0)
    series, decode = load_series(heldout, channels, defect_types)
    if min_fill < 1 or min_fill > window:
        raise ValueError(f"min_fill must be in [1, window={window}], got {min_fill}")
    ends = [np.arange(min_fill - 1, len(s)) for s in series]
    n_windows = int(sum(len(e) for e in ends))
    if n_windows == 0:
        raise ValueError(f"no strand has {min_fill} readings: nothing to evaluate")
    strands = {s.strand for s in series}
    truth = [e for e in truth_events(heldout.events)
             if e.strand in strands and e.type in defect_types]
    nuisances = [n for n in truth_events(heldout.nuisances) if n.strand in strands]
    counts: dict[str, Any] = {
        "strands": len(series), "readings": int(sum(len(s) for s in series)),
        "windows": n_windows, "strand_seconds": n_windows / hz,
        "strand_days": n_windows / hz / 86400.0, **decode,
        "events": {t: sum(e.type == t for e in truth) for t in defect_types},
        "nuisances": {k: sum(n.type == k for n in nuisances)
                      for k in sorted({n.type for n in nuisances})},
    }
    ev = Evaluation(defect_types, series, ends, {}, counts, truth, hz)
    labels = ev.labels()
    counts["positive_windows"] = {t: int(labels[:, k].sum()) for k, t in enumerate(defect_types)}
    counts["positive_windows"]["any"] = int(labels.max(1).sum())

    if loaded is not None:
        t0 = time.perf_counter()
        ev.systems["model"] = SystemResult("model", model_scores(loaded, series, min_fill,
                                                                 batch, progress))
        ev.systems["model"].seconds = time.perf_counter() - t0
    if rules:
        t0 = time.perf_counter()
        res = SystemResult("rules", rules_scores(series, ends, channels, hz, defect_types,
                                                 progress))
        res.seconds = time.perf_counter() - t0
        res.report["settings"] = RuleSettings().__dict__.copy()
        ev.systems["rules"] = res
    if gbt is not None:
        t0 = time.perf_counter()
        res = SystemResult("gbt", gbt_scores(gbt, series, ends, progress))
        res.seconds = time.perf_counter() - t0
        res.report["train"] = gbt.train_info
        ev.systems["gbt"] = res

    base = alerts or AlertSettings()
    settings = uniform_settings(base, threshold)
    for name, res in ev.systems.items():
        res.report["window"] = window_metrics(labels, ev.scores(name), defect_types)
        t0 = time.perf_counter()
        own = model_thresholds if name == "model" else (baseline_thresholds or {}).get(name)
        _event_level(ev, res, threshold, nuisances, sweep, base, own)
        res.report["score_s"] = round(res.seconds, 2)
        res.report["alarm_s"] = round(time.perf_counter() - t0, 2)
    counts["alert_settings"] = settings.model_dump(mode="json")
    return ev


def _f(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_table(report: dict[str, Any]) -> str:
    """A concise text table of the headline numbers of every system."""
    types = report["defect_types"]
    lines = [f"{'system':<24}{'type':<9}{'ROC-AUC':>8}{'PR-AUC':>8}{'detected':>10}"
             f"{'FA/str-day':>11}{'lead med':>9}{'lead p10':>9}{'mistyped':>9}{'late':>6}"]
    for name, sysrep in report["systems"].items():
        w, e = sysrep["window"], sysrep["events"]
        for t in [*types, "any"]:
            wt = w[t]
            if t == "any":
                det = "-"
                fa = e["false_alarms_per_strand_day"]
                lm = lp = mis = late = None
            else:
                bt = e["by_type"][t]
                judged = bt["caught"] + bt["missed"]
                det = f"{bt['caught']}/{judged}"
                fa, lm, lp = (bt["false_alarms_per_strand_day"], bt["lead_time_median_s"],
                              bt["lead_time_p10_s"])
                mis, late = bt["mistyped"], bt["late"]
            lines.append(f"{LABELS.get(name, name):<24}{t:<9}{_f(wt['roc_auc']):>8}"
                         f"{_f(wt['average_precision']):>8}{det:>10}{_f(fa, '.2f'):>11}"
                         f"{_f(lm, '.0f'):>9}{_f(lp, '.0f'):>9}{_f(mis, 'd'):>9}"
                         f"{_f(late, 'd'):>6}")
    c = report["counts"]
    lines.append(f"{c['strands']} strands, {c['strand_days']:.2f} strand-days, "
                 f"{c['windows']:,} windows; events "
                 + ", ".join(f"{t} {n}" for t, n in c["events"].items())
                 + f"; alarm threshold {_thresholds_line(report)}")
    lines += _interval_lines(report)
    return "\n".join(lines)


def _interval_lines(report: dict[str, Any]) -> list[str]:
    """Per system: false alarms per strand-day and each type's detection rate with their
    exact 95 % intervals (:mod:`streamer.evaluation.intervals`); none for older reports."""
    out = []
    for name, sysrep in report["systems"].items():
        e = sysrep["events"]
        fa_ci = e.get("false_alarms_per_strand_day_ci95")
        if fa_ci is None:
            continue
        parts = [f"false alarms {e['false_alarms_per_strand_day']:.2f}/strand-day "
                 f"[{fa_ci[0]:.2f}, {fa_ci[1]:.2f}]"]
        for t, bt in e["by_type"].items():
            ci = bt.get("detection_rate_ci95")
            if ci is not None and bt["detection_rate"] is not None:
                parts.append(f"{t} {100 * bt['detection_rate']:.1f} % "
                             f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]")
        out.append(f"95 % CI, {LABELS.get(name, name)}: " + ", ".join(parts))
    return out


def _thresholds_line(report: dict[str, Any]) -> str:
    """``0.8``, followed by each system's per-type thresholds where they differ from it and
    its on-delay: ``0.8; model sticker 0.66 (checkpoint operating_thresholds), ..., on-delay
    3 s; gbt sticker 0.56 ...``."""
    settings = report["settings"]
    th = settings["threshold"]
    own = {"model": settings.get("model_alarm_thresholds"),
           **(settings.get("baseline_alarm_thresholds") or {})}
    parts = [f"{th}"]
    for name, rec in own.items():
        per = (rec or {}).get("alarm_by_type") or {}
        text = []
        if per and any(v != th for v in per.values()):
            text.append(", ".join(f"{t} {v:g} ({rec['source'][t]})" for t, v in per.items()))
        delays = on_delay_of(rec or {})
        if any(delays.values()):
            text.append(f"on-delay {describe_delays(delays)}")
        if text:
            parts.append(f"{name} " + ", ".join(text))
    return "; ".join(parts)
