"""Turn one Kafka record into a validated reading, or a reason it goes to the dead-letter topic.

Never raises on bad input: every failure is a :class:`Rejected` with a machine-readable
``reason`` and a human ``detail``, so the daemon keeps running whatever it is fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import orjson

from streamer.channels import PROCESS_CHANNELS, STRAND_ID_RE, TC_VALID_RANGE, parse_tc_name

MAX_MESSAGE_BYTES = 64 * 1024

# Plausibility bounds for process tags; a value outside is a broken sender, not a reading.
PROCESS_BOUNDS: dict[str, tuple[float, float]] = {
    "casting_speed": (0.0, 12.0),
    "mould_level": (-250.0, 250.0),
    "superheat": (-50.0, 200.0),
    "water_flow": (0.0, 50_000.0),
    "water_dt": (-50.0, 100.0),
}


@dataclass(slots=True)
class Reading:
    strand: str
    heat: str
    ts: float
    seq: int
    values: np.ndarray  # float32 [F] in the model's channel order, degraded TCs replaced
    degraded: tuple[str, ...]  # channels replaced by their row mean


@dataclass(slots=True)
class Rejected:
    reason: str  # short code: invalid_json, schema, missing_channels, ...
    detail: str


class ReadingDecoder:
    """Decoder bound to one model's ordered channel list."""

    def __init__(self, channels: list[str] | tuple[str, ...], max_bytes: int = MAX_MESSAGE_BYTES):
        self.channels = tuple(channels)
        self.max_bytes = max_bytes
        self._process_idx = [i for i, c in enumerate(self.channels) if c in PROCESS_CHANNELS]
        rows: dict[int, list[int]] = {}
        for i, c in enumerate(self.channels):
            rc = parse_tc_name(c)
            if rc is not None:
                rows.setdefault(rc[0], []).append(i)
        self._rows = [np.array(ix, dtype=np.intp) for _, ix in sorted(rows.items())]
        self._tc_idx = (np.concatenate(self._rows) if self._rows
                        else np.zeros(0, dtype=np.intp))
        self._lo, self._hi = TC_VALID_RANGE

    def decode(self, key: bytes | None, value: bytes | None) -> Reading | Rejected:
        if value is None:
            return Rejected("tombstone", "record has no value (tombstone)")
        if len(value) == 0:
            return Rejected("empty", "record value is empty")
        if len(value) > self.max_bytes:
            return Rejected("oversized", f"value is {len(value)} bytes; limit {self.max_bytes}")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return Rejected("invalid_json", f"not valid JSON: {exc}")
        if not isinstance(doc, dict):
            return Rejected("schema", f"top level must be an object, got {type(doc).__name__}")
        if doc.get("v") != 1:
            return Rejected("version", f"unsupported format version v={doc.get('v')!r}; expected 1")
        strand = doc.get("strand")
        if not isinstance(strand, str) or not STRAND_ID_RE.match(strand):
            return Rejected("strand", f"strand id {strand!r} is not a valid id "
                            f"(pattern {STRAND_ID_RE.pattern})")
        if key is not None:
            try:
                key_s = key.decode("utf-8")
            except UnicodeDecodeError:
                return Rejected("key", "record key is not UTF-8")
            if key_s != strand:
                return Rejected("key", f"record key {key_s!r} differs from strand {strand!r}")
        heat = doc.get("heat")
        if not isinstance(heat, str) or not heat or len(heat) > 64:
            return Rejected("schema", "heat must be a non-empty string of at most 64 chars")
        ts = doc.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts < 0:
            return Rejected("schema", f"ts must be a non-negative finite number, got {ts!r}")
        seq = doc.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            return Rejected("schema", f"seq must be a non-negative integer, got {seq!r}")
        values = doc.get("values")
        if not isinstance(values, dict):
            return Rejected("schema", "values must be an object of channel -> number")
        return self._values(strand, heat, float(ts), seq, values)

    def _values(self, strand: str, heat: str, ts: float, seq: int,
                values: dict[str, object]) -> Reading | Rejected:
        raw = [values.get(c) for c in self.channels]
        missing = [c for c, v in zip(self.channels, raw) if v is None and c not in values]
        if missing:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            return Rejected("missing_channels",
                            f"{len(missing)} of the model's {len(self.channels)} channels "
                            f"missing: {shown}")
        bad = [c for c, v in zip(self.channels, raw)
               if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            return Rejected("type", f"non-numeric values for {', '.join(bad[:8])}")
        try:
            arr = np.array([math.nan if v is None else v for v in raw], dtype=np.float64)
        except OverflowError:
            return Rejected("range", "a value is too large for a float")
        for i in self._process_idx:
            v = arr[i]
            lo, hi = PROCESS_BOUNDS[self.channels[i]]
            if not (lo <= v <= hi):  # also false for NaN
                return Rejected("range", f"{self.channels[i]}={raw[i]!r} outside [{lo}, {hi}]")
        degraded: tuple[str, ...] = ()
        if self._tc_idx.size:
            tc = arr[self._tc_idx]
            ok = (tc >= self._lo) & (tc <= self._hi)  # NaN compares false: degraded
            if not ok.all():
                names = []
                for row in self._rows:
                    r = arr[row]
                    good = (r >= self._lo) & (r <= self._hi)
                    if not good.any():
                        return Rejected("range", "every thermocouple of a row is outside "
                                        f"{TC_VALID_RANGE} degC or missing")
                    if not good.all():
                        arr[row[~good]] = r[good].mean()
                        names += [self.channels[i] for i in row[~good]]
                degraded = tuple(names)
        if not np.isfinite(arr).all():  # huge ints overflow to inf in float32 below
            return Rejected("range", "non-finite value")
        return Reading(strand, heat, ts, seq, arr.astype(np.float32), degraded)


@dataclass(slots=True)
class DecodedBatch:
    """Readings of one poll as columns (no per-reading objects) plus the rejected records.

    ``order`` holds the index into the input of every good reading, in input order;
    ``rejected`` pairs an input index with its reason.
    """

    order: list[int]
    strands: list[str]
    heats: list[str]
    ts: np.ndarray  # [n] float64
    seq: np.ndarray  # [n] int64
    values: np.ndarray  # [n, F] float32
    degraded: dict[int, tuple[str, ...]]  # row in this batch -> channels replaced
    rejected: list[tuple[int, Rejected]]


class BatchDecoder(ReadingDecoder):
    """Decodes a whole poll at once; the per-record work is one ``orjson.loads`` and a few
    dict lookups, then one numpy conversion and vectorised checks for the whole batch.
    Anything unusual (a null, a bad type, a thermocouple out of range, an unknown strand
    id) falls back to :meth:`ReadingDecoder.decode` for that record, so both paths give
    the same answer (a property test checks it)."""

    def __init__(self, channels: list[str] | tuple[str, ...], max_bytes: int = MAX_MESSAGE_BYTES):
        super().__init__(channels, max_bytes)
        self._known: dict[str, bytes] = {}  # strand ids already validated -> key bytes
        lo = np.full(len(self.channels), -np.inf)
        hi = np.full(len(self.channels), np.inf)
        for i in self._process_idx:
            lo[i], hi[i] = PROCESS_BOUNDS[self.channels[i]]
        lo[self._tc_idx], hi[self._tc_idx] = self._lo, self._hi
        self._row_lo, self._row_hi = lo, hi

    def decode_batch(self, records: list[tuple[bytes | None, bytes | None]]) -> DecodedBatch:
        channels, n_ch = self.channels, len(self.channels)
        known, loads, max_bytes = self._known, orjson.loads, self.max_bytes
        order: list[int] = []
        strands: list[str] = []
        heats: list[str] = []
        tss: list[float] = []
        seqs: list[int] = []
        rows: list[list[object]] = []
        slow: list[int] = []
        for i, (key, value) in enumerate(records):
            if value is None or not value or len(value) > max_bytes:
                slow.append(i)
                continue
            try:
                doc = loads(value)
                strand = doc["strand"]
                kb = known.get(strand)
                if kb is None and type(strand) is str and STRAND_ID_RE.match(strand):
                    kb = known[strand] = strand.encode()  # validated once per strand
                heat, ts, seq, values = doc["heat"], doc["ts"], doc["seq"], doc["values"]
                if (kb is None or doc["v"] != 1 or (key is not None and key != kb)
                        or type(heat) is not str or not 0 < len(heat) <= 64
                        or type(seq) is not int or seq < 0
                        or (type(ts) is not float and type(ts) is not int)):
                    slow.append(i)
                    continue
                row = (list(values.values()) if tuple(values) == channels
                       else [values[c] for c in channels])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                slow.append(i)
                continue
            order.append(i)
            strands.append(strand)
            heats.append(heat)
            tss.append(ts)
            seqs.append(seq)
            rows.append(row)
        arr: np.ndarray | None = None
        if rows:
            try:
                arr = np.array(rows, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):  # a null, a string...: row by row
                arr = None
            if arr is None or arr.shape != (len(rows), n_ch):
                slow.extend(order)
                order, strands, heats, tss, seqs, rows = [], [], [], [], [], []
                arr = None
        keep = None
        if arr is not None:
            ts_arr = np.asarray(tss, dtype=np.float64)
            ok = ((arr >= self._row_lo) & (arr <= self._row_hi)).all(axis=1)
            ok &= np.isfinite(ts_arr) & (ts_arr >= 0)
            if not ok.all():
                bad = np.flatnonzero(~ok)
                slow.extend(order[j] for j in bad)
                keep = np.flatnonzero(ok)
        out = DecodedBatch([], [], [], np.zeros(0), np.zeros(0, np.int64),
                           np.zeros((0, n_ch), np.float32), {}, [])
        if arr is not None:
            if keep is not None:
                out.order = [order[j] for j in keep]
                out.strands = [strands[j] for j in keep]
                out.heats = [heats[j] for j in keep]
                out.ts = np.asarray(tss, dtype=np.float64)[keep]
                out.seq = np.asarray(seqs, dtype=np.int64)[keep]
                out.values = arr[keep].astype(np.float32)
            else:
                out.order, out.strands, out.heats = order, strands, heats
                out.ts = np.asarray(tss, dtype=np.float64)
                out.seq = np.asarray(seqs, dtype=np.int64)
                out.values = arr.astype(np.float32)
        if slow:
            self._merge_slow(records, sorted(slow), out)
        return out

    def _merge_slow(self, records: list[tuple[bytes | None, bytes | None]], slow: list[int],
                    out: DecodedBatch) -> None:
        """Decode the unusual records one by one and merge them back in input order."""
        extra: list[tuple[int, Reading]] = []
        for i in slow:
            r = self.decode(*records[i])
            if isinstance(r, Rejected):
                out.rejected.append((i, r))
            else:
                self._known.setdefault(r.strand, r.strand.encode())
                extra.append((i, r))
        if not extra:
            return
        idx = out.order + [i for i, _ in extra]
        perm = np.argsort(np.asarray(idx), kind="stable")
        values = np.concatenate([out.values, np.stack([r.values for _, r in extra])])[perm]
        ts = np.concatenate([out.ts, [r.ts for _, r in extra]])[perm]
        seq = np.concatenate([out.seq, np.asarray([r.seq for _, r in extra], np.int64)])[perm]
        strands = out.strands + [r.strand for _, r in extra]
        heats = out.heats + [r.heat for _, r in extra]
        degraded_by_input = {i: r.degraded for i, r in extra if r.degraded}
        out.order = [idx[j] for j in perm]
        out.strands = [strands[j] for j in perm]
        out.heats = [heats[j] for j in perm]
        out.values, out.ts, out.seq = values, ts, seq
        out.degraded = {row: degraded_by_input[i] for row, i in enumerate(out.order)
                        if i in degraded_by_input}
