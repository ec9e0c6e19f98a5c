"""Held-out heats as the daemon sees them: decoded readings, per-strand series, truth.

The daemon drops a reading whose process tags are missing or implausible or whose whole
TC row is invalid, and fills a failed thermocouple from its row (``streamer.consume.tc_fill``).
:func:`streamer.consume.series.decode_series` applies exactly these rules to a whole series
at once, so the model, the rules and the trees are scored on what the daemon would feed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.heatfile import HeatSet
from streamer.consume.series import decode_series
from streamer.consume.tc_fill import TcFill
from streamer.evaluation.events import TruthEvent

# Names under which a checkpoint's metadata may record the simulator seed(s) it was trained
# (or validated) on. Lists and scalars are both accepted, at the top level or in a section.
# ("seed" alone is only read inside a data section: at the top level it may be the
# weight-initialisation seed.)
SEED_KEYS = ("data_seeds", "data_seed", "sim_seed", "sim_seeds", "train_data_seed",
             "train_data_seeds", "val_data_seed", "val_data_seeds")
SEED_SECTIONS = ("data", "dataset", "train_data", "val_data")


# Held-out report seeds: the shipped model's report comes from these; no tool may use them to
# choose anything (thresholds, candidates). 9001 reported every model up to 5ac19ef103ad and
# was then seen while choosing thresholds, so later models report on 9101. 9101's report was
# read before the baselines had thresholds of their own, so the like-for-like comparison
# (every system at thresholds chosen on the development seed 8001) reports on 9201. The false
# alarms found on 9201 (failed thermocouples among them) shaped the carried fill of failed
# thermocouples, so the first report with it is on 9301. The ensemble of runs (docs/training.md),
# its thresholds chosen on 8001, reports first on 9401. Three short runs averaged (`members: 3`,
# a candidate default chosen on 8001) reported on 9501 and 9601, with the single model beside
# it (docs/training.md, "Three short runs averaged"). Their false alarms (mostly sticker alarms
# during near-cracks) shaped the look-alike sampling (docs/training.md, "Look-alike
# negatives"), so its candidate reports on 9701 and 9801, again with the single model beside it.
# The sweeps on 9701 and 9801 were then read while writing a new threshold rule (a margin
# below the highest no-loss threshold, chosen on 8001-8003 together: docs/evaluation.md,
# "Thresholds with a margin"), so every system's thresholds by that rule report on 9901, 9911
# and 9921. Those reports had been read when the alarm on-delay was set (on 8001-8003 only:
# docs/evaluation.md, "Alarm on-delay"), so the thresholds chosen with it report on 9931,
# 9941 and 9951. Their per-type false alarms prompted a delay per type (docs/evaluation.md,
# "A delay per type"), which reports on 9961, 9971 and 9981. The two stickers missed there
# prompted two candidates (docs/training.md, "Faint stickers drawn more often", "Twice the
# training heats"), for which 9991, 10001 and 10011 were reserved; neither passed its
# development gate, nor did several more candidates. The first to pass, an ensemble taking
# its members' largest probability, reported on them with the default beside it (docs/
# training.md, "The largest member's probability"), so they are used: a next candidate
# needs seeds not listed here, reserved before it is scored. 10021, 10031 and 10041 were
# reserved for the column encoder's peak inputs (docs/training.md, "Peak inputs for the
# column encoder"); a max-ensemble of the default and one of those runs reported on them
# with the default beside it, so they are used too. 10051, 10061 and 10071 are reserved for
# the runs that keep their last epoch's weights (docs/training.md, "The last epoch's weights"),
# which did not pass their gate, then for the six-epoch runs ("Six epochs"), which did not
# either: the three are still unused.
REPORT_SEEDS = frozenset({9001, 9101, 9201, 9301, 9401, 9501, 9601, 9701, 9801, 9901, 9911,
                          9921, 9931, 9941, 9951, 9961, 9971, 9981, 9991, 10001, 10011,
                          10021, 10031, 10041, 10051, 10061, 10071})


def training_seeds(metadata: dict) -> set[int]:
    """Every simulator seed a checkpoint's metadata says its data came from."""
    found: set[int] = set()

    def add(v: object) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int):
            found.add(v)
        elif isinstance(v, float) and v.is_integer():
            found.add(int(v))
        elif isinstance(v, (list, tuple)):
            for x in v:
                add(x)
        elif isinstance(v, dict) and "seed" in v:  # e.g. {"dir": ..., "seed": 0}
            add(v["seed"])

    for k in SEED_KEYS:
        if k in metadata:
            add(metadata[k])
    for section in SEED_SECTIONS:
        where = metadata.get(section)
        if isinstance(where, dict):
            for k in (*SEED_KEYS, "seed", "seeds"):
                if k in where:
                    add(where[k])
        elif isinstance(where, list):  # e.g. [{"dir": ..., "seed": 0}, ...]
            add(where)
    return found


class SeedLeakError(Exception):
    """The held-out heats were generated with a seed the model was trained on."""


def check_heldout_seed(heldout_seed: int | None, metadata: dict) -> list[str]:
    """Raise SeedLeakError on a shared seed; return warnings when the check is impossible."""
    seeds = training_seeds(metadata)
    if heldout_seed is not None and heldout_seed in seeds:
        raise SeedLeakError(
            f"held-out data seed {heldout_seed} is one of the checkpoint's training data seeds "
            f"{sorted(seeds)}: evaluate on heats generated with a seed the model never saw")
    warnings = []
    if not seeds:
        warnings.append("the checkpoint metadata records no training data seed: cannot verify "
                        "that the held-out heats are unseen")
    if heldout_seed is None:
        warnings.append("the held-out heat set records no seed: cannot verify it is unseen")
    return warnings


@dataclass
class StrandSeries:
    """One strand's decoded readings (time order) and the labels of the window ending at each."""

    strand: str
    ts: np.ndarray  # [N] float64
    values: np.ndarray  # [N, F] float32, decoded like the daemon
    labels: np.ndarray  # [N, K] uint8

    def __len__(self) -> int:
        return len(self.ts)


def load_series(heats: HeatSet, channels: Sequence[str], defect_types: Sequence[str]
                ) -> tuple[list[StrandSeries], dict[str, int]]:
    """Per-strand decoded series with labels (docs/labels.md) and counts of what was fixed."""
    from streamer.training.windows import load_segments

    segs = load_segments(heats, defect_types=defect_types, channels=list(channels))
    out, dropped, replaced = [], 0, 0
    fill = TcFill(channels)
    for s in segs:
        v, keep, n = decode_series(s.values, channels, fill)
        replaced += n
        dropped += int((~keep).sum())
        out.append(StrandSeries(s.strand, s.ts[keep], v[keep], s.labels[keep]))
    return out, {"readings_rejected": dropped, "tc_values_filled": replaced}


def truth_events(table: Any) -> list[TruthEvent]:  # a pyarrow Table of events or nuisances
    return [TruthEvent(e["event_id"], e["strand"], e["type"], float(e["onset_ts"]),
                       float(e["critical_ts"])) for e in table.to_pylist()]
