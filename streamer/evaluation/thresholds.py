"""Per-defect-type alarm thresholds, chosen on development heats, stored in the checkpoint.

One alarm threshold for every type trades a breakout (sticker) against a crack as if they
cost the same. This chooser simulates heats from a development seed (never a training seed,
never a held-out report seed: ``data.REPORT_SEEDS``), scores them once with the model, sweeps
each type's alarm threshold through the daemon's alarm logic (``AlarmStates`` via
:func:`streamer.evaluation.report.sweep_points`, the same path as ``streamer evaluate``'s
operating points) and applies one rule per type (:func:`choose_threshold`). Several
development seeds (``--seed`` repeated) are swept as one set of heats.

Step 1, the budget rule:

- ``t_budget``: the lowest grid threshold from which on (it and every higher one) the type's
  false alarms per strand-day on the development heats are within its budget;
- ``t_need``: the highest threshold that still catches the most events any grid threshold
  catches (going lower catches nothing more on these heats);
- ``t_keep``: the highest threshold that still catches every event the reference threshold
  (``alerts.alarm``, 0.8) catches;
- ``base = min(max(t_budget, min(t_need, reference)), t_keep)``: go down from the reference
  towards ``t_need`` only as far as the budget allows; go up from it only to meet the
  budget, and never so far that a development event caught at the reference is lost. No
  threshold within budget: ``t_keep`` (the fewest false alarms without losing an event).

Step 2, the margin: ``t_hold`` is the highest threshold that still catches every
development event ``base`` catches; chosen = the highest grid threshold in ``[base, t_hold -
margin]`` (``base`` if there is none, or if ``base`` catches no development event: then
nothing shows where events would be lost). Step 1 alone stopped at the reference whenever
the development heats were within budget, and a few strand-days hold too few false alarms
to say where they stop: the default model had 0.25 and 0.75 false alarms per strand-day on its
development seeds and 1.25 on fresh ones. False alarms fall as the threshold rises, so step 2
goes as high as it can without losing a development event; the margin (default 0.02, one
step of a 0.02 grid) keeps it off the edge, because the peak of an event on fresh heats
scatters (docs/evaluation.md, "Thresholds with a margin").

Budgets (false alarms per strand-day): the project's bar of 1 in total, split sticker 0.6,
the other types evenly (0.2 each): a missed sticker is a breakout, a missed crack a
downgraded slab. 0.6 rather than 0.5 because the default development heats are ~2
strand-days, where 0.5 would allow no sticker false alarm at all.

    python -m streamer.evaluation.thresholds --seed 8001 --strands 3 MODEL.pt [--write]
    python -m streamer.evaluation.thresholds --seed 8001 --system gbt MODEL.pt --json gbt.json

``--write`` stores the thresholds, the rule, the budgets, the seed and the per-type
numbers under ``metadata.operating_thresholds`` (not part of the model id); the daemon and
``streamer evaluate`` use them unless ``alerts.alarm_by_type`` overrides them
(:mod:`streamer.alarm.thresholds`).

``--on-delay S`` chooses the thresholds with the alarm on-delay S (:mod:`streamer.alarm.levels`)
and records it beside them; ``--on-delay sticker=0,crack=3,slag=5`` gives each type its own
(a type not named: 0). The daemon and ``streamer evaluate`` then apply them with the
thresholds (unless ``alerts.on_delay_s`` / ``alerts.on_delay_by_type`` are set). A delay lets
a type go lower without more false alarms, so thresholds chosen with one are too low without
it. Types do not interact in the alarm logic, so a type's choice depends on its own delay
only.

``--system gbt`` / ``rules`` chooses, by the same rule on the same heats, thresholds for a
baseline, so that a report compares like with like: the trees are fitted exactly as
``streamer evaluate`` fits them (:mod:`streamer.evaluation.gbt_training`; the fingerprint of
the fit is stored with the thresholds), and ``streamer evaluate --baseline-thresholds
FILE`` applies the ``--json`` record (:func:`load_baseline_thresholds`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from streamer.alarm.thresholds import (
    ResolvedThresholds,
    check_on_delay,
    delay_fields,
    describe_delays,
)
from streamer.config import AlertSettings
from streamer.evaluation.data import REPORT_SEEDS
from streamer.evaluation.dev_scores import ScoresError, ensemble_scores, save_scores
from streamer.evaluation.gbt_training import DEFAULT_MAX_WINDOWS, DEFAULT_STRIDE
from streamer.json_file import json_default, read_json_object

TOTAL_BUDGET = 1.0  # false alarms per strand-day, all types (the project's quality bar)
STICKER_SHARE = 0.6
MARGIN = 0.02  # stop this far below t_hold: an event's peak on fresh heats scatters
RULE = ("per type: base = min(max(t_budget, min(t_need, reference)), t_keep); t_budget = "
        "lowest grid threshold from which on the type's dev false alarms/strand-day <= its "
        "budget (none: t_keep); t_need = highest threshold catching the most dev events; "
        "t_keep = highest threshold catching every dev event the reference catches; then "
        "chosen = highest grid threshold in [base, t_hold - margin] (none: base), t_hold = "
        "highest threshold catching every dev event base catches")


SYSTEMS = ("model", "gbt", "rules")
BASELINES = ("gbt", "rules")
SOURCE_BASELINE = "--baseline-thresholds"


@dataclass(frozen=True, slots=True)
class TypePoint:
    """One type's event numbers at one alarm threshold."""

    threshold: float
    caught: int
    missed: int
    false_alarms: int
    false_alarms_per_strand_day: float
    lead_time_median_s: float | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen threshold of one type and the bounds that gave it."""

    defect: str
    threshold: float
    budget: float
    reference: float
    t_budget: float | None
    t_need: float
    t_keep: float
    within_budget: bool
    point: TypePoint
    at_reference: TypePoint
    base: float  # the budget rule's threshold (step 1)
    t_hold: float  # highest threshold catching every dev event the base catches
    margin: float


def grid(start: float = 0.5, stop: float = 0.95, step: float = 0.025,
         include: Sequence[float] = ()) -> list[float]:
    """Thresholds start..stop (inclusive) by step, rounded to 4 places, plus ``include``."""
    n = math.floor((stop - start) / step + 1e-9) + 1
    return sorted({round(start + i * step, 4) for i in range(n)} | {round(x, 4) for x in include})


def default_budgets(defect_types: Sequence[str], total: float = TOTAL_BUDGET,
                    sticker_share: float = STICKER_SHARE) -> dict[str, float]:
    """Sticker gets ``sticker_share`` of ``total``, the others split the rest evenly."""
    types = list(defect_types)
    if "sticker" not in types:
        return {t: total / len(types) for t in types}
    rest = [t for t in types if t != "sticker"]
    out = {"sticker": total * (sticker_share if rest else 1.0)}
    out.update({t: total * (1.0 - sticker_share) / len(rest) for t in rest})
    return {t: round(out[t], 6) for t in types}


def delay_map(on_delay: float | Mapping[str, float], defect_types: Iterable[str]
              ) -> dict[str, float]:
    """``on_delay`` (seconds for every type, or per type) as seconds per type (absent: 0)."""
    if isinstance(on_delay, Mapping):
        return {t: float(on_delay.get(t, 0.0)) for t in defect_types}
    return dict.fromkeys(defect_types, float(on_delay))


def parse_per_type(text: str, defect_types: Sequence[str], default: float, flag: str,
                   usage: str, check: Callable[[float, str], float]) -> dict[str, float]:
    """A command-line value for every type (``3``) or per type (``sticker=0,crack=3``; a type
    not named gets ``default``), each passed through ``check(value, field)``, which raises
    a ValueError naming the field. Raises ValueError, the message for the user."""

    def number(value: str, field: str) -> float:
        try:
            parsed = float(value)
        except ValueError:
            raise ValueError(f"{flag}: expected {usage}, got {text!r}") from None
        return check(parsed, field)

    if "=" not in text:
        return dict.fromkeys(defect_types, number(text, flag))
    out = dict.fromkeys(defect_types, default)
    for part in text.split(","):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in defect_types:
            raise ValueError(f"{flag} {key}: not a defect type of the model "
                             f"({', '.join(defect_types)})")
        out[key] = number(value, f"{flag} {key}")
    return out


def parse_on_delay(text: str, defect_types: Sequence[str]) -> dict[str, float]:
    """``--on-delay``: ``3`` (every type) or ``sticker=0,crack=3,slag=5`` (a type not named:
    0), as seconds per type. Raises ValueError, the message for the user."""
    return parse_per_type(text, defect_types, 0.0, "--on-delay", "SECONDS or TYPE=SECONDS,...",
                          check_on_delay)  # ThresholdError, a ValueError, names the field


def choose_threshold(defect: str, points: Sequence[TypePoint], budget: float,
                     reference: float, margin: float = MARGIN) -> Choice:
    """Apply the rule (module docstring) to one type's sweep; ``reference`` must be in it."""
    pts = sorted(points, key=lambda p: p.threshold)
    ref = next((p for p in pts if math.isclose(p.threshold, reference)), None)
    if ref is None:
        raise ValueError(f"{defect}: the reference threshold {reference} is not in the sweep")
    t_budget: float | None = None
    for p in reversed(pts):  # from the top down while the budget holds
        if p.false_alarms_per_strand_day > budget + 1e-12:
            break
        t_budget = p.threshold
    best = max(p.caught for p in pts)
    t_need = max(p.threshold for p in pts if p.caught == best)
    t_keep = max(p.threshold for p in pts if p.caught >= ref.caught)
    lower = min(t_need, reference)
    base = min(max(t_budget if t_budget is not None else math.inf, lower), t_keep)
    at_base = next(p for p in pts if p.threshold == base)
    t_hold = max(p.threshold for p in pts if p.caught >= at_base.caught)
    span = [p for p in pts if base <= p.threshold <= t_hold - margin + 1e-9] or [at_base]
    # no development event caught: nothing shows where events would be lost, so no step 2
    point = max(span, key=lambda p: p.threshold) if at_base.caught else at_base
    return Choice(defect, point.threshold, budget, reference, t_budget, t_need, t_keep,
                  point.false_alarms_per_strand_day <= budget + 1e-12, point, ref,
                  base, t_hold, margin)


def type_points(operating_points: Sequence[Mapping[str, Any]]
                ) -> dict[str, list[TypePoint]]:
    """``sweep_points`` output -> per type, one TypePoint per threshold."""
    out: dict[str, list[TypePoint]] = {}
    for op in operating_points:
        for t, v in op["by_type"].items():
            out.setdefault(t, []).append(TypePoint(
                float(op["threshold"]), int(v["caught"]), int(v["missed"]),
                int(v["false_alarms"]), float(v["false_alarms_per_strand_day"]),
                v["lead_time_median_s"]))
    return out


def sweep_scores(series: Sequence[Any], scores: Sequence[np.ndarray], truth: Sequence[Any],
                 defect_types: Sequence[str], thresholds: Sequence[float], min_fill: int,
                 hz: float = 1.0, on_delay: float | Mapping[str, float] = 0.0
                 ) -> tuple[dict[str, list[TypePoint]], float]:
    """Per type, the event numbers at every threshold (alarms with ``on_delay``: seconds for
    every type, or per type, absent = 0); and the strand-days watched.

    ``series``: StrandSeries; ``scores[i]``: [len(series[i]) - min_fill + 1, K], the scores
    of the windows ending at readings min_fill-1.. (what ``model_scores`` returns)."""
    from streamer.evaluation.report import Evaluation, SystemResult, sweep_points

    ends = [np.arange(min_fill - 1, len(s)) for s in series]
    for s, e, sc in zip(series, ends, scores):
        if len(sc) != len(e):
            raise ValueError(f"{s.strand}: {len(sc)} scores for {len(e)} windows")
    n_windows = int(sum(len(e) for e in ends))
    counts = {"strand_seconds": n_windows / hz}
    ev = Evaluation(list(defect_types), list(series), ends, {}, counts, list(truth), hz)
    res = SystemResult("model", scores=list(scores))
    base = AlertSettings(on_delay_by_type=delay_map(on_delay, defect_types))
    return type_points(sweep_points(ev, res, thresholds, base)), n_windows / hz / 86400.0


def choose_all(points: Mapping[str, Sequence[TypePoint]], budgets: Mapping[str, float],
               reference: float, margin: float = MARGIN) -> dict[str, Choice]:
    """The rule applied to every type."""
    return {t: choose_threshold(t, pts, budgets[t], reference, margin)
            for t, pts in points.items()}


def format_sweep(points: Mapping[str, Sequence[TypePoint]], choices: Mapping[str, Choice],
                 events: Mapping[str, int]) -> str:
    """A table per type: threshold, caught/judged, false alarms, per strand-day, lead."""
    lines = []
    for t, pts in points.items():
        c = choices[t]
        lines.append(f"{t} ({events.get(t, '?')} events, budget {c.budget:g} FA/strand-day)")
        lines.append(f"  {'threshold':>9} {'caught':>8} {'FA':>4} {'FA/day':>7} {'lead med':>8}")
        for p in sorted(pts, key=lambda p: p.threshold):
            mark = []
            if p.threshold == c.threshold:
                mark.append("<- chosen")
            if math.isclose(p.threshold, c.reference):
                mark.append("reference")
            lead = "-" if p.lead_time_median_s is None else f"{p.lead_time_median_s:.0f}"
            lines.append(f"  {p.threshold:>9.3f} {p.caught:>3}/{p.caught + p.missed:<4} "
                         f"{p.false_alarms:>4} {p.false_alarms_per_strand_day:>7.2f} "
                         f"{lead:>8}  {' '.join(mark)}")
        tb = "none" if c.t_budget is None else f"{c.t_budget:g}"
        lines.append(f"  t_budget {tb}, t_need {c.t_need:g}, t_keep {c.t_keep:g} -> base "
                     f"{c.base:g}; t_hold {c.t_hold:g}, margin {c.margin:g} -> "
                     f"{c.threshold:g} ({'within' if c.within_budget else 'OVER'} budget)")
    return "\n".join(lines)


def chosen_seeds(chosen_on: Mapping[str, Any] | None) -> set[int]:
    """The development seeds of a record's ``chosen_on`` (``seeds``, or an older ``seed``)."""
    if not isinstance(chosen_on, Mapping):
        return set()
    seeds = chosen_on.get("seeds")
    if isinstance(seeds, list):
        return {x for x in seeds if isinstance(x, int)}
    seed = chosen_on.get("seed")
    return {seed} if isinstance(seed, int) else set()


def record(choices: Mapping[str, Choice], *, model_id: str, seeds: Sequence[int],
           sim_config: str,
           strands_per_caster: int | None, hours: float | None, strand_days: float,
           events: Mapping[str, int], min_fill: int, thresholds: Sequence[float],
           command: str, system: str = "model",
           gbt_train: Mapping[str, Any] | None = None,
           points: Mapping[str, Sequence[TypePoint]] | None = None,
           on_delay: float | Mapping[str, float] = 0.0) -> dict[str, Any]:
    """What ``--write`` stores as ``metadata.operating_thresholds`` (and ``--json`` writes):
    values and how chosen. ``gbt_train``: the fitted trees' fingerprint (``--system gbt``).
    ``points``: the whole sweep, kept per type as ``sweep`` so that another rule can be tried
    on the same development heats without scoring them again (:func:`points_from_record`)."""
    extra: dict[str, Any] = {"gbt_train": dict(gbt_train)} if gbt_train is not None else {}
    return {
        "system": system,
        **extra,
        "alarm_by_type": {t: c.threshold for t, c in choices.items()},
        **delay_fields(delay_map(on_delay, choices)),
        "rule": RULE,
        "budget_false_alarms_per_strand_day": {t: c.budget for t, c in choices.items()},
        "reference": next(iter(choices.values())).reference if choices else None,
        "grid": list(thresholds),
        "chosen_on": {**({"seed": seeds[0]} if len(seeds) == 1 else {}),
                      "seeds": list(seeds), "sim_config": sim_config,
                      "strands_per_caster": strands_per_caster, "hours": hours,
                      "strand_days": round(strand_days, 4), "events": dict(events),
                      "min_fill": min_fill},
        "margin": next(iter(choices.values())).margin if choices else None,
        "per_type": {t: {"t_budget": c.t_budget, "t_need": c.t_need, "t_keep": c.t_keep,
                         "base": c.base, "t_hold": c.t_hold,
                         "within_budget": c.within_budget, "chosen": asdict(c.point),
                         "at_reference": asdict(c.at_reference),
                         **({"sweep": [[p.threshold, p.caught, p.missed, p.false_alarms,
                                        p.false_alarms_per_strand_day]
                                       for p in sorted(points[t], key=lambda p: p.threshold)]}
                            if points is not None and t in points else {})}
                     for t, c in choices.items()},
        "model_id": model_id,
        "tool": "streamer.evaluation.thresholds",
        "command": command,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def points_from_record(rec: Mapping[str, Any]) -> dict[str, list[TypePoint]]:
    """A record's kept sweep (``per_type.<type>.sweep``) back as TypePoints (no lead times),
    to apply another rule or margin offline. Raises ValueError if the record has none."""
    out: dict[str, list[TypePoint]] = {}
    for t, v in (rec.get("per_type") or {}).items():
        rows = v.get("sweep") if isinstance(v, Mapping) else None
        if not rows:
            raise ValueError(f"per_type.{t}.sweep: the record keeps no sweep (written before "
                             "sweeps were kept); run the chooser again")
        out[t] = [TypePoint(float(th), int(c), int(m), int(fa), float(per))
                  for th, c, m, fa, per in rows]
    return out


def load_baseline_thresholds(path: str, defect_types: Sequence[str],
                             settings: AlertSettings | None = None
                             ) -> tuple[str, ResolvedThresholds, dict[str, Any]]:
    """(system, its per-type thresholds, the record) from a ``--system gbt|rules --json``
    file; the on-delay is the record's unless ``settings`` (the daemon's alerts) set one.
    Raises ThresholdError naming the file and the field."""
    from streamer.alarm.thresholds import (
        ThresholdError,
        check_alarm_map,
        recorded_on_delay,
        resolve_on_delay,
    )

    rec = read_json_object(path, ThresholdError, "a JSON threshold record")
    system = rec.get("system")
    if system not in BASELINES:
        raise ThresholdError(f"{path}: system: must be one of {', '.join(BASELINES)} (a record "
                             f"written by --system gbt|rules --json), got {system!r}")
    alarm = check_alarm_map(rec.get("alarm_by_type"), defect_types, f"{path}: alarm_by_type")
    missing = [t for t in defect_types if t not in alarm]
    if missing:
        raise ThresholdError(f"{path}: alarm_by_type: no threshold for {', '.join(missing)}")
    if system == "gbt" and not isinstance(rec.get("gbt_train"), dict):
        raise ThresholdError(f"{path}: gbt_train: missing (which trees the thresholds are for)")
    alarm = {t: alarm[t] for t in defect_types}
    # chosen with these delays (older records: none, 0)
    recorded = recorded_on_delay(rec, defect_types, f"{path}: ")
    delay, delay_source = resolve_on_delay(settings or AlertSettings(), defect_types, recorded,
                                           SOURCE_BASELINE)
    return system, ResolvedThresholds(tuple(defect_types), alarm,
                                      {t: SOURCE_BASELINE for t in defect_types},
                                      delay, delay_source), rec


def check_dev_seeds(seeds: Sequence[int]) -> list[int]:
    """The development seeds, repeats dropped; raises ValueError for a report seed."""
    unique = list(dict.fromkeys(seeds))
    for seed in unique:
        if seed in REPORT_SEEDS:
            raise ValueError(f"seed {seed} is a held-out report seed: choose on a development "
                             "seed (e.g. 8001)")
    return unique


def check_dev_args(seeds: Sequence[int], grid_text: str, margin: float
                   ) -> tuple[list[int], tuple[float, float, float]]:
    """The arguments every tool that chooses on development seeds takes: the seeds (repeats
    dropped; no report seed), ``--grid`` START:STOP:STEP and ``--margin``. Raises ValueError,
    the message for the user, naming the argument."""
    unique = check_dev_seeds(seeds)
    try:
        start, stop, step = (float(x) for x in grid_text.split(":"))
    except ValueError:
        raise ValueError(f"--grid: expected START:STOP:STEP, got {grid_text!r}") from None
    if not (0 < start <= stop < 1 and step > 0):
        raise ValueError("--grid: need 0 < START <= STOP < 1 and STEP > 0")
    if not 0 <= margin < 1:
        raise ValueError(f"--margin: need 0 <= MARGIN < 1, got {margin:g}")
    return unique, (start, stop, step)


def load_for_dev(model: str, seeds: Sequence[int], threads: int) -> Any:
    """The checkpoint that will score the development heats, torch on ``threads`` threads (0:
    its default). Raises ValueError, the message for the user, if it does not load or if one
    of ``seeds`` trained it."""
    import torch

    from streamer.evaluation.data import training_seeds
    from streamer.model.checkpoint import CheckpointError, load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    try:
        loaded = load_checkpoint(model)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from exc
    trained = [seed for seed in seeds if seed in training_seeds(loaded.metadata)]
    if trained:
        raise ValueError(f"seed {trained[0]} trained {model}")
    return loaded


@dataclass
class DevSeed:
    """One development seed's heats as the daemon sees them, and their ground truth."""

    seed: int
    heats: Any  # HeatSet
    series: list[Any]  # StrandSeries
    truth: list[Any]  # TruthEvent of the model's types on these strands
    hz: float


def dev_seeds(sim_config: str, seeds: Sequence[int], strands: int, hours: float,
              channels: Sequence[str], defect_types: Sequence[str]) -> Iterator[DevSeed]:
    """Simulate each seed in turn (one seed's heats in memory at a time). With several
    seeds the strand names get a ``"{seed}/"`` prefix: names repeat across seeds, and an
    alarm of one seed must never match an event of another."""
    from simulators.caster import generate
    from simulators.caster.config import load_config
    from streamer.evaluation.data import load_series, truth_events

    cfg = load_config(sim_config)
    for seed in seeds:
        heats = generate(cfg, seed=seed, strands_per_caster=strands, hours=hours)
        series, _ = load_series(heats, channels, defect_types)
        truth = truth_events(heats.events)
        if len(seeds) > 1:
            series = [replace(s, strand=f"{seed}/{s.strand}") for s in series]
            truth = [replace(e, strand=f"{seed}/{e.strand}") for e in truth]
        names = {s.strand for s in series}
        yield DevSeed(seed, heats, series,
                      [e for e in truth if e.strand in names and e.type in defect_types],
                      float(heats.manifest.get("hz") or 1.0))


def _budget_arg(text: str) -> tuple[str, float]:
    key, sep, val = text.partition("=")
    try:
        v = float(val)
    except ValueError:
        v = -1.0
    if not sep or not key or v < 0:
        raise argparse.ArgumentTypeError(f"expected TYPE=FA_PER_STRAND_DAY (>= 0), got {text!r}")
    return key, v


def add_system_args(ap: argparse.ArgumentParser) -> None:
    """``--system`` and the trees' fitting options, as every tool that scores development heats
    for a system takes them (:class:`DevScorer`)."""
    ap.add_argument("--system", choices=SYSTEMS, default="model",
                    help="whose scores (gbt, rules: a baseline's, fitted and run as "
                         "streamer evaluate does)")
    ap.add_argument("--gbt-train-data", default=None,
                    help="--system gbt: as streamer evaluate's (default: the model's heats)")
    ap.add_argument("--gbt-train-seed", type=int, default=None,
                    help="--system gbt: as streamer evaluate's")
    ap.add_argument("--gbt-stride", type=int, default=DEFAULT_STRIDE,
                    help=f"--system gbt: as streamer evaluate's (default {DEFAULT_STRIDE})")
    ap.add_argument("--gbt-max-windows", type=int, default=DEFAULT_MAX_WINDOWS,
                    help=f"--system gbt: as streamer evaluate's (default {DEFAULT_MAX_WINDOWS})")


def check_system_args(args: argparse.Namespace) -> None:
    """:func:`add_system_args`' values; raises ValueError, the message for the user."""
    if args.gbt_stride < 1 or args.gbt_max_windows < 0:
        raise ValueError("--gbt-stride must be >= 1, --gbt-max-windows >= 0")


def run_heats(args: argparse.Namespace, seeds: Sequence[int]) -> dict[str, Any]:
    """The development heats a tool's arguments simulate, as a scores file records them."""
    return {"seeds": list(seeds), "strands_per_caster": args.strands, "hours": args.hours,
            "sim_config": args.sim_config, "min_fill": args.min_fill}


def saved_dev_scores(args: argparse.Namespace, seeds: Sequence[int], loaded: Any,
                     series: Sequence[Any]) -> list[np.ndarray]:
    """``--scores``: the model's scores of ``series`` (every seed's strands, in order) read
    from its files (:func:`streamer.evaluation.dev_scores.ensemble_scores`; ScoresError)."""
    return ensemble_scores(args.scores, member_ids=loaded.scored_ids, model_id=loaded.model_id,
                           combine=loaded.combine, defect_types=list(loaded.defect_types),
                           heats=run_heats(args, seeds), strands=[s.strand for s in series],
                           windows=[max(0, len(s) - args.min_fill + 1) for s in series])


class DevScorer:
    """One system's scores of development heats, as ``streamer evaluate`` scores them: the
    model's; the rules'; the trees', fitted once (on the first seed's call) on the model's
    training heats, never on a development seed."""

    def __init__(self, args: argparse.Namespace, loaded: Any, seeds: Sequence[int]):
        self.args, self.loaded, self.seeds = args, loaded, list(seeds)
        self.gbt: Any = None

    def __call__(self, dev: DevSeed) -> list[np.ndarray]:
        """Raises GbtSourceError where the trees' training heats cannot be used."""
        from streamer.evaluation.report import gbt_scores, model_scores, rules_scores

        a = self.args
        if a.system == "model":
            return model_scores(self.loaded, dev.series, a.min_fill, progress=False)
        ends = [np.arange(a.min_fill - 1, len(s)) for s in dev.series]
        if a.system == "rules":
            return rules_scores(dev.series, ends, self.loaded.channels, dev.hz,
                                list(self.loaded.defect_types))
        if self.gbt is None:
            self.gbt = self._fit_trees(dev.heats)
        return gbt_scores(self.gbt, dev.series, ends)

    @property
    def gbt_train(self) -> dict[str, Any] | None:
        """The fitted trees' fingerprint (None before they are fitted, or for another system)."""
        from streamer.evaluation.gbt_training import training_fingerprint

        return None if self.gbt is None else training_fingerprint(self.gbt.train_info)

    def _fit_trees(self, heats: Any) -> Any:
        from streamer.evaluation.gbt_training import GbtSourceError, fit_gbt, gbt_training_heats

        a = self.args
        source = gbt_training_heats(
            self.loaded.metadata, heldout_seed=self.seeds[0],
            heldout_sim_config=heats.manifest.get("config"),
            data_dir=Path(a.gbt_train_data) if a.gbt_train_data else None,
            seed=a.gbt_train_seed)
        if source.seed is not None and source.seed in self.seeds:
            raise GbtSourceError(f"GBT training heats have the development seed {source.seed}: "
                                 "use other heats")
        return fit_gbt(self.loaded, source, a.min_fill, stride=a.gbt_stride,
                       max_windows=a.gbt_max_windows or None, threads=a.threads or None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="checkpoint (for a baseline: the model it is compared with, "
                    "whose channels, window and training heats it takes)")
    ap.add_argument("--seed", type=int, action="append", required=True,
                    help="development simulator seed (never a training seed, never a report "
                         "seed); repeat it to choose on the heats of several seeds together")
    ap.add_argument("--strands", type=int, default=3, help="strands per caster (2 casters)")
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--sim-config", default="configs/sim/default.yaml")
    ap.add_argument("--min-fill", type=int, default=60)
    ap.add_argument("--reference", type=float, default=None,
                    help="the single threshold to improve on (default: alerts.alarm, 0.8)")
    ap.add_argument("--grid", default="0.5:0.95:0.025", help="START:STOP:STEP")
    ap.add_argument("--margin", type=float, default=MARGIN,
                    help=f"how far below t_hold the rule stops (default {MARGIN:g})")
    ap.add_argument("--on-delay", default="0", metavar="SECONDS|TYPE=SECONDS,...",
                    help="alarm on-delay the thresholds are chosen with and travel with, "
                         "for every type or per type, e.g. sticker=0,crack=3,slag=5 "
                         "(alerts.on_delay_s / on_delay_by_type; default 0)")
    ap.add_argument("--total-budget", type=float, default=TOTAL_BUDGET,
                    help="false alarms per strand-day, all types")
    ap.add_argument("--budget", type=_budget_arg, action="append", default=[],
                    metavar="TYPE=FA", help="a type's budget (overrides the split)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the record here")
    ap.add_argument("--write", action="store_true",
                    help="store the thresholds in the checkpoint's metadata (--system model)")
    ap.add_argument("--save-scores", default=None, metavar="FILE",
                    help="also write the model's scores of these heats (for --scores)")
    ap.add_argument("--scores", action="append", default=[], metavar="FILE",
                    help="read the scores from --save-scores files instead of scoring: one "
                         "per member of an ensemble MODEL (its scores are their mean or max, "
                         "as it combines them), or the model's own "
                         "(streamer.evaluation.dev_scores)")
    add_system_args(ap)  # for gbt and rules, the --json record is what --baseline-thresholds reads
    args = ap.parse_args(argv)

    def fail(msg: str) -> int:
        print(f"error: {msg}", file=sys.stderr)
        return 2

    if args.system != "model" and args.write:
        return fail(f"--write stores a model's thresholds in its checkpoint; for --system "
                    f"{args.system} write the record with --json FILE")
    if args.system != "model" and (args.scores or args.save_scores):
        return fail("--scores and --save-scores are for --system model")
    if args.scores and args.save_scores:
        return fail("--save-scores writes the scores that --scores reads: give one of them")
    if args.system != "model" and not args.json_out:
        return fail(f"--system {args.system} needs --json FILE (for streamer evaluate "
                    "--baseline-thresholds)")
    try:
        check_system_args(args)
        seeds, (start, stop, step) = check_dev_args(args.seed, args.grid, args.margin)
    except ValueError as exc:
        return fail(str(exc))

    from streamer.evaluation.gbt_training import GbtSourceError
    from streamer.model.checkpoint import CheckpointError, update_metadata

    try:
        loaded = load_for_dev(args.model, seeds, args.threads)
    except ValueError as exc:
        return fail(str(exc))
    types = list(loaded.defect_types)
    try:
        on_delay = parse_on_delay(args.on_delay, types)
    except ValueError as exc:
        return fail(str(exc))
    budgets = default_budgets(types, args.total_budget)
    for key, val in args.budget:
        if key not in types:
            return fail(f"--budget {key}: not a defect type of the model ({', '.join(types)})")
        budgets[key] = val
    reference = args.reference if args.reference is not None else AlertSettings().alarm
    thresholds = grid(start, stop, step, include=[reference])

    series, truth, scores = [], [], []
    scorer = DevScorer(args, loaded, seeds)
    hz = 1.0
    for dev in dev_seeds(args.sim_config, seeds, args.strands, args.hours, loaded.channels,
                         types):
        hz = dev.hz
        if not args.scores:
            try:
                scores += scorer(dev)
            except GbtSourceError as exc:
                return fail(str(exc))
        series += dev.series
        truth += dev.truth
    if args.scores:
        try:
            scores = saved_dev_scores(args, seeds, loaded, series)
        except ScoresError as exc:
            return fail(str(exc))
    if args.save_scores:
        save_scores(args.save_scores, scores, [s.strand for s in series],
                    model_id=loaded.model_id, defect_types=types, heats=run_heats(args, seeds))
    events = {t: sum(e.type == t for e in truth) for t in types}
    points, strand_days = sweep_scores(series, scores, truth, types, thresholds,
                                       args.min_fill, hz, on_delay)
    choices = choose_all(points, budgets, reference, args.margin)

    whose = "" if args.system == "model" else f"{args.system} baseline for "
    print(f"== {whose}{args.model} (model {loaded.model_id}), dev seed "
          f"{'+'.join(str(x) for x in seeds)}, "
          f"{len(series)} strands, {strand_days:.3f} strand-days, reference {reference:g}, "
          f"on-delay {describe_delays(on_delay)}")
    print(format_sweep(points, choices, events))
    chosen = {t: c.threshold for t, c in choices.items()}
    print("chosen: " + ", ".join(f"{t} {v:g}" for t, v in chosen.items()))
    command = " ".join(["python -m streamer.evaluation.thresholds",
                        *(argv if argv is not None else sys.argv[1:])])
    rec = record(choices, model_id=loaded.model_id, seeds=seeds,
                 sim_config=args.sim_config, strands_per_caster=args.strands,
                 hours=args.hours, strand_days=strand_days, events=events,
                 min_fill=args.min_fill, thresholds=thresholds, command=command,
                 system=args.system, gbt_train=scorer.gbt_train, points=points,
                 on_delay=on_delay)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(rec, f, indent=2, default=json_default)
    if args.write:
        try:
            mid = update_metadata(args.model, {"operating_thresholds": rec})
        except CheckpointError as exc:
            return fail(str(exc))
        print(f"wrote metadata.operating_thresholds to {args.model} (model id {mid} unchanged)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
