"""Turn one Kafka record into a validated reading, or a reason it goes to the dead-letter topic.

Never raises on bad input: every failure is a :class:`Rejected` with a machine-readable
``reason`` and a human ``detail``, so the daemon keeps running whatever it is fed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, starmap
from operator import attrgetter, itemgetter
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import orjson
from msgspec.structs import astuple

from streamer.channels import PROCESS_CHANNELS, STRAND_ID_RE, TC_VALID_RANGE
from streamer.consume.tc_fill import TcFill

MAX_MESSAGE_BYTES = 64 * 1024
SEQ_MAX = 2**63 - 1  # seq is stored as int64

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
    values: np.ndarray  # float32 [F] in the model's channel order, degraded TCs filled
    degraded: tuple[str, ...]  # thermocouples filled by their row mean (streamer.consume.tc_fill)


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
        self.tc_fill = TcFill(self.channels)
        self._tc_idx = self.tc_fill.tc_idx
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
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= SEQ_MAX:
            return Rejected("schema", f"seq must be a non-negative 64-bit integer, got {seq!r}")
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
                filled = self.tc_fill.row_mean(arr)
                if filled is None:
                    return Rejected("range", "every thermocouple of a row is outside "
                                    f"{TC_VALID_RANGE} degC or missing")
                degraded = filled
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
    degraded: dict[int, tuple[str, ...]]  # row in this batch -> thermocouples filled
    rejected: list[tuple[int, Rejected]]


FIELDS = ("v", "strand", "heat", "ts", "seq", "values")
_FIELD_SET = frozenset(FIELDS)
# What msgspec raises on input it will not take: DecodeError/ValidationError (ValueErrors),
# UnicodeDecodeError (a ValueError too) for bad UTF-8, RecursionError on deep nesting.
_TYPED_ERRORS = (ValueError, RecursionError)
_STR_HEAT = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_SEQ = Annotated[int, msgspec.Meta(ge=0, le=SEQ_MAX)]
_TS = Annotated[float, msgspec.Meta(ge=0.0)]  # msgspec's floats are finite: out of range raises


def typed_reading(channels: Sequence[str]) -> type[msgspec.Struct]:
    """A msgspec Struct of one reading for ``channels``, as strict as the per-record path.

    It takes only what :meth:`ReadingDecoder.decode` accepts unchanged: ``v`` exactly the
    integer 1, strings, ``heat`` 1..64 characters, ``seq`` an integer in [0, 2**63), ``ts`` a
    number >= 0, each channel a number (an integer becomes a float, as ``np.array`` makes
    it). Unknown keys are refused, not skipped: msgspec skips a value without orjson's
    checks (UTF-8, number range), so only a fully typed document is known to parse the same.
    Everything refused (nulls, bools, extra channels, 1.0 for ``v``...) goes the dict way.
    """
    attrs = [f"c{i}" for i in range(len(channels))]
    values = msgspec.defstruct("TypedValues", [(a, float) for a in attrs],
                               rename=dict(zip(attrs, channels)), forbid_unknown_fields=True,
                               gc=False)
    return msgspec.defstruct("TypedReading", [
        ("v", Literal[1]), ("strand", str), ("heat", _STR_HEAT), ("ts", _TS), ("seq", _SEQ),
        ("values", values)], forbid_unknown_fields=True, gc=False)


@dataclass(slots=True)
class _Candidates:
    """The records still on the fast path: input index, key and top-level fields, as columns.

    ``typed``: the records came from the msgspec decoder, so ``v``, heat, ts and seq are
    already checked and ``values`` holds Structs of floats (else orjson dicts, unchecked).
    """

    idx: list[int]
    keys: list[bytes | None]
    vs: list[Any]
    strands: list[Any]
    heats: list[Any]
    ts: list[Any]
    seqs: list[Any]
    values: list[Any]
    typed: bool = False

    def keep(self, mask: Iterable[object]) -> _Candidates:
        m = list(mask)
        return _Candidates(*(list(compress(col, m)) for col in (
            self.idx, self.keys, self.vs, self.strands, self.heats, self.ts, self.seqs,
            self.values)), typed=self.typed)


def _orjson_keys(names: Sequence[str]) -> list[str]:
    """``names`` as the string objects orjson's key cache returns for them."""
    return list(orjson.loads(orjson.dumps(dict.fromkeys(names))))


def _types(col: list[Any]) -> set[type]:
    return set(map(type, col))


def _empty(n_ch: int) -> DecodedBatch:
    return DecodedBatch([], [], [], np.zeros(0), np.zeros(0, np.int64),
                        np.zeros((0, n_ch), np.float32), {}, [])


class BatchDecoder(ReadingDecoder):
    """Decodes a whole poll at once, with no Python bytecode per reading on the usual path.

    The per-record Python work of a record-by-record decoder (field checks, building the
    channel row from the dict) cost as much as the Kafka client itself. Here, per record,
    there is one msgspec decode into a typed Struct (:func:`typed_reading`: the type and
    bounds checks of ts, seq, heat and every value happen in its C code, and no dict is
    built) and C-level passes over the poll: ``map`` of attrgetters for the fields, a
    ``struct.pack`` of each row's floats; then numpy range checks over the whole batch.

    Records the typed decoder refuses (a null, an extra channel, a bool...) take the
    previous columnar path: ``orjson.loads`` and itemgetters of the dict, ``set(map(type,
    ...))`` type checks, ``struct.pack`` (which also turns away anything but a number). Each
    stage tries the whole poll in one go and only on an irregularity looks at records one
    by one to set the odd ones aside. A record set aside by both (bad JSON, a null, a bool,
    a thermocouple out of range, a key mismatch...) is decoded by
    :meth:`ReadingDecoder.decode`, so all paths give the same answer and the same
    rejection reasons (property tests check it).
    """

    # Polls that skip the typed decoder after one where it refused most records: a sender
    # whose every reading carries extra channels (allowed; the typed decoder refuses them)
    # would otherwise pay a wasted msgspec parse per reading on top of the dict path.
    typed_pause_polls = 64

    def __init__(self, channels: list[str] | tuple[str, ...], max_bytes: int = MAX_MESSAGE_BYTES):
        super().__init__(channels, max_bytes)
        self._typed_pause = 0  # polls left that go straight to the dict path
        self._known: dict[str, bytes] = {}  # strand ids already validated -> key bytes
        lo = np.full(len(self.channels), -np.inf)
        hi = np.full(len(self.channels), np.inf)
        for i in self._process_idx:
            lo[i], hi[i] = PROCESS_BOUNDS[self.channels[i]]
        lo[self._tc_idx], hi[self._tc_idx] = self._lo, self._hi
        self._row_lo, self._row_hi = lo, hi
        self._bounded = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
        # a bool packs as 0.0 or 1.0: only where that is in range can one look valid
        self._bool_cols = np.flatnonzero(((lo <= 0) & (0 <= hi)) | ((lo <= 1) & (1 <= hi)))
        # orjson hands out cached key strings: looking those very objects up is an identity
        # check per key, not a string comparison (a third faster; equal strings work too)
        self._fields = [itemgetter(f) for f in _orjson_keys(FIELDS)]
        names = _orjson_keys(self.channels)
        self._pick = itemgetter(*names) if len(names) > 1 else (lambda d: (d[names[0]],))
        self._row = struct.Struct(f"{len(names)}d")
        self._typed = msgspec.json.Decoder(typed_reading(self.channels))
        self._typed_fields = [attrgetter(f) for f in FIELDS[1:]]

    def decode_batch(self, records: Sequence[tuple[bytes | None, bytes | None]]) -> DecodedBatch:
        return self.decode_columns([r[0] for r in records], [r[1] for r in records])

    def decode_columns(self, keys: list[bytes | None], values: list[bytes | None]
                       ) -> DecodedBatch:
        """:meth:`decode_batch` for keys and values given as two lists."""
        if self._typed_pause:
            self._typed_pause -= 1
            return self._decode_dicts(keys, values)
        out = _empty(len(self.channels))
        c = self._parse_typed(keys, values)
        if 2 * (len(values) - len(c.idx)) > len(values) >= 16:
            self._typed_pause = self.typed_pause_polls
        c = self._check_fields(c)
        if c.idx:
            self._fill(out, c)
        if len(out.order) == len(values):
            return out
        rest = sorted(set(range(len(values))).difference(out.order))
        if len(rest) == len(values):
            return self._decode_dicts(keys, values)
        other = self._decode_dicts([keys[i] for i in rest], [values[i] for i in rest])
        other.order = [rest[i] for i in other.order]
        other.rejected = [(rest[i], r) for i, r in other.rejected]
        return self._merge(out, other)

    def _decode_dicts(self, keys: list[bytes | None], values: list[bytes | None]
                      ) -> DecodedBatch:
        """The orjson columnar path, then the per-record one for what it sets aside."""
        out = _empty(len(self.channels))
        c = self._check_fields(self._parse(keys, values))
        if c.idx:
            self._fill(out, c)
        if len(out.order) < len(values):
            slow = sorted(set(range(len(values))).difference(out.order))
            self._merge_slow(keys, values, slow, out)
        return out

    def _fill(self, out: DecodedBatch, c: _Candidates) -> None:
        """Put the candidates whose values and ts are all in range into ``out``."""
        arr, c = self._to_array(c)
        ts = np.array(c.ts, dtype=np.float64)
        seq = np.array(c.seqs, dtype=np.int64)
        ok = self._in_range(arr, ts)
        if not c.typed:
            self._reject_bools(arr, c.values, ok)
        if ok.all():
            out.order, out.strands, out.heats = c.idx, c.strands, c.heats
            out.ts, out.seq, out.values = ts, seq, arr.astype(np.float32)
            return
        keep = np.flatnonzero(ok)
        out.order = [c.idx[j] for j in keep]
        out.strands = [c.strands[j] for j in keep]
        out.heats = [c.heats[j] for j in keep]
        out.ts, out.seq, out.values = ts[keep], seq[keep], arr[keep].astype(np.float32)

    def _in_range(self, arr: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Per row: every value finite and within its channel's bounds (NaN never is: a
        null or a degraded thermocouple goes the per-record way), ts finite and >= 0."""
        good = (arr >= self._row_lo) & (arr <= self._row_hi)
        ts_ok = np.isfinite(ts) & (ts >= 0)
        if good.all() and ts_ok.all() and (self._bounded or np.isfinite(arr).all()):
            return ts_ok
        return good.all(axis=1) & np.isfinite(arr).all(axis=1) & ts_ok

    # -- stages: each narrows the candidates; what it sets aside goes the per-record way ----

    def _parse_typed(self, keys: list[bytes | None], values: list[bytes | None]
                     ) -> _Candidates:
        """msgspec-decode every record into the typed Struct; those it refuses are left out."""
        idx, docs = self._load_typed(values)
        strands, heats, ts, seqs, vals = [list(map(get, docs)) for get in self._typed_fields]
        ks = keys if len(idx) == len(keys) else [keys[i] for i in idx]
        return _Candidates(idx, list(ks), [1] * len(idx), strands, heats, ts, seqs, vals,
                           typed=True)

    def _load_typed(self, values: list[bytes | None]) -> tuple[list[int], list[Any]]:
        """Input indices and Structs of the records the typed decoder takes.

        A refusal does not restart the poll: ``list.extend`` keeps what the ``map`` gave
        before the error, and the ``map`` goes on after the refused record. A poll with a
        faulty thermocouple's null in it costs one exception per such record, not a
        second decode of the poll.
        """
        if not values:
            return [], []
        if not self._all_loadable(values):
            return self._load_each(values, self._typed.decode, _TYPED_ERRORS)
        docs: list[Any] = []
        refused: list[int] = []
        it = map(self._typed.decode, values)
        while True:
            try:
                docs.extend(it)  # type: ignore[arg-type]
                break
            except _TYPED_ERRORS:
                refused.append(len(docs) + len(refused))
        if not refused:
            return list(range(len(values))), docs
        return sorted(set(range(len(values))).difference(refused)), docs

    def _parse(self, keys: list[bytes | None], values: list[bytes | None]) -> _Candidates:
        """``orjson.loads`` every record and pick its top-level fields."""
        idx = list(range(len(values)))
        docs = self._load_all(values)
        if docs is None:
            idx, docs = self._load_each(values, orjson.loads, orjson.JSONDecodeError)
        cols = self._pick_fields(docs)
        if cols is None:
            mask = [type(d) is dict and d.keys() >= _FIELD_SET for d in docs]
            idx, docs = list(compress(idx, mask)), list(compress(docs, mask))
            cols = self._pick_fields(docs) or [[] for _ in FIELDS]
        ks = keys if len(idx) == len(keys) else [keys[i] for i in idx]
        return _Candidates(idx, list(ks), *cols)

    def _all_loadable(self, values: list[bytes | None]) -> bool:
        """No tombstone, no empty value, none over ``max_bytes``: the whole poll can go to a
        JSON decoder in one pass (else record by record, leaving those out)."""
        return (None not in values and all(values)
                and max(map(len, values), default=0) <= self.max_bytes)  # type: ignore[arg-type]

    def _load_all(self, values: list[bytes | None]) -> list[Any] | None:
        if not values:
            return []
        if not self._all_loadable(values):
            return None
        try:
            return list(map(orjson.loads, values))  # type: ignore[arg-type]
        except orjson.JSONDecodeError:
            return None

    def _load_each(self, values: list[bytes | None], loads: Callable[[bytes], Any],
                   errors: type[Exception] | tuple[type[Exception], ...]
                   ) -> tuple[list[int], list[Any]]:
        idx: list[int] = []
        docs: list[Any] = []
        for i, v in enumerate(values):
            if v is None or not v or len(v) > self.max_bytes:
                continue
            try:
                docs.append(loads(v))
            except errors:
                continue
            idx.append(i)
        return idx, docs

    def _pick_fields(self, docs: list[Any]) -> list[list[Any]] | None:
        try:
            return [list(map(get, docs)) for get in self._fields]
        except (KeyError, TypeError):  # not an object, or a field missing
            return None

    def _check_fields(self, c: _Candidates) -> _Candidates:
        """Version, strand id, key, heat, seq and ts types: the whole poll, else each record."""
        if self._fields_regular(c):
            return c
        return c.keep(map(self._record_regular, c.keys, c.vs, c.strands, c.heats, c.ts, c.seqs))

    def _fields_regular(self, c: _Candidates) -> bool:
        if not c.idx:
            return True
        try:
            kbs = list(map(self._known.get, c.strands))
        except TypeError:  # an unhashable strand
            return False
        if None in kbs:
            kbs = list(map(self._key_of, c.strands))
            if None in kbs:
                return False
        if not (kbs == c.keys or all(k is None or k == kb for k, kb in zip(c.keys, kbs))):
            return False
        return c.typed or (
            c.vs.count(1) == len(c.vs)
            and _types(c.heats) == {str} and all(0 < len(h) <= 64 for h in set(c.heats))
            and _types(c.seqs) == {int} and min(c.seqs) >= 0 and max(c.seqs) <= SEQ_MAX
            and _types(c.ts) <= {float, int})

    def _record_regular(self, key: bytes | None, v: Any, strand: Any, heat: Any, ts: Any,
                        seq: Any) -> bool:
        kb = self._key_of(strand)
        return (kb is not None and v == 1 and (key is None or key == kb)
                and type(heat) is str and 0 < len(heat) <= 64
                and type(seq) is int and 0 <= seq <= SEQ_MAX
                and (type(ts) is float or type(ts) is int))

    def _key_of(self, strand: Any) -> bytes | None:
        """The key bytes of a valid strand id (validated once per id), else None."""
        if type(strand) is not str:
            return None
        kb = self._known.get(strand)
        if kb is None and STRAND_ID_RE.match(strand):
            kb = self._known[strand] = strand.encode()
        return kb

    def _to_array(self, c: _Candidates) -> tuple[np.ndarray, _Candidates]:
        """[m, F] float64 of the candidates' channel values. Typed: the Structs' floats in
        channel order. Dicts: looked up by name (any key order; extra channels ignored);
        ``struct`` packs ints and floats only (and bools: see :meth:`_reject_bools`), so a
        null, a string, a list... sets its record aside, as does a missing channel."""
        if c.typed:
            return self._pack(c.values, astuple), c
        try:
            return self._pack(c.values, self._pick), c
        except (KeyError, TypeError, struct.error):
            pass
        c = c.keep(map(self._packs, c.values))
        return self._pack(c.values, self._pick), c

    def _pack(self, values: list[Any], row: Callable[[Any], tuple[Any, ...]]) -> np.ndarray:
        """One ``struct.pack`` per row, joined: fewer instructions than one pack of the whole
        poll's values through ``chain``, which builds an n x F argument tuple (typed rows:
        ~3,200 instead of ~4,850 a reading, cachegrind)."""
        packed = b"".join(starmap(self._row.pack, map(row, values)))
        return np.frombuffer(packed).reshape(-1, len(self.channels))

    def _packs(self, values: Any) -> bool:
        if type(values) is not dict:
            return False
        try:
            self._row.pack(*self._pick(values))
        except (KeyError, struct.error):
            return False
        return True

    def _reject_bools(self, arr: np.ndarray, values: list[Any], ok: np.ndarray) -> None:
        """Clear ``ok`` for rows holding a JSON true/false (packed as 1.0/0.0) as a value."""
        if not self._bool_cols.size:
            return
        sub = arr[:, self._bool_cols]
        rows, cols = np.nonzero((sub == 0) | (sub == 1))
        for j, k in zip(rows.tolist(), self._bool_cols[cols].tolist()):
            if type(values[j][self.channels[k]]) is bool:
                ok[j] = False

    def _merge_slow(self, keys: list[bytes | None], values: list[bytes | None],
                    slow: list[int], out: DecodedBatch) -> None:
        """Decode the unusual records one by one and merge them back in input order."""
        extra: list[tuple[int, Reading]] = []
        for i in slow:
            r = self.decode(keys[i], values[i])
            if isinstance(r, Rejected):
                out.rejected.append((i, r))
            else:
                self._known.setdefault(r.strand, r.strand.encode())
                extra.append((i, r))
        if not extra:
            return
        rs = [r for _, r in extra]
        merged = self._merge(out, DecodedBatch(
            [i for i, _ in extra], [r.strand for r in rs], [r.heat for r in rs],
            np.array([r.ts for r in rs]), np.asarray([r.seq for r in rs], np.int64),
            np.stack([r.values for r in rs]),
            {row: r.degraded for row, r in enumerate(rs) if r.degraded}, []))
        out.order, out.strands, out.heats = merged.order, merged.strands, merged.heats
        out.values, out.ts, out.seq = merged.values, merged.ts, merged.seq
        out.degraded = merged.degraded

    @staticmethod
    def _merge(a: DecodedBatch, b: DecodedBatch) -> DecodedBatch:
        """``a`` and ``b`` (their ``order`` and ``rejected`` indexing the same input) as one
        batch in input order."""
        rejected = sorted(a.rejected + b.rejected, key=itemgetter(0))
        if not b.order or not a.order:
            out = a if a.order else b
            out.rejected = rejected
            return out
        idx = a.order + b.order
        perm = np.argsort(np.asarray(idx), kind="stable")
        strands, heats = a.strands + b.strands, a.heats + b.heats
        by_input = {a.order[r]: d for r, d in a.degraded.items()}
        by_input.update((b.order[r], d) for r, d in b.degraded.items())
        order = [idx[j] for j in perm]
        return DecodedBatch(
            order, [strands[j] for j in perm], [heats[j] for j in perm],
            np.concatenate([a.ts, b.ts])[perm], np.concatenate([a.seq, b.seq])[perm],
            np.concatenate([a.values, b.values])[perm],
            {row: by_input[i] for row, i in enumerate(order) if i in by_input}, rejected)
