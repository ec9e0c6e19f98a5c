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
        arr = np.array([math.nan if v is None else v for v in raw], dtype=np.float64)
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
