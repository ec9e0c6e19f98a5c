"""Which ensemble of trained runs to build: every one of a few sizes, judged on development heats.

Each run is scored once (``python -m streamer.evaluation.thresholds RUN --save-scores
FILE``); an ensemble's scores are the mean of its members' or, ``--combine max``, the largest
(:mod:`streamer.evaluation.dev_scores`), so this tool judges every ensemble of ``--sizes``
members without scoring again: it chooses each one's thresholds by the chooser's rule
(:mod:`streamer.evaluation.thresholds`, same budgets, reference, margin and ``--on-delay``),
counts what they catch and their false alarms, and applies a gate fixed beforehand
(``--need TYPE=N`` caught, ``--max-false-alarms``).
Among those that pass, the first by: fewest false alarms, most events of each type in the
model's type order, fewer members, the runs' order on the command line. The heats are those
the scores files were made on (their seeds, strands, hours, simulator config, min_fill; every
file must agree), simulated once for the ground truth.

    python -m streamer.evaluation.ensemble_choice --run A.pt A.npz --run B.pt B.npz \\
        --run C.pt C.npz --sizes 2,3 --on-delay sticker=0,crack=3,slag=5 \\
        --grid 0.5:0.98:0.02 --need sticker=431,crack=453,slag=414 --max-false-alarms 25

Build the chosen one with ``streamer model ensemble --out ENS.pt`` (members in the order
printed, the same ``--combine``) and write its thresholds with ``python -m
streamer.evaluation.thresholds ENS.pt --scores ... --write`` and the same settings: the same
numbers, from the same scores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamer.alarm.thresholds import describe_delays
from streamer.config import AlertSettings
from streamer.evaluation.dev_scores import (
    HEATS_KEYS,
    ScoresError,
    check_heats,
    check_strands,
    combined,
    load_scores,
)
from streamer.evaluation.thresholds import (
    MARGIN,
    TOTAL_BUDGET,
    Choice,
    check_dev_args,
    choose_all,
    default_budgets,
    dev_seeds,
    grid,
    load_for_dev,
    parse_on_delay,
    parse_per_type,
    sweep_scores,
)


@dataclass(frozen=True)
class Judged:
    """One ensemble's numbers at its chosen thresholds."""

    members: tuple[int, ...]  # indexes into the runs, in command-line order
    choices: dict[str, Choice]
    events: dict[str, int]

    @property
    def caught(self) -> dict[str, int]:
        return {t: c.point.caught for t, c in self.choices.items()}

    @property
    def false_alarms(self) -> int:
        return sum(c.point.false_alarms for c in self.choices.values())

    def passes(self, need: Mapping[str, int], max_false_alarms: int | None) -> bool:
        caught = self.caught
        return (all(caught[t] >= n for t, n in need.items())
                and (max_false_alarms is None or self.false_alarms <= max_false_alarms))

    def rank_key(self, types: Sequence[str]) -> tuple[Any, ...]:
        caught = self.caught
        return (self.false_alarms, *(-caught[t] for t in types), len(self.members),
                self.members)


def subsets(n: int, sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every choice of ``sizes`` members among ``n`` runs, each in command-line order."""
    return [m for k in sizes for m in itertools.combinations(range(n), k)]


def judge(members: tuple[int, ...], scores: Sequence[Sequence[np.ndarray]], series: Sequence[Any],
          truth: Sequence[Any], types: Sequence[str], thresholds: Sequence[float],
          min_fill: int, hz: float, on_delay: Mapping[str, float],
          budgets: Mapping[str, float], reference: float, margin: float = MARGIN,
          combine: str = "mean") -> Judged:
    """The chooser's rule on the members' scores combined as the ensemble would."""
    ens = combined([scores[m] for m in members], combine)
    points, _ = sweep_scores(series, ens, truth, types, thresholds, min_fill, hz, on_delay)
    choices = choose_all(points, budgets, reference, margin)
    return Judged(members, choices, {t: sum(e.type == t for e in truth) for t in types})


def parse_need(text: str, types: Sequence[str]) -> dict[str, int]:
    """``--need sticker=431,crack=453``: events each type must catch (a type not named: 0)."""
    def check(v: float, field: str) -> float:
        if v < 0 or not float(v).is_integer():
            raise ValueError(f"{field}: expected a whole number >= 0, got {v:g}")
        return v

    return {t: int(v) for t, v in parse_per_type(
        text, types, 0.0, "--need", "TYPE=EVENTS,...", check).items()}


def letters(n: int) -> list[str]:
    return [chr(ord("A") + i) if i < 26 else f"R{i}" for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=2, action="append", required=True,
                    metavar=("CHECKPOINT", "SCORES"),
                    help="a trained run and its scores of the development heats "
                         "(thresholds --save-scores); at least two")
    ap.add_argument("--combine", choices=["mean", "max"], default="mean",
                    help="an ensemble's probability: the mean of its members' or the largest")
    ap.add_argument("--sizes", default=None,
                    help="ensemble sizes, e.g. 2,3 (default: 2 up to all the runs)")
    ap.add_argument("--grid", default="0.5:0.95:0.025", help="START:STOP:STEP")
    ap.add_argument("--margin", type=float, default=MARGIN)
    ap.add_argument("--on-delay", default="0", metavar="SECONDS|TYPE=SECONDS,...")
    ap.add_argument("--total-budget", type=float, default=TOTAL_BUDGET)
    ap.add_argument("--need", default="", metavar="TYPE=EVENTS,...",
                    help="the gate: events each type must catch at the chosen thresholds")
    ap.add_argument("--max-false-alarms", type=int, default=None,
                    help="the gate: false alarms of all types at the chosen thresholds")
    ap.add_argument("--json", dest="json_out", default=None, help="also write every result")
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    from streamer.model.checkpoint import CheckpointError, check_members

    runs = [tuple(r) for r in args.run]
    if len(runs) < 2:
        return fail("--run: give at least two runs")
    try:
        sizes = (sorted({int(x) for x in args.sizes.split(",")}) if args.sizes
                 else list(range(2, len(runs) + 1)))
    except ValueError:
        return fail(f"--sizes: expected sizes like 2,3, got {args.sizes!r}")
    if not sizes or sizes[0] < 1 or sizes[-1] > len(runs):
        return fail(f"--sizes: each size must be 1..{len(runs)} (the runs given)")
    try:
        loaded_meta = [load_scores(path) for _, path in runs]
        heats = {k: loaded_meta[0][0].get(k) for k in HEATS_KEYS}  # each file checked below
        seeds, (start, stop, step) = check_dev_args(heats["seeds"], args.grid, args.margin)
        loaded = [load_for_dev(ckpt, seeds, 0) for ckpt, _ in runs]
        check_members(loaded)
    except CheckpointError as exc:
        return fail(f"--run: {exc}")
    except ValueError as exc:  # ScoresError too
        return fail(str(exc))
    first = loaded[0]
    types = list(first.defect_types)
    ids = [lm.model_id for lm in loaded]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        return fail(f"model {dup} is given twice: an ensemble's members are other runs")
    try:
        for (ckpt, path), lm, (meta, _) in zip(runs, loaded, loaded_meta):
            if meta["model_id"] != lm.model_id:
                raise ScoresError(f"{path}: scores of model {meta['model_id']}, not of {ckpt} "
                                  f"({lm.model_id})")
            check_heats(path, meta, types, heats)
        on_delay = parse_on_delay(args.on_delay, types)
        need = parse_need(args.need, types) if args.need else {}
    except ValueError as exc:
        return fail(str(exc))

    series, truth, hz = [], [], 1.0
    for dev in dev_seeds(heats["sim_config"], seeds, heats["strands_per_caster"],
                         heats["hours"], first.channels, types):
        series += dev.series
        truth += dev.truth
        hz = dev.hz
    strands = [s.strand for s in series]
    windows = [max(0, len(s) - heats["min_fill"] + 1) for s in series]
    try:
        for (_, path), (meta, sc) in zip(runs, loaded_meta):
            check_strands(path, meta, sc, strands, windows, len(types))
    except ScoresError as exc:
        return fail(str(exc))
    scores = [s for _, s in loaded_meta]
    reference = AlertSettings().alarm
    thresholds = grid(start, stop, step, include=[reference])
    budgets = default_budgets(types, args.total_budget)
    names = letters(len(runs))
    judged = [judge(m, scores, series, truth, types, thresholds, heats["min_fill"], hz,
                    on_delay, budgets, reference, args.margin, args.combine)
              for m in subsets(len(runs), sizes)]
    judged.sort(key=lambda j: j.rank_key(types))

    print(f"== {len(judged)} {args.combine} ensembles of {len(runs)} runs on dev seed "
          f"{'+'.join(map(str, seeds))} ({heats['strands_per_caster']} strands per caster, "
          f"{heats['hours']:g} h), on-delay {describe_delays(on_delay)}")
    for name, (ckpt, _), lm in zip(names, runs, loaded):
        print(f"  {name} = {lm.model_id} ({ckpt})")
    events = judged[0].events
    print(f"{'members':<8} {'thresholds':<20} " + " ".join(
        f"{t + ' (' + str(events[t]) + ')':>14}" for t in types) + f" {'FA':>4}  gate")
    rows = []
    for j in judged:
        ok = j.passes(need, args.max_false_alarms)
        label = "+".join(names[m] for m in j.members)
        thr = "/".join(f"{j.choices[t].threshold:g}" for t in types)
        fa = "+".join(str(j.choices[t].point.false_alarms) for t in types)
        print(f"{label:<8} {thr:<20} " + " ".join(f"{j.caught[t]:>14}" for t in types)
              + f" {j.false_alarms:>4}  {'pass' if ok else '-'}  ({fa})")
        rows.append({"members": [loaded[m].model_id for m in j.members], "label": label,
                     "thresholds": {t: j.choices[t].threshold for t in types},
                     "caught": j.caught, "false_alarms": {t: j.choices[t].point.false_alarms
                                                          for t in types},
                     "passes": ok})
    passing = [r for r in rows if r["passes"]]
    if passing:
        print(f"chosen: {passing[0]['label']} = {' '.join(passing[0]['members'])}")
    else:
        print("chosen: none passes the gate")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"heats": heats | {"strands": len(series)}, "events": events,
                       "combine": args.combine, "on_delay": on_delay, "need": need,
                       "max_false_alarms": args.max_false_alarms,
                       "runs": [lm.model_id for lm in loaded], "ensembles": rows,
                       "chosen": passing[0]["members"] if passing else None}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
