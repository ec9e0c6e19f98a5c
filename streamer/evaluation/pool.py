"""Pool several ``streamer evaluate`` reports: event counts summed, rates with 95 % intervals.

One report of 8 strand-days cannot tell 0.6 from 2 false alarms per strand-day; two or more
reports on different held-out seeds, pooled, can narrow it. Counts are summed per system and
type (caught, missed, false alarms, strand-days), so the pooled rates weigh each report by its
size; every report must score the same model (model id) and defect types, and no seed may
appear twice (the same heats counted twice would fake precision).

    python -m streamer.evaluation.pool streamer/model/default/eval_report_9961.json \\
        streamer/model/default/eval_report_9971.json streamer/model/default/eval_report_9981.json

Note: each report scores systems at the thresholds it records (``settings``); pooling reports
made at different thresholds is allowed but printed, so that the reader knows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamer.alarm.thresholds import ThresholdError, on_delay_of
from streamer.evaluation.intervals import poisson_rate_ci, proportion_ci
from streamer.json_file import read_json_object


class PoolError(ValueError):
    """A report cannot be read or does not pool with the others."""


def load_report(path: str) -> dict[str, Any]:
    rep = read_json_object(path, PoolError, "a streamer evaluate report.json")
    if rep.get("format") != "streamer-evaluation":
        raise PoolError(f"{path}: not a streamer evaluate report.json (format "
                        f"{rep.get('format')!r})")
    _check_fields(rep, path)
    return rep


def _check_fields(rep: dict[str, Any], path: str) -> None:
    """Every field :func:`pool` reads is there with the right kind of value, so that a
    damaged or hand-edited report stops with its path and the field, not a KeyError."""
    kinds = {dict: "an object", list: "a list", str: "a string", int: "an integer",
             (int, float): "a number"}

    def need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        val = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(val, kind) or isinstance(val, bool):
            raise PoolError(f"{path}: {where}{key}: missing or not {kinds[kind]}")
        return val

    need(need(rep, "model", dict, ""), "model_id", str, "model.")
    types = need(rep, "defect_types", list, "")
    for name, system in need(rep, "systems", dict, "").items():
        ev = need(system, "events", dict, f"systems.{name}.")
        at = system.get("alarm_thresholds", {})  # optional; its delays are read if there
        if not isinstance(at, dict):
            raise PoolError(f"{path}: systems.{name}.alarm_thresholds: not an object")
        try:
            on_delay_of(at, f"systems.{name}.alarm_thresholds.")
        except ThresholdError as exc:
            raise PoolError(f"{path}: {exc}") from None
        where = f"systems.{name}.events."
        need(ev, "strand_days", (int, float), where)
        need(ev, "false_alarms", int, where)
        by_type = need(ev, "by_type", dict, where)
        for t in types:
            b = need(by_type, t, dict, f"{where}by_type.")
            for key in ("caught", "missed", "false_alarms"):
                need(b, key, int, f"{where}by_type.{t}.")


def _thresholds(rep: dict[str, Any], system: str) -> dict[str, float]:
    """Per-type thresholds, and the on-delay where there is one (a delay changes what a
    threshold means, so reports with different delays are printed as different)."""
    rec = rep["systems"][system].get("alarm_thresholds", {})
    out = dict(rec.get("alarm_by_type") or {})
    for t, d in on_delay_of(rec).items():
        if d:
            out[f"{t} on-delay"] = d
    return out


def pool(reports: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Summed counts and rates with intervals per system (those in every report) and type."""
    if not reports:
        raise PoolError("no reports")
    first = reports[0]
    seeds = [r.get("data", {}).get("seed") for r in reports]
    for r, name in zip(reports, names):
        if r["model"]["model_id"] != first["model"]["model_id"]:
            raise PoolError(f"{name}: model {r['model']['model_id']}, not "
                            f"{first['model']['model_id']} like {names[0]}")
        if r["defect_types"] != first["defect_types"]:
            raise PoolError(f"{name}: defect types {r['defect_types']} differ")
    known = [s for s in seeds if s is not None]
    if len(set(known)) != len(known):
        raise PoolError(f"a held-out seed appears twice ({seeds}): the same heats would count "
                        "twice")
    systems = [s for s in first["systems"] if all(s in r["systems"] for r in reports)]
    out: dict[str, Any] = {"model_id": first["model"]["model_id"], "seeds": seeds,
                           "reports": list(names), "systems": {}}
    for system in systems:
        days = sum(r["systems"][system]["events"]["strand_days"] for r in reports)
        fa = sum(r["systems"][system]["events"]["false_alarms"] for r in reports)
        per: dict[str, Any] = {}
        for t in first["defect_types"]:
            bts = [r["systems"][system]["events"]["by_type"][t] for r in reports]
            caught, missed = sum(b["caught"] for b in bts), sum(b["missed"] for b in bts)
            tfa = sum(b["false_alarms"] for b in bts)
            per[t] = {"caught": caught, "missed": missed,
                      "detection_rate": caught / (caught + missed) if caught + missed else None,
                      "detection_rate_ci95": proportion_ci(caught, caught + missed),
                      "false_alarms": tfa,
                      "false_alarms_per_strand_day": tfa / days if days else None,
                      "false_alarms_per_strand_day_ci95": poisson_rate_ci(tfa, days)}
        thresholds = [_thresholds(r, system) for r in reports]
        out["systems"][system] = {
            "strand_days": days, "false_alarms": fa,
            "false_alarms_per_strand_day": fa / days if days else None,
            "false_alarms_per_strand_day_ci95": poisson_rate_ci(fa, days),
            "by_type": per, "thresholds": thresholds,
            "same_thresholds": all(th == thresholds[0] for th in thresholds)}
    return out


def format_pool(p: dict[str, Any]) -> str:
    lines = [f"model {p['model_id']}, seeds {', '.join(str(s) for s in p['seeds'])}"]
    for system, s in p["systems"].items():
        lo, hi = s["false_alarms_per_strand_day_ci95"] or (float("nan"),) * 2
        lines.append(f"{system}: {s['false_alarms']} false alarms in {s['strand_days']:.2f} "
                     f"strand-days = {s['false_alarms_per_strand_day']:.2f} [{lo:.2f}, {hi:.2f}]"
                     + ("" if s["same_thresholds"] else
                        "  (thresholds differ between reports: "
                        + "; ".join(", ".join(f"{t} {v:g}" for t, v in th.items())
                                    for th in s["thresholds"]) + ")"))
        for t, b in s["by_type"].items():
            ci = b["detection_rate_ci95"]
            rate = "-" if b["detection_rate"] is None else (
                f"{100 * b['detection_rate']:.1f} % [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]")
            lines.append(f"  {t:<8} caught {b['caught']}/{b['caught'] + b['missed']} {rate}, "
                         f"false alarms {b['false_alarms']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", help="report.json files of streamer evaluate")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the pool here")
    args = ap.parse_args(argv)
    try:
        p = pool([load_report(r) for r in args.reports], args.reports)
    except PoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_pool(p))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(p, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
