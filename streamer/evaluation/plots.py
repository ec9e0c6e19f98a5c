"""PNG figures of an evaluation (matplotlib, Agg backend; imported only when plotting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamer.evaluation.report import LABELS, Evaluation
from streamer.evaluation.window_metrics import pr_curve, roc_curve, thin_curve

COLORS = {"model": "tab:blue", "rules": "tab:orange", "gbt": "tab:green"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(ev: Evaluation, path: Path) -> Path:
    """ROC (left) and precision-recall (right) of every system, one row per type + any."""
    plt = _plt()
    y_all = ev.labels()
    names = [*ev.defect_types, "any"]
    fig, axes = plt.subplots(len(names), 2, figsize=(11, 3.6 * len(names)), squeeze=False)
    for row, t in enumerate(names):
        k = ev.defect_types.index(t) if t != "any" else None
        y = y_all[:, k] if k is not None else y_all.max(1)
        ax_roc, ax_pr = axes[row]
        ax_roc.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
        prevalence = float(y.mean()) if len(y) else 0.0
        ax_pr.axhline(prevalence, color="0.7", lw=0.8, ls="--")
        for name, res in ev.systems.items():
            s_all = ev.scores(name)
            s = s_all[:, k] if k is not None else s_all.max(1)
            w = res.report["window"][t]
            try:
                fpr, tpr, _ = roc_curve(y, s)
                prec, rec, _ = pr_curve(y, s)
            except ValueError:
                continue
            ax_roc.plot(*thin_curve(fpr, tpr), color=COLORS.get(name), lw=1.4,
                        label=f"{LABELS.get(name, name)} AUC {w['roc_auc']:.3f}")
            ax_pr.plot(*thin_curve(rec, prec), color=COLORS.get(name), lw=1.4,
                       drawstyle="steps-post",
                       label=f"{LABELS.get(name, name)} AP {w['average_precision']:.3f}")
        ax_roc.set(title=f"{t}: ROC ({int(y.sum()):,} positive windows)",
                   xlabel="false positive rate", ylabel="true positive rate",
                   xlim=(0, 1), ylim=(0, 1.01))
        ax_pr.set(title=f"{t}: precision-recall (prevalence {prevalence:.3f})",
                  xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        if ax_roc.get_legend_handles_labels()[0]:
            ax_roc.legend(loc="lower right", fontsize=8)
            ax_pr.legend(loc="lower left", fontsize=8)
        else:
            ax_roc.text(0.5, 0.5, "no positive windows", ha="center", transform=ax_roc.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_lead_times(ev: Evaluation, path: Path, defect: str = "sticker") -> Path:
    """Histogram of lead times (critical_ts - first alarm) of caught events of one type."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    leads = {n: r.lead_times.get(defect, []) for n, r in ev.systems.items()}
    top = max([max(v) for v in leads.values() if v] + [60.0])
    bins = np.linspace(0, top * 1.02, 25)
    for name, vals in leads.items():
        bt = ev.systems[name].report["events"]["by_type"].get(defect, {})
        med = bt.get("lead_time_median_s")
        label = (f"{LABELS.get(name, name)}: caught {bt.get('caught', 0)}/"
                 f"{bt.get('caught', 0) + bt.get('missed', 0)}"
                 + (f", median {med:.0f} s" if med is not None else ""))
        ax.hist(vals, bins=bins, histtype="step", lw=1.8, color=COLORS.get(name), label=label)
    what = "breakout (critical_ts)" if defect == "sticker" else "critical_ts"
    ax.set(title=f"{defect}: warning lead time before {what}", xlabel="lead time (s)",
           ylabel="events")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_traces(ev: Evaluation, path: Path, threshold: float, per_type: int = 1,
                before_s: float = 180.0, after_s: float = 90.0) -> Path | None:
    """Scores of every system around the first ``per_type`` events of each type."""
    picks = []
    for t in ev.defect_types:
        picks += [e for e in ev.truth if e.type == t][:per_type]
    if not picks:
        return None
    plt = _plt()
    k_of = {t: k for k, t in enumerate(ev.defect_types)}
    idx = {s.strand: i for i, s in enumerate(ev.series)}
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 2.8 * len(picks)), squeeze=False)
    for ax, e in zip(axes[:, 0], picks):
        i = idx[e.strand]
        ts = ev.series[i].ts[ev.ends[i]]
        m = (ts >= e.onset_ts - before_s) & (ts <= e.critical_ts + after_s)
        x = ts[m] - e.critical_ts
        for name, res in ev.systems.items():
            ax.plot(x, res.scores[i][m, k_of[e.type]], color=COLORS.get(name), lw=1.2,
                    label=LABELS.get(name, name))
            for r in res.raises:
                if r.strand == e.strand and r.defect == e.type and \
                        e.onset_ts - before_s <= r.ts <= e.critical_ts + after_s:
                    ax.axvline(r.ts - e.critical_ts, color=COLORS.get(name), lw=0.8, ls=":")
        ax.axvspan(e.onset_ts - e.critical_ts, 0, color="red", alpha=0.08, label="event")
        th = _alarm_of(ev, "model", e.type, threshold)
        ax.axhline(th, color="0.4", lw=0.8, ls="--", label=f"alarm {th:g}")
        ax.set(ylim=(-0.02, 1.02), ylabel=f"p({e.type})",
               title=f"{e.event_id} {e.type} on {e.strand} (dotted: raised alarms)")
        ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("seconds relative to critical_ts")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_operating_points(ev: Evaluation, path: Path, threshold: float) -> Path:
    """Detection rate against false alarms per strand-day over the alarm-threshold sweep."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(ev.defect_types), figsize=(4.6 * len(ev.defect_types), 4.2),
                             squeeze=False)
    for ax, t in zip(axes[0], ev.defect_types):
        for name, res in ev.systems.items():
            pts = res.report.get("operating_points", [])
            xs = [p["by_type"][t]["false_alarms_per_strand_day"] for p in pts]
            ys = [p["by_type"][t]["detection_rate"] for p in pts]
            if not pts or any(y is None for y in ys):
                continue
            ax.plot(xs, ys, marker="o", ms=3, lw=1.2, color=COLORS.get(name),
                    label=LABELS.get(name, name))
            star = _alarm_of(ev, name, t, threshold)
            for p, x, y in zip(pts, xs, ys):
                if p["threshold"] == star:
                    ax.plot([x], [y], marker="*", ms=12, color=COLORS.get(name))
        ax.set_xscale("symlog", linthresh=0.5)
        star_m = _alarm_of(ev, "model", t, threshold)
        ax.set(title=f"{t}: detection vs false alarms (star: {star_m:g})",
               xlabel="false alarms per strand-day", ylabel="detection rate", ylim=(-0.02, 1.02))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _alarm_of(ev: Evaluation, system: str, defect: str, default: float) -> float:
    """The alarm threshold a system's events were counted at for this type (per-type for the
    model when its thresholds differ), else ``default``."""
    res = ev.systems.get(system)
    per = (res.report.get("alarm_thresholds") or {}).get("alarm_by_type", {}) if res else {}
    return float(per.get(defect, default))
