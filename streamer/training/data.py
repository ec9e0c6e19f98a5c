"""Training data: heat sets in, daemon-decoded segments and a weighted window sampler out.

Steps, in order:

1. :func:`load_sources` reads heat folders (``--data``) or simulates one (``--simulate``);
   every source keeps its manifest's seed and config for the checkpoint metadata.
2. :func:`prepare_segments` turns each source into per-strand segments
   (:func:`streamer.training.windows.load_segments`, labels from the events), decodes the
   readings exactly like the daemon (:func:`streamer.consume.series.decode_series`), and
   tags each step with a sampling category (positive per type, near an event, during a
   look-alike, during another hard negative, background).
   With several sources, strand and heat ids are prefixed ``s{i}:`` so that equal ids from
   different folders stay apart in the split.
3. :class:`WindowSampler` draws an epoch's windows from the training segments with
   per-category weights and slices them on the fly, batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulators.heatfile import HeatSet
from streamer.channels import (
    DEFECT_TYPES,
    parse_tc_name,
    tc_name,
)
from streamer.consume.series import decode_series
from streamer.consume.tc_fill import TcFill
from streamer.evaluation.rolling import rmean
from streamer.evaluation.rules import RuleSettings, level_swing, steps
from streamer.training.windows import Segment, load_segments

# Sampling categories of a step (the window ending there); one per step, first match wins:
# positive of type k (0..K-1), IGNORED, then NEAR_EVENT, LOOK_ALIKE, HARD_NEGATIVE, BACKGROUND.
NEAR_EVENT, HARD_NEGATIVE, BACKGROUND = "near_event", "hard_negative", "background"
# During (or hard_after_s after) a nuisance of a look-alike kind: a hard negative that mimics a
# defect's signature (near-sticker, near-crack), apart from sensor faults and process changes.
# Only steps of the kinds passed as ``look_alike_kinds`` get it; with none they stay
# HARD_NEGATIVE, as before the category existed.
LOOK_ALIKE = "look_alike"
IGNORED = "ignored"  # steps left out of the loss (``evident_labels``); never drawn
IGNORE = 2  # label value of such a step in TrainSegment.labels (0 / 1 are the labels)

# The smallest sticker rise (DOMAIN.md; near-stickers stay under it), for evident_step; the
# crack and slag thresholds there are the classical rules' (RuleSettings).
STICKER_RISE_DEGC = 6.0


@dataclass
class Source:
    """One heat set and where it came from."""

    name: str  # folder path or "simulate"
    heats: HeatSet
    seed: int | None
    sim_config: dict[str, Any] | None


@dataclass
class TrainSegment(Segment):
    """A segment plus the sampling category of each step (index into ``categories``)."""

    category: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    source: int = 0
    # relative draw weight of each step within its category (None: all equal); see
    # :func:`severity_weights`
    weight: np.ndarray | None = None


def load_sources(data_dirs: Sequence[str | Path] = (), *, simulate: bool = False,
                 sim_config: str | Path | None = None, sim_overrides: dict[str, Any] | None = None
                 ) -> list[Source]:
    """Heat sets from folders, or one simulated set. Raises HeatFileError / ConfigError."""
    from simulators.heatfile import read_heats

    out: list[Source] = []
    for d in data_dirs:
        hs = read_heats(d)
        cfg = hs.manifest.get("config")
        seed = cfg.get("seed") if isinstance(cfg, dict) else None
        out.append(Source(str(d), hs, seed, cfg if isinstance(cfg, dict) else None))
    if simulate:
        from simulators.caster import generate, load_config

        cfg = load_config(sim_config, **(sim_overrides or {}))
        hs = generate(cfg)
        out.append(Source("simulate", hs, cfg.seed, cfg.model_dump(mode="json")))
    return out


def _intervals(rows: list[dict[str, Any]], strand: str, kinds: Sequence[str] | None = None
               ) -> list[tuple[float, float]]:
    """(start, end) of each row on ``strand``; with ``kinds``, of the rows of those types only."""
    return [(r["onset_ts"], r["critical_ts"]) for r in rows if r["strand"] == strand
            and (kinds is None or r["type"] in kinds)]


def _mark(ts: np.ndarray, intervals: Sequence[tuple[float, float]], before: float, after: float
          ) -> np.ndarray:
    m = np.zeros(len(ts), dtype=bool)
    for a, b in intervals:
        lo = np.searchsorted(ts, a - before, side="left")
        hi = np.searchsorted(ts, b + after, side="right")
        m[lo:hi] = True
    return m


def categorise(seg: Segment, events: list[tuple[float, float]],
               nuisances: list[tuple[float, float]], *, near_before_s: float,
               near_after_s: float, hard_after_s: float,
               look_alikes: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """Category per step, an index into ``category_names``; the later assignment wins.

    ``look_alikes`` are the intervals of the look-alike nuisances (also in ``nuisances`` or
    not: they take precedence over the other hard negatives either way)."""
    K = seg.labels.shape[1]
    idx = {n: i for i, n in enumerate(category_names(["_"] * K))}
    cat = np.full(len(seg), idx[BACKGROUND], dtype=np.int8)
    cat[_mark(seg.ts, nuisances, 0.0, hard_after_s)] = idx[HARD_NEGATIVE]
    if look_alikes:
        cat[_mark(seg.ts, look_alikes, 0.0, hard_after_s)] = idx[LOOK_ALIKE]
    cat[_mark(seg.ts, events, near_before_s, near_after_s)] = idx[NEAR_EVENT]
    cat[(seg.labels == IGNORE).any(1)] = idx[IGNORED]
    pos = (seg.labels == 1).any(1)
    cat[pos] = np.argmax(seg.labels[pos] == 1, axis=1)
    return cat


def evident_step(values: np.ndarray, channels: Sequence[str], event: dict[str, Any],
                 lo: int, hi: int, hz: float = 1.0) -> int:
    """First step in [lo, hi) at which the event's defining signature is in the readings
    (``hi`` if it never is): a sticker's origin thermocouple (3 s mean) has risen
    STICKER_RISE_DEGC over its level before onset; a crack's origin thermocouple is 8 degC
    under its 65 s running mean; the mould level has swung more than 20 mm within 60 s (the
    rule system's thresholds and windows, :class:`RuleSettings`)."""
    if hi <= lo:
        return hi
    rs = RuleSettings()
    ch = list(channels)
    kind = event["type"]
    if kind in ("sticker", "crack"):
        name = tc_name(int(event["row"]), int(event["col"]))
        if name not in ch:
            return lo
        tc = values[:, ch.index(name)].astype(np.float64)
        if kind == "sticker":
            base = tc[max(0, lo - 5):lo].mean() if lo > 0 else tc[0]
            ok = rmean(tc[:hi], steps(rs.smooth_s, hz))[lo:] - base >= STICKER_RISE_DEGC
        else:
            below = rmean(tc[:hi], steps(rs.crack_mean_s, hz)) - tc[:hi]
            ok = below[lo:] >= rs.crack_drop_degc
    elif kind == "slag" and "mould_level" in ch:
        level = values[:hi, ch.index("mould_level")].astype(np.float64)
        ok = level_swing(level, hz, rs)[lo:] > rs.level_swing_mm
    else:
        return lo
    first = np.flatnonzero(ok)
    return lo + int(first[0]) if len(first) else hi


def mark_unevident(seg: Segment, events: list[dict[str, Any]], channels: Sequence[str],
                   defect_types: Sequence[str]) -> np.ndarray:
    """Labels with IGNORE from each event's onset until its signature is evident.

    Before that a window cannot be told from a hard negative (a near-sticker's rise, a level
    burst) by anything in the readings; a positive label there teaches the model to alarm on
    the hard negatives, a negative one to be late. Left out of the loss, the model learns
    both from the windows that can be told apart. Evaluation keeps the full onset..critical
    labels (docs/labels.md)."""
    labels = seg.labels.copy()
    for e in events:
        if e["type"] not in defect_types:
            continue
        k = list(defect_types).index(e["type"])
        lo = int(np.searchsorted(seg.ts, e["onset_ts"], side="left"))
        hi = int(np.searchsorted(seg.ts, e["critical_ts"], side="right"))
        ev = evident_step(seg.values, channels, e, lo, hi)
        labels[lo:ev, k] = np.where(labels[lo:ev, k] == 1, IGNORE, labels[lo:ev, k])
    return labels


def severity_weights(seg: Segment, events: list[dict[str, Any]],
                     power: dict[str, float]) -> np.ndarray | None:
    """Per-step draw weight: ``severity ** -power[type]`` inside an event of a type in
    ``power`` (onset..critical), 1 elsewhere; None when no event of the segment is weighted.

    Why: a sticker's severity is its first row's rise (6-20 degC); the stickers the default
    model missed and the boosted trees caught were faint, and drawn uniformly a faint one's
    windows are no likelier than a strong one's (16 of the default's 101 training stickers
    are under 8 degC). Tried with p = 2, it did not help (docs/training.md, "Faint stickers
    drawn more often"). The weights only act inside a category (``WindowSampler``
    renormalises them there), so the category's share is as set."""
    rows = [e for e in events if e["type"] in power and power[e["type"]] != 0]
    if not rows:
        return None
    w = np.ones(len(seg), dtype=np.float64)
    for e in rows:
        sev = float(e["severity"])
        if not np.isfinite(sev) or sev <= 0:
            raise ValueError(f"severity_power: event {e['type']} on {seg.strand} at "
                             f"{e['onset_ts']} has severity {sev}; a weight needs a positive "
                             "severity")
        lo = int(np.searchsorted(seg.ts, e["onset_ts"], side="left"))
        hi = int(np.searchsorted(seg.ts, e["critical_ts"], side="right"))
        w[lo:hi] = sev ** -float(power[e["type"]])
    return w


def prepare_segments(sources: list[Source], channels: Sequence[str],
                     defect_types: Sequence[str] = DEFECT_TYPES, *, near_before_s: float = 60.0,
                     near_after_s: float = 180.0, hard_after_s: float = 120.0,
                     evident_types: Sequence[str] = (), look_alike_kinds: Sequence[str] = (),
                     severity_power: dict[str, float] | None = None
                     ) -> tuple[list[TrainSegment], dict[str, int]]:
    """Decoded, labelled, categorised segments of every source (one per strand).

    Every step of an event is positive (docs/labels.md), except for the types in
    ``evident_types``: their steps before the signature is evident are IGNORE
    (:func:`mark_unevident`). ``severity_power`` weights the draws inside events of those
    types by their severity (:func:`severity_weights`)."""
    unknown = set(evident_types) - set(defect_types)
    if unknown:
        raise ValueError(f"evident_types: unknown defect types {sorted(unknown)}")
    power = dict(severity_power or {})
    unknown = set(power) - set(defect_types)
    if unknown:
        raise ValueError(f"severity_power: unknown defect types {sorted(unknown)}")
    out: list[TrainSegment] = []
    stats = {"readings": 0, "readings_dropped": 0}
    fill = TcFill(channels)
    for si, src in enumerate(sources):
        have = src.heats.channels
        missing = [c for c in channels if c not in have]
        if missing:
            raise ValueError(f"{src.name}: heat set lacks the model's channels {missing[:8]}"
                             f"{' ...' if len(missing) > 8 else ''} (it has {len(have)} channels)")
        prefix = f"s{si}:" if len(sources) > 1 else ""
        events = src.heats.events.to_pylist()  # once per source, not once per strand
        nuisances = src.heats.nuisances.to_pylist()
        for seg in load_segments(src.heats, defect_types, list(channels)):
            v, keep, _ = decode_series(seg.values, channels, fill)
            stats["readings"] += len(seg)
            stats["readings_dropped"] += int((~keep).sum())
            seg = Segment(seg.strand, seg.heats[keep], seg.ts[keep], v[keep], seg.labels[keep])
            if evident_types:
                rows = [e for e in events
                        if e["strand"] == seg.strand and e["type"] in evident_types]
                seg.labels = mark_unevident(seg, rows, channels, defect_types)
            cat = categorise(seg, _intervals(events, seg.strand),
                             _intervals(nuisances, seg.strand),
                             near_before_s=near_before_s, near_after_s=near_after_s,
                             hard_after_s=hard_after_s,
                             look_alikes=_intervals(nuisances, seg.strand, look_alike_kinds))
            weight = severity_weights(seg, [e for e in events if e["strand"] == seg.strand],
                                      power) if power else None
            heats = seg.heats if not prefix else np.array([prefix + h for h in seg.heats],
                                                            dtype=object)
            out.append(TrainSegment(prefix + seg.strand, heats, seg.ts, seg.values, seg.labels,
                                    category=cat, source=si, weight=weight))
    return out, stats


def split_train_segments(segments: list[TrainSegment], val_fraction: float, seed: int
                         ) -> tuple[list[TrainSegment], list[TrainSegment]]:
    """:func:`streamer.training.windows.split_by_heat`, keeping categories and sources."""
    from streamer.training.windows import split_by_heat

    tr, va = split_by_heat(segments, val_fraction, seed)
    by_strand = {s.strand: s for s in segments}

    def attach(parts: list[Segment]) -> list[TrainSegment]:
        res = []
        for p in parts:
            full = by_strand[p.strand]
            lo = int(np.searchsorted(full.ts, p.ts[0]))
            weight = None if full.weight is None else full.weight[lo:lo + len(p)]
            res.append(TrainSegment(p.strand, p.heats, p.ts, p.values, p.labels,
                                    category=full.category[lo:lo + len(p)], source=full.source,
                                    weight=weight))
        return res

    return attach(tr), attach(va)


def category_names(defect_types: Sequence[str]) -> list[str]:
    return [*defect_types, NEAR_EVENT, LOOK_ALIKE, HARD_NEGATIVE, BACKGROUND, IGNORED]


class WindowSampler:
    """Weighted draws of (segment, end step) over training segments, sliced batch by batch.

    ``fractions`` maps a category name to its share of the drawn windows (categories absent
    from the data get nothing; the rest are renormalised). Within a category every window is
    equally likely. A batch is either full-length (``window`` steps) or, with probability
    ``short_fraction``, all of one length L drawn from [min_fill, window) — the daemon's
    partial windows after a restart or a gap; equal lengths keep the LSTM on its fast
    unpacked path, which gives the same logits as the padded, packed one. A drawn window that
    ends fewer than L readings into its segment is held back and batched at the end of the
    epoch with the other such windows, sorted by length, each batch at its shortest window's
    length. Before, such a window cut its whole batch to its own length: with 360-reading
    windows on 24 h of heats 87 % of batches were cut (16 % of 120-reading ones), and a model
    with context (``columns.baseline``) rarely saw it.
    """

    def __init__(self, segments: list[TrainSegment], defect_types: Sequence[str], window: int,
                 min_fill: int, fractions: dict[str, float], short_fraction: float,
                 augment: Augment | None = None):
        self.segments = segments
        self.window, self.min_fill, self.short_fraction = window, min_fill, short_fraction
        self.augment = augment
        names = category_names(defect_types)
        seg_idx, ends, cats, rel = [], [], [], []
        for i, s in enumerate(segments):
            e = np.arange(min_fill - 1, len(s))
            seg_idx.append(np.full(len(e), i, dtype=np.int64))
            ends.append(e)
            cats.append(s.category[e])
            rel.append(np.ones(len(e)) if s.weight is None else s.weight[e])
        self.seg_idx = np.concatenate(seg_idx) if seg_idx else np.zeros(0, np.int64)
        self.ends = np.concatenate(ends) if ends else np.zeros(0, np.int64)
        cat = np.concatenate(cats) if cats else np.zeros(0, np.int8)
        within = np.concatenate(rel) if rel else np.zeros(0)
        if len(cat) == 0:
            raise ValueError("no training windows: every segment is shorter than "
                             f"min_fill={min_fill}")
        self.counts = {n: int((cat == c).sum()) for c, n in enumerate(names)}
        share = np.array([fractions.get(n, 0.0) if self.counts[n] else 0.0 for n in names])
        if share.sum() <= 0:
            raise ValueError("sampling fractions give no weight to any category present in "
                             "the data")
        share = share / share.sum()
        self.shares = {n: float(share[c]) for c, n in enumerate(names)}
        w = np.zeros(len(cat))
        for c in range(len(names)):
            m = cat == c
            if m.any():
                w[m] = share[c] * within[m] / within[m].sum()
        self.p = w / w.sum()

    def __len__(self) -> int:
        return len(self.ends)

    def epoch(self, n_windows: int, batch_size: int, rng: np.random.Generator
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (x [B, L, F] float32, y [B, K] float32) for one epoch of ``n_windows``."""
        draws = rng.choice(len(self.p), size=n_windows, replace=True, p=self.p)
        held: list[np.ndarray] = []  # too early in their segment for their batch's length
        for b in range(0, n_windows, batch_size):
            pick = draws[b:b + batch_size]
            L = self.window
            if self.short_fraction > 0 and self.min_fill < self.window \
                    and rng.random() < self.short_fraction:  # (min_fill == window: none)
                L = int(rng.integers(self.min_fill, self.window))
            early = self.ends[pick] + 1 < L
            if early.any():
                held.append(pick[early])
                pick = pick[~early]
            if len(pick):
                yield self._batch(pick, L, rng)
        if held:
            rest = np.concatenate(held)
            rest = rest[np.argsort(self.ends[rest], kind="stable")]
            for b in range(0, len(rest), batch_size):
                pick = rest[b:b + batch_size]
                yield self._batch(pick, int(self.ends[pick].min()) + 1, rng)

    def _batch(self, pick: np.ndarray, length: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.gather(self.seg_idx[pick], self.ends[pick], length)
        if self.augment is not None:
            self.augment(x, rng)
        return x, y

    def gather(self, seg_idx: np.ndarray, ends: np.ndarray, length: int
               ) -> tuple[np.ndarray, np.ndarray]:
        F = self.segments[0].values.shape[1]
        K = self.segments[0].labels.shape[1]
        x = np.empty((len(ends), length, F), dtype=np.float32)
        y = np.empty((len(ends), K), dtype=np.float32)
        for b, (i, e) in enumerate(zip(seg_idx, ends)):
            s = self.segments[i]
            x[b] = s.values[e - length + 1:e + 1]
            y[b] = s.labels[e]
        return x, y


class Augment:
    """Label-preserving changes to training windows (in place), so that the model cannot
    recognise a training event by its absolute levels and has to learn its shape in time.

    - every channel of a window is shifted by a constant: thermocouples by a common
      N(0, ``tc_common_sd``) plus their own N(0, ``tc_sd``) (degC), process tags by
      N(0, ``process_sd[channel]``) in their units;
    - with probability ``mirror``, the thermocouple columns are mirrored (column c <-> C+1-c
      in every row): the mould face is symmetric, a defect can sit in any column;
    - with probability ``roll``, the thermocouple columns are shifted round by 1..C-1
      (column c -> c + k mod C in every row): a defect is the same defect in any column,
      and ~100 training stickers leave some columns with a handful each. Neighbours stay
      neighbours except across the wrap, where a wide sticker's spread is split;
    - with probability ``start_spike``, one thermocouple reads ``spike_degc`` (uniform) too
      high for the first 1-3 readings of the window: a sensor spike just before the window.
      The model's relative input (x - x_first) turns such a window into a deep drop of one
      thermocouple, i.e. a crack look-alike, and the simulator's own spikes give only one or
      two such windows each.
    """

    def __init__(self, channels: Sequence[str], *, tc_sd: float, tc_common_sd: float,
                 process_sd: dict[str, float], mirror: float, start_spike: float = 0.0,
                 spike_degc: tuple[float, float] = (30.0, 80.0), roll: float = 0.0):
        F = len(channels)
        self.tc = np.array([parse_tc_name(c) is not None for c in channels])
        self.sd = np.where(self.tc, tc_sd, 0.0).astype(np.float32)
        for c, sd in process_sd.items():
            if c in channels:
                self.sd[list(channels).index(c)] = sd
        self.common = tc_common_sd
        self.mirror, self.roll = mirror, roll
        self.start_spike, self.spike_degc = start_spike, spike_degc
        self.tc_idx = np.flatnonzero(self.tc)
        pos = {parse_tc_name(c): i for i, c in enumerate(channels) if parse_tc_name(c)}
        cols = max((c for _, c in pos), default=0)
        self.perm = _column_perm(pos, F, lambda c: cols + 1 - c)
        # rolls[k - 1]: channel permutation that reads column c from column c + k (mod C)
        rolls = [_column_perm(pos, F, lambda c, k=k: (c - 1 + k) % cols + 1)
                 for k in range(1, cols)]
        self.rolls = None if any(r is None for r in rolls) else rolls

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> None:
        B, _, F = x.shape
        off = rng.standard_normal((B, F)).astype(np.float32) * self.sd
        off += np.where(self.tc, rng.standard_normal((B, 1)).astype(np.float32) * self.common, 0)
        x += off[:, None, :]
        if self.perm is not None and self.mirror > 0:
            flip = rng.random(B) < self.mirror
            if flip.any():
                x[flip] = x[flip][:, :, self.perm]
        if self.rolls and self.roll > 0:
            for b in np.flatnonzero(rng.random(B) < self.roll):
                x[b] = x[b][:, self.rolls[rng.integers(len(self.rolls))]]
        if self.start_spike > 0 and len(self.tc_idx):
            for b in np.flatnonzero(rng.random(B) < self.start_spike):
                c = self.tc_idx[rng.integers(len(self.tc_idx))]
                n = int(rng.integers(1, 4))
                x[b, :n, c] += np.float32(rng.uniform(*self.spike_degc))


def _column_perm(pos: dict[tuple[int, int], int], n_channels: int,
                 source_col: Callable[[int], int]) -> np.ndarray | None:
    """Channel permutation whose TC (r, c) reads TC (r, source_col(c)); None without a full grid."""
    perm = np.arange(n_channels)
    for (r, c), i in pos.items():
        j = pos.get((r, source_col(c)))
        if j is None:
            return None
        perm[i] = j
    return perm


def relative_stats_from_segments(segments: list[Segment], window: int, n_starts: int = 4000
                                 ) -> np.ndarray:
    """Per-channel std of (x_t - x_first) over the steps of training windows (model
    ``relative_input``): windows starting at evenly spaced steps of the given (training)
    segments, every step of each window. Constant channels get 1."""
    total = sum(max(len(s) - window + 1, 0) for s in segments)
    if total == 0:
        raise ValueError(f"no full window of {window} readings in the training heats")
    step = max(1, total // n_starts)
    sq, n = None, 0
    for s in segments:
        starts = np.arange(0, len(s) - window + 1, step)
        if len(starts) == 0:
            continue
        view = np.lib.stride_tricks.sliding_window_view(s.values, window, axis=0)[starts]
        d = (view - view[:, :, :1]).astype(np.float64)  # [S, F, window]
        s1 = d.sum((0, 2))
        s2 = (d * d).sum((0, 2))
        sq = (s1, s2) if sq is None else (sq[0] + s1, sq[1] + s2)
        n += d.shape[0] * d.shape[2]
    mean = sq[0] / n
    std = np.sqrt(np.maximum(sq[1] / n - mean * mean, 0.0))
    return np.where(std < 1e-6, 1.0, std).astype(np.float32)


def input_stats_from_segments(segments: list[Segment]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean/std over every reading of the given (training) segments.

    Every reading of a training segment lies in some training window (a window never
    crosses a split), so these are the statistics of the training windows' steps; no
    validation reading enters them.
    """
    import torch

    from streamer.model.lstm import SteelDefectLSTM

    v = np.concatenate([s.values for s in segments], axis=0)
    mean, std = SteelDefectLSTM.fit_input_stats(torch.from_numpy(v)[None])
    return mean.numpy(), std.numpy()
