"""Per-event and per-hard-negative peak probabilities: a quick model comparison on a dev seed.

``streamer evaluate`` gives the full report; this answers the question asked while choosing
between candidates: which events does a model miss, by how much (its peak probability inside
each missed event), and which hard negatives push it over the alarm threshold (its peak from
the nuisance's start to 60 s after its end, per defect type). No hysteresis: a count of
threshold crossings, close to but not the same as ``streamer evaluate``'s false alarms.

    python -m streamer.evaluation.peaks --seed 8001 --strands 3 MODEL.pt [MODEL2.pt ...]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--seed", type=int, required=True, help="simulator seed (never a training seed)")
    ap.add_argument("--strands", type=int, default=3, help="strands per caster (2 casters)")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--sim-config", default="configs/sim/default.yaml")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--min-fill", type=int, default=60)
    args = ap.parse_args(argv)

    from simulators.caster import generate
    from simulators.caster.config import load_config
    from streamer.evaluation.data import REPORT_SEEDS, load_series, training_seeds
    from streamer.evaluation.report import model_scores
    from streamer.model.checkpoint import load_checkpoint

    if args.seed in REPORT_SEEDS:
        print(f"error: seed {args.seed} is a held-out report seed: compare candidates on a "
              "development seed (e.g. 8001)", file=sys.stderr)
        return 2
    heats = generate(load_config(args.sim_config), seed=args.seed,
                     strands_per_caster=args.strands, hours=args.hours)
    events, nuisances = heats.events.to_pylist(), heats.nuisances.to_pylist()
    for path in args.models:
        loaded = load_checkpoint(path)
        if args.seed in training_seeds(loaded.metadata):
            print(f"error: seed {args.seed} trained {path}", file=sys.stderr)
            return 2
        series, _ = load_series(heats, loaded.channels, loaded.defect_types)
        scores = model_scores(loaded, series, args.min_fill, progress=False)
        types = list(loaded.defect_types)
        by = {s.strand: (s.ts[args.min_fill - 1:], sc) for s, sc in zip(series, scores)}
        print(f"== {path} (model {loaded.model_id}), seed {args.seed}")
        for typ in types:
            k, missed, n = types.index(typ), [], 0
            for e in (e for e in events if e["type"] == typ):
                ts, sc = by[e["strand"]]
                inside = sc[(ts >= e["onset_ts"]) & (ts <= e["critical_ts"]), k]
                n += 1
                if not len(inside) or inside.max() < args.threshold:
                    detail = json.loads(e["detail"] or "{}")
                    missed.append((float(inside.max()) if len(inside) else 0.0,
                                   e["critical_ts"] - e["onset_ts"], detail.get("rise_rate")))
            print(f" {typ}: reached {args.threshold} in {n - len(missed)}/{n}")
            for peak, span, rate in missed:
                extra = f", rise {rate:.2f} degC/s" if rate is not None else ""
                print(f"   missed: peak {peak:.2f}, onset->critical {span:.0f} s{extra}")
        for kind in sorted({x["type"] for x in nuisances}):
            peaks = []
            for x in (x for x in nuisances if x["type"] == kind):
                ts, sc = by[x["strand"]]
                m = (ts >= x["onset_ts"]) & (ts <= x["critical_ts"] + 60.0)
                if m.any():
                    peaks.append(sc[m].max(0))
            p = np.array(peaks).reshape(-1, len(types))
            over = dict(zip(types, (p >= args.threshold).sum(0).tolist()))
            print(f" {kind:16s} n={len(p):3d} over {args.threshold} by type {over}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
