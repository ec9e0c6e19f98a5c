"""Per-event and per-hard-negative peak probabilities: a quick model comparison on dev seeds.

``streamer evaluate`` gives the full report; this answers the question asked while choosing
between candidates: which events does a system miss, by how much (its peak probability inside
each missed event) and what those events look like (a sticker's rise, spread, column and
speeds), and which hard negatives push it over the alarm threshold (its peak from the
nuisance's start to 60 s after its end, per defect type). No hysteresis and no on-delay: a
count of threshold crossings, close to but not the same as ``streamer evaluate``'s.

    python -m streamer.evaluation.peaks --seed 8001 --strands 3 MODEL.pt [MODEL2.pt ...]
    # the trees fitted on MODEL's training heats, on three seeds, at each type's threshold
    python -m streamer.evaluation.peaks --seed 8001 --seed 8002 --seed 8003 --strands 6 \\
        --hours 16 --system gbt --threshold sticker=0.92,crack=0.96,slag=0.92 MODEL.pt
    # an ensemble, from its members' saved scores (the chooser's --save-scores): seconds
    python -m streamer.evaluation.peaks ... ENS.pt --scores A.npz --scores B.npz
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def parse_thresholds(text: str, types: Sequence[str]) -> dict[str, float]:
    """``0.8`` (every type) or ``sticker=0.84,crack=0.96`` (a type not named gets 0.8).
    Raises ValueError naming the bad part."""
    from streamer.alarm.thresholds import check_alarm
    from streamer.evaluation.thresholds import parse_per_type

    return parse_per_type(text, types, 0.8, "--threshold", "P or TYPE=P,...", check_alarm)


def describe_event(e: dict[str, Any]) -> str:
    """What an operator would ask of a missed event: its size and how it moves."""
    d = json.loads(e.get("detail") or "{}")
    span = e["critical_ts"] - e["onset_ts"]
    where = f"{e['strand']} at {e['onset_ts']:.0f}, onset->critical {span:.0f} s"
    if e["type"] == "sticker":
        rows = ", ".join(f"{a:.1f}" for a in d.get("row_amplitude", []))
        return (f"{where}, rise {e['severity']:.1f} degC (rows {rows}) at "
                f"{d.get('rise_rate', float('nan')):.2f} degC/s, column {e['col']}, spread "
                f"{d.get('spread_cols', '?')}, down {d.get('vp_m_min', float('nan')):.2f} m/min")
    if e["type"] == "crack":
        return f"{where}, {e['severity']:.1f} degC dip, row {e['row']} column {e['col']}"
    return f"{where}, severity {e['severity']:.1f}"


def main(argv: list[str] | None = None) -> int:
    from streamer.evaluation.thresholds import (
        DevScorer,
        add_system_args,
        check_dev_seeds,
        check_system_args,
        dev_seeds,
        load_for_dev,
        saved_dev_scores,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--seed", type=int, action="append", required=True,
                    help="development simulator seed (never a training or report seed); "
                         "repeat it for several")
    ap.add_argument("--strands", type=int, default=3, help="strands per caster (2 casters)")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--sim-config", default="configs/sim/default.yaml")
    ap.add_argument("--threshold", default="0.8", metavar="P|TYPE=P,...",
                    help="alarm threshold, for every type or per type (default 0.8)")
    ap.add_argument("--min-fill", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    ap.add_argument("--scores", action="append", default=[], metavar="FILE",
                    help="read the scores from the chooser's --save-scores files instead of "
                         "scoring (one model; for an ensemble, one file per member)")
    add_system_args(ap)
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    from streamer.evaluation.dev_scores import ScoresError
    from streamer.evaluation.gbt_training import GbtSourceError

    try:
        check_system_args(args)
        seeds = check_dev_seeds(args.seed)
    except ValueError as exc:
        return fail(str(exc))
    if args.scores and (len(args.models) > 1 or args.system != "model"):
        return fail("--scores: one model (--system model), whose scores the files hold")
    for path in args.models:
        try:
            loaded = load_for_dev(path, seeds, args.threads)
            limits = parse_thresholds(args.threshold, list(loaded.defect_types))
        except ValueError as exc:
            return fail(str(exc))
        types = list(loaded.defect_types)
        scorer = DevScorer(args, loaded, seeds)
        missed: dict[str, list[tuple[float, str]]] = {t: [] for t in types}
        counts = dict.fromkeys(types, 0)
        over: dict[str, np.ndarray] = {}
        n_nuisance: dict[str, int] = {}
        devs: Iterable[Any] = dev_seeds(args.sim_config, seeds, args.strands, args.hours,
                                        loaded.channels, types)
        saved: list[np.ndarray] = []
        if args.scores:
            devs = list(devs)
            try:
                saved = saved_dev_scores(args, seeds, loaded,
                                         [s for d in devs for s in d.series])
            except ScoresError as exc:
                return fail(str(exc))
        for dev in devs:
            if args.scores:
                scores, saved = saved[:len(dev.series)], saved[len(dev.series):]
            else:
                try:
                    scores = scorer(dev)
                except GbtSourceError as exc:
                    return fail(str(exc))
            prefix = f"{dev.seed}/" if len(seeds) > 1 else ""
            by = {s.strand: (s.ts[args.min_fill - 1:], sc) for s, sc in zip(dev.series, scores)}
            for e in dev.heats.events.to_pylist():
                if e["type"] not in types:
                    continue
                k = types.index(e["type"])
                ts, sc = by[prefix + e["strand"]]
                inside = sc[(ts >= e["onset_ts"]) & (ts <= e["critical_ts"]), k]
                counts[e["type"]] += 1
                peak = float(inside.max()) if len(inside) else 0.0
                if peak < limits[e["type"]]:
                    missed[e["type"]].append((peak, f"seed {dev.seed}, " + describe_event(e)))
            for x in dev.heats.nuisances.to_pylist():
                ts, sc = by[prefix + x["strand"]]
                m = (ts >= x["onset_ts"]) & (ts <= x["critical_ts"] + 60.0)
                if m.any():
                    hit = sc[m].max(0) >= np.array([limits[t] for t in types])
                    over[x["type"]] = over.get(x["type"], 0) + hit.astype(int)
                    n_nuisance[x["type"]] = n_nuisance.get(x["type"], 0) + 1
        whose = "" if args.system == "model" else f"{args.system} baseline for "
        print(f"== {whose}{path} (model {loaded.model_id}), seed "
              f"{'+'.join(str(s) for s in seeds)}, thresholds "
              + ", ".join(f"{t} {limits[t]:g}" for t in types))
        for typ in types:
            n = counts[typ]
            print(f" {typ}: reached {limits[typ]:g} in {n - len(missed[typ])}/{n}")
            for peak, what in sorted(missed[typ], key=lambda m: -m[0]):
                shown = math.floor(peak * 1000) / 1000  # never rounded up to the threshold
                print(f"   missed: peak {shown:.3f}, {what}")
        for kind in sorted(n_nuisance):
            by_type = dict(zip(types, over[kind].tolist()))
            print(f" {kind:16s} n={n_nuisance[kind]:3d} over the threshold by type {by_type}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
