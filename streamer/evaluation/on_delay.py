"""Which alarm on-delay, judged on development seeds only (leave one seed out).

For each candidate delay, each development seed in turn is held out: the threshold rule
(:func:`streamer.evaluation.thresholds.choose_all`, margin included) is applied to the other
seeds' sweeps summed, and the chosen thresholds are counted on the held-out seed. The heats
are simulated and scored once; only the alarm logic is run again per delay. The delay rule:
among the delays that catch, in all, no fewer stickers than no delay and keep every median
sticker lead at or above ``--min-lead`` (30 s, the project's bar), the one with the fewest
false alarms in all (ties: the shorter delay).

    python -m streamer.evaluation.on_delay MODEL.pt --seed 8001 --seed 8002 --seed 8003 \\
        --strands 6 --hours 16 --threads 2 --grid 0.5:0.98:0.02 --delays 0,1,2,3,4,5,6,8

The report seeds are refused, as by the threshold chooser; the delay it names is then used
with ``python -m streamer.evaluation.thresholds --on-delay`` on all the seeds together.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamer.evaluation.thresholds import (
    MARGIN,
    TOTAL_BUDGET,
    Choice,
    TypePoint,
    choose_all,
    default_budgets,
    grid,
)

STICKER = "sticker"
MIN_LEAD_S = 30.0


def sum_points(parts: Sequence[Mapping[str, Sequence[TypePoint]]], strand_days: float
               ) -> dict[str, list[TypePoint]]:
    """Several seeds' sweeps (same thresholds) as one: counts add; no lead time."""
    out: dict[str, list[TypePoint]] = {}
    for t in parts[0]:
        rows = zip(*(sorted(p[t], key=lambda q: q.threshold) for p in parts))
        out[t] = []
        for same in rows:
            if len({q.threshold for q in same}) != 1:
                raise ValueError(f"{t}: the sweeps have different thresholds")
            fa = sum(q.false_alarms for q in same)
            out[t].append(TypePoint(same[0].threshold, sum(q.caught for q in same),
                                    sum(q.missed for q in same), fa, fa / strand_days))
    return out


@dataclass
class Fold:
    """One held-out seed: the thresholds the other seeds chose, counted on it."""

    held_out: int
    chosen: dict[str, float]
    counted: dict[str, TypePoint]


@dataclass
class DelayResult:
    delay_s: float
    folds: list[Fold] = field(default_factory=list)
    joint: dict[str, Choice] = field(default_factory=dict)  # chosen on every seed

    def total(self, t: str) -> tuple[int, int, int]:
        """(caught, judged, false alarms) of type ``t`` over the held-out folds."""
        c = sum(f.counted[t].caught for f in self.folds)
        m = sum(f.counted[t].missed for f in self.folds)
        return c, c + m, sum(f.counted[t].false_alarms for f in self.folds)

    def false_alarms(self) -> int:
        return sum(self.total(t)[2] for t in self.folds[0].counted)

    def min_sticker_lead(self) -> float | None:
        leads = [f.counted[STICKER].lead_time_median_s for f in self.folds
                 if STICKER in f.counted]
        known = [x for x in leads if x is not None]
        return min(known) if known else None


def leave_one_out(per_seed: Mapping[int, tuple[Mapping[str, Sequence[TypePoint]], float]],
                  delay_s: float, budgets: Mapping[str, float], reference: float,
                  margin: float = MARGIN) -> DelayResult:
    """``per_seed``: seed -> (its sweep at this delay, its strand-days)."""
    res = DelayResult(delay_s)
    seeds = list(per_seed)
    for held in seeds:
        rest = [s for s in seeds if s != held]
        days = sum(per_seed[s][1] for s in rest)
        choices = choose_all(sum_points([per_seed[s][0] for s in rest], days), budgets,
                             reference, margin)
        chosen = {t: c.threshold for t, c in choices.items()}
        counted = {t: next(p for p in per_seed[held][0][t] if p.threshold == chosen[t])
                   for t in chosen}
        res.folds.append(Fold(held, chosen, counted))
    days = sum(d for _, d in per_seed.values())
    res.joint = choose_all(sum_points([p for p, _ in per_seed.values()], days), budgets,
                           reference, margin)
    return res


def pick_delay(results: Sequence[DelayResult], min_lead_s: float = MIN_LEAD_S
               ) -> DelayResult | None:
    """The module's rule; None if no delay qualifies (not even 0)."""
    if not results:
        return None
    zero = next((r for r in results if r.delay_s == 0), None)
    floor = zero.total(STICKER)[0] if zero is not None and STICKER in zero.folds[0].counted \
        else None
    ok = []
    for r in results:
        if floor is not None and r.total(STICKER)[0] < floor:
            continue
        lead = r.min_sticker_lead()
        if lead is not None and lead < min_lead_s:
            continue
        ok.append(r)
    return min(ok, key=lambda r: (r.false_alarms(), r.delay_s)) if ok else None


def format_results(results: Sequence[DelayResult], picked: DelayResult | None,
                   strand_days: float) -> str:
    lines = []
    for r in results:
        mark = "  <- picked" if r is picked else ""
        types = list(r.folds[0].counted)
        lead = r.min_sticker_lead()
        lines.append(f"on-delay {r.delay_s:g} s: "
                     + ", ".join(f"{t} {c}/{n}, {fa} FA" for t in types
                                 for c, n, fa in [r.total(t)])
                     + f"; {r.false_alarms()} false alarms ({r.false_alarms() / strand_days:.2f}"
                     f" per strand-day); lowest median sticker lead "
                     + ("-" if lead is None else f"{lead:.1f} s") + mark)
        for f in r.folds:
            lines.append(f"    held out {f.held_out}: " + ", ".join(
                f"{t} {f.chosen[t]:g} -> {p.caught}/{p.caught + p.missed}, {p.false_alarms} FA"
                for t, p in f.counted.items()))
        lines.append("    on every seed: " + ", ".join(
            f"{t} {c.threshold:g}" for t, c in r.joint.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="checkpoint")
    ap.add_argument("--seed", type=int, action="append", required=True,
                    help="development seed (at least two; never a training or report seed)")
    ap.add_argument("--delays", default="0,1,2,3,4,5,6,8", help="candidate on-delays, seconds")
    ap.add_argument("--strands", type=int, default=3, help="strands per caster (2 casters)")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--sim-config", default="configs/sim/default.yaml")
    ap.add_argument("--min-fill", type=int, default=60)
    ap.add_argument("--grid", default="0.5:0.98:0.02", help="START:STOP:STEP")
    ap.add_argument("--margin", type=float, default=MARGIN)
    ap.add_argument("--min-lead", type=float, default=MIN_LEAD_S,
                    help="lowest median sticker lead a delay may give on a held-out seed")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    from streamer.alarm.thresholds import MAX_ON_DELAY_S
    from streamer.evaluation.thresholds import check_dev_args

    try:
        seeds, (start, stop, step) = check_dev_args(args.seed, args.grid, args.margin)
    except ValueError as exc:
        return fail(str(exc))
    if len(seeds) < 2:
        return fail("--seed: give at least two development seeds (one is held out in turn)")
    try:
        delays = sorted({float(x) for x in args.delays.split(",")})
    except ValueError:
        return fail(f"--delays: expected numbers, got {args.delays!r}")
    if not all(0 <= d <= MAX_ON_DELAY_S for d in delays):
        return fail(f"--delays: each must be in [0, {MAX_ON_DELAY_S:g}] seconds")

    from streamer.config import AlertSettings
    from streamer.evaluation.report import model_scores
    from streamer.evaluation.thresholds import dev_seeds, load_for_dev, sweep_scores

    try:
        loaded = load_for_dev(args.model, seeds, args.threads)
    except ValueError as exc:
        return fail(str(exc))
    types = list(loaded.defect_types)
    reference = AlertSettings().alarm
    thresholds = grid(start, stop, step, include=[reference])
    budgets = default_budgets(types, TOTAL_BUDGET)

    scored: dict[int, Any] = {}
    for dev in dev_seeds(args.sim_config, seeds, args.strands, args.hours, loaded.channels,
                         types):
        scores = model_scores(loaded, dev.series, args.min_fill, progress=False)
        scored[dev.seed] = (dev.series, scores, dev.truth, dev.hz)
        print(f"scored seed {dev.seed}", flush=True)
    results = []
    for d in delays:
        per_seed = {seed: sweep_scores(series, scores, truth, types, thresholds, args.min_fill,
                                       hz, d)
                    for seed, (series, scores, truth, hz) in scored.items()}
        results.append(leave_one_out(per_seed, d, budgets, reference, args.margin))
    strand_days = sum(d for _, d in per_seed.values())
    picked = pick_delay(results, args.min_lead)
    print(f"== {args.model} (model {loaded.model_id}), seeds {'+'.join(map(str, seeds))}, "
          f"{strand_days:.2f} strand-days, each seed held out in turn")
    print(format_results(results, picked, strand_days))
    print("picked: " + ("none" if picked is None else f"on-delay {picked.delay_s:g} s"))
    if args.json_out:
        rec = {"model_id": loaded.model_id, "seeds": seeds, "strands_per_caster": args.strands,
               "hours": args.hours, "strand_days": round(strand_days, 4),
               "grid": thresholds, "margin": args.margin, "min_lead_s": args.min_lead,
               "picked_on_delay_s": None if picked is None else picked.delay_s,
               "command": " ".join(["python -m streamer.evaluation.on_delay",
                                    *(argv if argv is not None else sys.argv[1:])]),
               "delays": [{"on_delay_s": r.delay_s, "false_alarms": r.false_alarms(),
                           "by_type": {t: dict(zip(("caught", "judged", "false_alarms"),
                                                   r.total(t))) for t in types},
                           "min_sticker_lead_s": r.min_sticker_lead(),
                           "folds": [{"held_out": f.held_out, "chosen": f.chosen}
                                     for f in r.folds],
                           "on_every_seed": {t: c.threshold for t, c in r.joint.items()}}
                          for r in results]}
        with open(args.json_out, "w") as fh:
            json.dump(rec, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
