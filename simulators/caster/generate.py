"""``generate(config) -> HeatSet``: the whole simulated plant as heat-file tables."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pyarrow as pa

from simulators.caster.config import ALL_NUISANCE_KINDS, SimConfig, make_config
from simulators.caster.plan import make_plan
from simulators.caster.strand import Record, StrandData, simulate_strand
from simulators.heatfile import EVENT_SCHEMA, HeatSet
from streamer.channels import DEFECT_TYPES, ChannelLayout

GENERATOR_VERSION = 1
LABEL_RULE = ("a window ending at t is positive for defect type k iff an event of type k on "
              "that strand has onset_ts <= t <= critical_ts (docs/labels.md)")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return None if math.isnan(f) else round(f, 4)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _abs_times(detail: Any, start_ts: float) -> Any:
    """Detail keys ending in ``_ts`` hold s-from-start internally; make them epoch s."""
    if isinstance(detail, dict):
        out = {}
        for k, v in detail.items():
            if k.endswith("_ts"):
                if isinstance(v, list):
                    out[k] = [None if x is None else x + start_ts for x in v]
                elif v is not None:
                    out[k] = v + start_ts
                else:
                    out[k] = None
            else:
                out[k] = _abs_times(v, start_ts)
        return out
    if isinstance(detail, list):
        return [_abs_times(v, start_ts) for v in detail]
    return detail


def _records_table(recs: list[tuple[StrandData, Record, str]], heat_ids: dict[int, list[str]],
                   start_ts: float) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for sd, rec, rid in recs:
        i = min(len(sd.t) - 1, max(0, int(np.searchsorted(sd.t, rec.onset))))
        rows["event_id"].append(rid)
        rows["strand"].append(sd.strand)
        rows["heat"].append(heat_ids[sd.caster][int(sd.heat_index[i])])
        rows["type"].append(rec.kind)
        rows["onset_ts"].append(start_ts + rec.onset)
        rows["critical_ts"].append(start_ts + rec.critical)
        rows["row"].append(rec.row)
        rows["col"].append(rec.col)
        rows["severity"].append(float(rec.severity))
        rows["detail"].append(json.dumps(_jsonable(_abs_times(rec.detail, start_ts)),
                                         sort_keys=True))
    return pa.Table.from_pydict(rows, schema=EVENT_SCHEMA)


def generate(config: SimConfig | dict[str, Any] | None = None, *, progress: bool = False,
             **overrides: Any) -> HeatSet:
    """Simulate every strand of every caster and return the heat-file tables.

    ``config`` is a SimConfig, a plain mapping (validated like a YAML file) or None for
    the defaults; keyword overrides apply on top, e.g. ``generate(cfg, seed=7)`` for a
    held-out set. Deterministic: equal configs give identical tables.
    """
    if not isinstance(config, SimConfig):
        cfg = make_config(config or {}, **overrides)
    elif overrides:
        cfg = make_config(config.model_dump(), **overrides)
    else:
        cfg = config
    t_start = time.perf_counter()
    layout = ChannelLayout(tc_rows=cfg.tc_rows, tc_cols=cfg.tc_cols)
    channels = list(layout.channels)
    plans = {c: make_plan(cfg, c) for c in range(1, cfg.casters + 1)}
    heat_ids = {c: p.heat_ids for c, p in plans.items()}
    strands = sorted(cfg.strand_ids(), key=lambda x: x[2])

    it: Any = strands
    if progress:
        from tqdm import tqdm

        it = tqdm(strands, desc="strands", unit="strand", leave=False)
    datas: list[StrandData] = [simulate_strand(cfg, plans[c], s) for c, s, _ in it]

    # readings table, rows sorted by strand then seq
    ts = np.concatenate([cfg.start_ts + d.t for d in datas])
    seq = np.concatenate([np.arange(len(d.t), dtype=np.int64) for d in datas])
    s_idx = np.concatenate([np.full(len(d.t), i, dtype=np.int32) for i, d in enumerate(datas)])
    strand_col = pa.DictionaryArray.from_arrays(
        pa.array(s_idx), pa.array([d.strand for d in datas])).cast(pa.string())
    all_heats: list[str] = []
    offs: dict[int, int] = {}
    for c in sorted(heat_ids):
        offs[c] = len(all_heats)
        all_heats += heat_ids[c]
    h_idx = np.concatenate([d.heat_index.astype(np.int32) + offs[d.caster] for d in datas])
    heat_col = pa.DictionaryArray.from_arrays(pa.array(h_idx), pa.array(all_heats)).cast(pa.string())
    values = np.concatenate([d.values for d in datas], axis=0)
    cols: dict[str, Any] = {"ts": pa.array(ts, pa.float64()), "strand": strand_col,
                            "heat": heat_col, "seq": pa.array(seq, pa.int64())}
    for j, ch in enumerate(channels):
        cols[ch] = pa.array(np.ascontiguousarray(values[:, j]), pa.float32())
    readings = pa.table(cols)

    ev, nu = [], []
    for d in datas:
        ev += [(d, r, f"{d.strand}-E{i + 1:04d}") for i, r in enumerate(d.events)]
        nu += [(d, r, f"{d.strand}-N{i + 1:04d}") for i, r in enumerate(d.nuisances)]
    events = _records_table(ev, heat_ids, cfg.start_ts)
    nuisances = _records_table(nu, heat_ids, cfg.start_ts)

    ev_counts = {k: sum(1 for _, r, _ in ev if r.kind == k) for k in DEFECT_TYPES}
    nu_counts = {k: sum(1 for _, r, _ in nu if r.kind == k) for k in ALL_NUISANCE_KINDS}
    heats_meta = []
    for c, p in plans.items():
        for h, hid in enumerate(p.heat_ids):
            heats_meta.append({"heat": hid, "caster": f"C{c}",
                               "start_ts": cfg.start_ts + float(p.starts[h]),
                               "end_ts": cfg.start_ts + float(p.ends[h])})
    manifest = {
        "generator": "caster-sim generate",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "config": cfg.model_dump(mode="json"),
        "channels": channels,
        "units": layout.units,
        "hz": cfg.hz,
        "tc_rows": cfg.tc_rows,
        "tc_cols": cfg.tc_cols,
        "row_depths_mm": cfg.depths(),
        "col_pitch_mm": cfg.col_pitch_mm,
        "mould_length_mm": cfg.mould_length_mm,
        "start_ts": cfg.start_ts,
        "strands": [d.strand for d in datas],
        "casters": [f"C{c}" for c in plans],
        "heats": heats_meta,
        "defect_types": list(DEFECT_TYPES),
        "nuisance_kinds": list(ALL_NUISANCE_KINDS),
        "label_rule": LABEL_RULE,
        "counts": {"strands": len(datas), "readings": readings.num_rows,
                   "events": ev_counts, "nuisances": nu_counts,
                   # drawn at the configured rates but left out: no free time on the strand
                   "dropped": {k: sum(d.dropped.get(k, 0) for d in datas)
                               for k in (*DEFECT_TYPES, *ALL_NUISANCE_KINDS)
                               if any(d.dropped.get(k, 0) for d in datas)}},
        "generation_s": round(time.perf_counter() - t_start, 3),
    }
    return HeatSet(manifest=manifest, readings=readings, events=events, nuisances=nuisances)
