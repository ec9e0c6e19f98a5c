"""Labelled windows cut from heat files, on the fly: no window is ever materialised in bulk.

A strand's readings become one or more *segments*: contiguous runs of readings of the
heats that belong to one split. A window lies inside one segment (so no reading of a
validation heat is ever in a training window); the first windows of a segment are short,
as after a restart of the daemon, and use the model's variable-length path.

Label of the window ending at step i for defect type k (docs/labels.md): 1 iff an event
of type k on that strand has ``onset_ts <= ts[i] <= critical_ts``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from simulators.heatfile import HeatSet
from streamer.channels import DEFECT_TYPES


@dataclass
class Segment:
    """Contiguous readings of one strand: the unit windows are cut from."""

    strand: str
    heats: np.ndarray  # [N] heat id per step (object array of str)
    ts: np.ndarray  # [N] float64
    values: np.ndarray  # [N, F] float32
    labels: np.ndarray  # [N, K] uint8: label of the window ending at each step

    def __len__(self) -> int:
        return len(self.ts)


def label_steps(ts: np.ndarray, intervals: dict[str, list[tuple[float, float]]],
                defect_types: Sequence[str] = DEFECT_TYPES) -> np.ndarray:
    """[N, K] labels from (onset, critical) intervals per defect type."""
    y = np.zeros((len(ts), len(defect_types)), dtype=np.uint8)
    for k, t in enumerate(defect_types):
        for onset, critical in intervals.get(t, []):
            lo, hi = np.searchsorted(ts, [onset, critical], side="left")
            hi = np.searchsorted(ts, critical, side="right")
            y[lo:hi, k] = 1
    return y


def load_segments(heats: HeatSet, defect_types: Sequence[str] = DEFECT_TYPES,
                  channels: Sequence[str] | None = None) -> list[Segment]:
    """One segment per strand (whole series), labels attached; channels in the given order."""
    if channels is not None and list(channels) != heats.channels:
        missing = [c for c in channels if c not in heats.channels]
        if missing:
            raise ValueError(f"heat set lacks channels {missing}")
    events = heats.events.to_pylist()
    out = []
    for strand in heats.strands:
        ts, _, values = heats.strand_arrays(strand)
        if channels is not None and list(channels) != heats.channels:
            idx = [heats.channels.index(c) for c in channels]
            values = values[:, idx]
        import pyarrow.compute as pc

        t = heats.readings.filter(pc.equal(heats.readings.column("strand"), strand))
        order = np.argsort(t.column("seq").to_numpy(), kind="stable")
        heat_ids = np.asarray(t.column("heat").to_pylist(), dtype=object)[order]
        intervals: dict[str, list[tuple[float, float]]] = {}
        for e in events:
            if e["strand"] == strand:
                intervals.setdefault(e["type"], []).append((e["onset_ts"], e["critical_ts"]))
        out.append(Segment(strand, heat_ids, ts, values.astype(np.float32, copy=False),
                           label_steps(ts, intervals, defect_types)))
    return out


def split_by_heat(segments: list[Segment], val_fraction: float, seed: int
                  ) -> tuple[list[Segment], list[Segment]]:
    """Assign whole heats to train or validation; return the contiguous runs of each."""
    heats = sorted({h for s in segments for h in np.unique(s.heats)})
    rng = np.random.default_rng(seed)
    n_val = max(1, round(len(heats) * val_fraction)) if val_fraction > 0 else 0
    val = set(rng.choice(heats, size=n_val, replace=False).tolist()) if n_val else set()
    train_out, val_out = [], []
    for s in segments:
        is_val = np.fromiter((h in val for h in s.heats), dtype=bool, count=len(s))
        edges = np.flatnonzero(np.diff(is_val.astype(np.int8))) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(s)]):
            part = Segment(s.strand, s.heats[lo:hi], s.ts[lo:hi], s.values[lo:hi],
                           s.labels[lo:hi])
            (val_out if is_val[lo] else train_out).append(part)
    return train_out, val_out


def window_index(segments: list[Segment], min_fill: int, stride: int = 1
                 ) -> np.ndarray:
    """[M, 2] (segment, end step) of every window with at least ``min_fill`` readings."""
    parts = [np.stack([np.full(len(r), i), r], 1)
             for i, s in enumerate(segments)
             if len(r := np.arange(min_fill - 1, len(s), stride)) > 0]
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


def gather_windows(segments: list[Segment], index: np.ndarray, window: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [B, window, F] (valid steps first, zero padding), lengths [B], y [B, K]."""
    F = segments[0].values.shape[1]
    x = np.zeros((len(index), window, F), dtype=np.float32)
    lengths = np.empty(len(index), dtype=np.int64)
    y = np.empty((len(index), segments[0].labels.shape[1]), dtype=np.float32)
    for b, (si, end) in enumerate(index):
        seg = segments[si]
        start = max(0, end - window + 1)
        n = end - start + 1
        x[b, :n] = seg.values[start:end + 1]
        lengths[b] = n
        y[b] = seg.labels[end]
    return x, lengths, y


def iter_strand_windows(seg: Segment, window: int, min_fill: int, batch: int = 1024
                        ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every window of a segment, in time order, in batches: (end steps, x, lengths)."""
    ends = np.arange(min_fill - 1, len(seg))
    for i in range(0, len(ends), batch):
        e = ends[i:i + batch]
        idx = np.stack([np.zeros_like(e), e], 1)
        x, lengths, _ = gather_windows([seg], idx, window)
        yield e, x, lengths
