"""Which alarm on-delay, judged on development seeds only (leave one seed out).

For each candidate delay, each development seed in turn is held out: the threshold rule
(:func:`streamer.evaluation.thresholds.choose_all`, margin included) is applied to the other
seeds' sweeps summed, and the chosen thresholds are counted on the held-out seed. The heats
are simulated and scored once; only the alarm logic is run again per delay. Two rules read
the held-out totals:

- one delay for every type: among the delays that catch, in all, no fewer stickers than no
  delay and keep every median sticker lead at or above ``--min-lead`` (30 s, the project's
  bar), the one with the fewest false alarms in all (ties: the shorter delay);
- a delay per type (what the tool recommends since 2026-11-27): for each type, among the
  delays that catch no fewer events of that type than no delay (for stickers: and keep every
  median sticker lead at or above ``--min-lead``), the one with the fewest false alarms of
  that type (ties: the shorter; none qualifies: 0). Types do not interact in the alarm logic
  or the threshold rule (each has its own budget), so a type's held-out numbers depend on its
  own delay only, and the per-type pick is read from the same totals.

    python -m streamer.evaluation.on_delay MODEL.pt --seed 8001 --seed 8002 --seed 8003 \\
        --strands 6 --hours 16 --threads 2 --grid 0.5:0.98:0.02 --delays 0,1,2,3,4,5,6,8

``--system gbt`` / ``rules`` runs the same study for a baseline, scored as the threshold
chooser scores it (:class:`streamer.evaluation.thresholds.DevScorer`). ``--repick
RECORD.json`` applies the rules again to a ``--json`` record, without scoring.
The report seeds are refused, as by the threshold chooser; the delays it names are then used
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
    add_system_args,
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

    def totals(self) -> Totals:
        return Totals(self.delay_s, {t: self.total(t) for t in self.folds[0].counted},
                      self.min_sticker_lead())


@dataclass(frozen=True)
class Totals:
    """One delay's held-out totals, all the delay rules read (and a ``--json`` record keeps)."""

    delay_s: float
    by_type: dict[str, tuple[int, int, int]]  # (caught, judged, false alarms)
    min_sticker_lead_s: float | None

    def false_alarms(self) -> int:
        return sum(fa for _, _, fa in self.by_type.values())


def totals_from_record(rec: Mapping[str, Any]) -> list[Totals]:
    """A ``--json`` record's per-delay totals. Raises ValueError naming the field."""
    rows = rec.get("delays")
    if not isinstance(rows, list) or not rows:
        raise ValueError("delays: missing or empty (not an on_delay --json record)")
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(Totals(float(row["on_delay_s"]), {
                t: (int(v["caught"]), int(v["judged"]), int(v["false_alarms"]))
                for t, v in row["by_type"].items()},
                None if row.get("min_sticker_lead_s") is None
                else float(row["min_sticker_lead_s"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"delays[{i}]: {exc!r}: not an on_delay --json record") from None
    return out


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
    """The one-delay rule (module docstring); None if no delay qualifies (not even 0)."""
    best = pick_one([r.totals() for r in results], min_lead_s)
    return None if best is None else next(r for r in results if r.delay_s == best.delay_s)


def pick_one(rows: Sequence[Totals], min_lead_s: float = MIN_LEAD_S) -> Totals | None:
    """:func:`pick_delay` on totals (as a ``--json`` record keeps them)."""
    ok = [r for r in rows if _qualifies(r, rows, STICKER, min_lead_s)]
    return min(ok, key=lambda r: (r.false_alarms(), r.delay_s)) if ok else None


def pick_by_type(rows: Sequence[Totals], min_lead_s: float = MIN_LEAD_S) -> dict[str, float]:
    """The per-type rule (module docstring): seconds per type (0 where none qualifies)."""
    if not rows:
        return {}
    out = {}
    for t in rows[0].by_type:
        ok = [r for r in rows if _qualifies(r, rows, t, min_lead_s)]
        out[t] = min(ok, key=lambda r: (r.by_type[t][2], r.delay_s)).delay_s if ok else 0.0
    return out


def _qualifies(row: Totals, rows: Sequence[Totals], defect: str, min_lead_s: float) -> bool:
    """No fewer ``defect`` events caught than with no delay (where 0 was tried); for
    stickers (the one-delay rule always asks about stickers), every median lead kept."""
    zero = next((r for r in rows if r.delay_s == 0), None)
    if zero is not None and defect in zero.by_type \
            and row.by_type[defect][0] < zero.by_type[defect][0]:
        return False
    lead = row.min_sticker_lead_s
    return not (defect == STICKER and lead is not None and lead < min_lead_s)


def format_results(results: Sequence[DelayResult], picked: DelayResult | None,
                   strand_days: float) -> str:
    lines = []
    for r in results:
        mark = "  <- picked" if r is picked else ""
        lines.append(_totals_line(r.totals(), strand_days) + mark)
        for f in r.folds:
            lines.append(f"    held out {f.held_out}: " + ", ".join(
                f"{t} {f.chosen[t]:g} -> {p.caught}/{p.caught + p.missed}, {p.false_alarms} FA"
                for t, p in f.counted.items()))
        lines.append("    on every seed: " + ", ".join(
            f"{t} {c.threshold:g}" for t, c in r.joint.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="checkpoint (not with --repick)")
    ap.add_argument("--seed", type=int, action="append", default=[],
                    help="development seed (at least two; never a training or report seed)")
    ap.add_argument("--repick", default=None, metavar="RECORD.json",
                    help="apply the delay rules again to a --json record (no scoring)")
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
    add_system_args(ap)
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    from streamer.alarm.thresholds import MAX_ON_DELAY_S
    from streamer.evaluation.thresholds import check_dev_args, check_system_args

    if args.repick is not None:
        if args.model is not None or args.seed:
            return fail("--repick reads a record: give no checkpoint and no --seed with it")
        return _repick(args.repick, args.min_lead, args.json_out)
    if args.model is None:
        return fail("give a checkpoint to score, or --repick RECORD.json")

    try:
        check_system_args(args)
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
    from streamer.evaluation.gbt_training import GbtSourceError
    from streamer.evaluation.thresholds import DevScorer, dev_seeds, load_for_dev, sweep_scores

    try:
        loaded = load_for_dev(args.model, seeds, args.threads)
    except ValueError as exc:
        return fail(str(exc))
    types = list(loaded.defect_types)
    reference = AlertSettings().alarm
    thresholds = grid(start, stop, step, include=[reference])
    budgets = default_budgets(types, TOTAL_BUDGET)

    scored: dict[int, Any] = {}
    scorer = DevScorer(args, loaded, seeds)
    for dev in dev_seeds(args.sim_config, seeds, args.strands, args.hours, loaded.channels,
                         types):
        try:
            scores = scorer(dev)
        except GbtSourceError as exc:
            return fail(str(exc))
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
    whose = "" if args.system == "model" else f"{args.system} baseline for "
    print(f"== {whose}{args.model} (model {loaded.model_id}), seeds {'+'.join(map(str, seeds))}, "
          f"{strand_days:.2f} strand-days, each seed held out in turn")
    print(format_results(results, picked, strand_days))
    print("picked: " + ("none" if picked is None else f"on-delay {picked.delay_s:g} s"))
    by_type = pick_by_type([r.totals() for r in results], args.min_lead)
    print(f"picked per type: {_per_type_text(by_type)}")
    if args.json_out:
        rec = {"system": args.system, "model_id": loaded.model_id, "seeds": seeds,
               "strands_per_caster": args.strands, "hours": args.hours,
               "strand_days": round(strand_days, 4),
               "grid": thresholds, "margin": args.margin, "min_lead_s": args.min_lead,
               "picked_on_delay_s": None if picked is None else picked.delay_s,
               "picked_by_type": by_type,
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


def _totals_line(r: Totals, strand_days: float | None = None) -> str:
    """``on-delay 3 s: sticker 428/432, 9 FA, ...; 13 false alarms (0.54 per strand-day);
    lowest median sticker lead 32.9 s``."""
    rate = "" if strand_days is None else f" ({r.false_alarms() / strand_days:.2f} per " \
        "strand-day)"
    lead = "-" if r.min_sticker_lead_s is None else f"{r.min_sticker_lead_s:.1f} s"
    return (f"on-delay {r.delay_s:g} s: " + ", ".join(
        f"{t} {c}/{n}, {fa} FA" for t, (c, n, fa) in r.by_type.items())
        + f"; {r.false_alarms()} false alarms{rate}; lowest median sticker lead {lead}")


def _per_type_text(by_type: Mapping[str, float]) -> str:
    """``sticker 0 s, crack 3 s, slag 5 s (--on-delay sticker=0,crack=3,slag=5)``."""
    arg = ",".join(f"{t}={d:g}" for t, d in by_type.items())
    return ", ".join(f"{t} {d:g} s" for t, d in by_type.items()) + f" (--on-delay {arg})"


def _repick(path: str, min_lead_s: float, json_out: str | None) -> int:
    """``--repick``: both rules on a record's totals; ``--json`` writes the record with the
    per-type pick added (its other fields as they were)."""
    from streamer.json_file import read_json_object

    try:
        rec = read_json_object(path, ValueError, "an on_delay --json record")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        rows = totals_from_record(rec)
    except ValueError as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    for r in rows:
        print(_totals_line(r))
    best = pick_one(rows, min_lead_s)
    one = None if best is None else best.delay_s
    by_type = pick_by_type(rows, min_lead_s)
    print("picked: " + ("none" if one is None else f"on-delay {one:g} s"))
    print(f"picked per type: {_per_type_text(by_type)}")
    if json_out:
        with open(json_out, "w") as fh:
            json.dump({**rec, "min_lead_s": min_lead_s, "picked_on_delay_s": one,
                       "picked_by_type": by_type}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
