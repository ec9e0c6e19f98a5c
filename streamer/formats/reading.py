"""The reading message: one strand's channel values at one instant.

Topic key: the strand id (UTF-8). Value: a JSON object, version ``v`` = 1::

    {"v": 1, "strand": "C1-S2", "heat": "C1-H0007", "ts": 1764180000.0, "seq": 4711,
     "values": {"casting_speed": 1.21, "mould_level": -1.8, "superheat": 27.4,
                "water_flow": 3890.0, "water_dt": 7.1, "tc_r1_c1": 151.2, ...}}

- ``ts``: event time, Unix epoch seconds (float, UTC).
- ``seq``: per-strand sequence number, strictly increasing; a reading whose ``seq`` is not
  above the strand's last one is a duplicate or out of order.
- ``values``: channel name -> number. A thermocouple may be ``null`` (no value); extra
  channels are allowed and ignored by a model that does not use them.

The JSON Schema is ``streamer/formats/schemas/reading.schema.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

READING_VERSION = 1


def encode_reading(
    strand: str, heat: str, ts: float, seq: int, values: dict[str, float | None]
) -> bytes:
    """Serialise one reading; NaN values become null (JSON has no NaN)."""
    clean = {k: (None if v is None or v != v else float(v)) for k, v in values.items()}
    return orjson.dumps(
        {"v": READING_VERSION, "strand": strand, "heat": heat, "ts": ts, "seq": int(seq),
         "values": clean}
    )


def reading_key(strand: str) -> bytes:
    return strand.encode("utf-8")


def decode_json(raw: bytes) -> Any:
    """orjson decode; raises orjson.JSONDecodeError (a ValueError) on bad bytes."""
    return orjson.loads(raw)


# strand/heat ids for ReadingEncoder.encode: one for all rows, one per row, or (codes, names)
Ids = str | Sequence[str] | tuple[np.ndarray, Sequence[str]]


class ReadingEncoder:
    """Encode many readings of one channel list at once; the replay's hot loop.

    Produces the same JSON as :func:`encode_reading` (same fields, same order; NaN and
    infinities become ``null``) with one difference: float32 values are written in their
    shortest float32 form (``151.2``, not ``151.1999969482422``), which parses back to the
    identical float32. The work is a few C-level passes per chunk (orjson serialises the
    whole numpy block, bytes are split and re-joined) instead of one dict per row, about
    2.5x faster than building dicts. Feed chunks of a few hundred rows for best speed.
    """

    def __init__(self, channels: Sequence[str]):
        if not channels:
            raise ValueError("no channels")
        self.channels = tuple(channels)
        keys = [orjson.dumps(c) + b":" for c in self.channels]
        self._first_key = keys[0]
        self._rest = [b"," + k for k in keys[1:]]
        self._tokens: dict[str, bytes] = {}

    def _token(self, s: str) -> bytes:
        tok = self._tokens.get(s)
        if tok is None:
            tok = self._tokens[s] = orjson.dumps(s)
        return tok

    def _column(self, ids: Ids, n: int) -> list[bytes]:
        if isinstance(ids, str):
            return [self._token(ids)] * n
        if isinstance(ids, tuple) and len(ids) == 2 and isinstance(ids[0], np.ndarray):
            codes, names = ids
            toks = np.array([self._token(x) for x in names], dtype=object)
            return toks[codes].tolist()
        return [self._token(x) for x in ids]  # type: ignore[union-attr]

    def encode(
        self,
        ts: np.ndarray,
        seq: np.ndarray,
        values: np.ndarray,
        strands: Ids,
        heats: Ids,
    ) -> list[bytes]:
        """One JSON message per row. ``values`` is [N, C] in this encoder's channel order.
        ``strands``/``heats``: one id for all rows, one id per row, or ``(codes, names)``
        (an int array of N indexes into a list of ids: the fastest). ``ts`` must be finite
        (ValueError otherwise)."""
        values = np.ascontiguousarray(values)
        n = len(ts)
        if n == 0:
            return []
        c = len(self.channels)
        if values.shape != (n, c):
            raise ValueError(f"values has shape {values.shape}, expected ({n}, {c})")
        ts = np.ascontiguousarray(ts, dtype=np.float64)
        if not np.isfinite(ts).all():
            raise ValueError("ts holds NaN or infinite values")
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        opt = orjson.OPT_SERIALIZE_NUMPY
        # "[[a,b],[c,d]]" -> [a, b, c, d]: numbers never contain "," or "]" or "[".
        vtok = orjson.dumps(values, option=opt)[2:-2].replace(b"],[", b",").split(b",")
        ttok = orjson.dumps(ts, option=opt)[1:-1].split(b",")
        stok = orjson.dumps(np.ascontiguousarray(seq, dtype=np.int64), option=opt)[1:-1].split(b",")
        s_col = self._column(strands, n)
        h_col = self._column(heats, n)
        # Each row's head closes the previous row ("}}" + newline; orjson never writes a
        # raw newline), so one join builds every message and one split separates them.
        head = (b'}}\n{"v":%d,"strand":%%b,"heat":%%b,"ts":%%b,"seq":%%b,"values":{'
                % READING_VERSION) + self._first_key
        prefixes: list[bytes] = ([b""] + self._rest) * n
        prefixes[::c] = map(head.__mod__, zip(s_col, h_col, ttok, stok))
        pieces: list[bytes] = [b""] * (2 * n * c)
        pieces[::2] = prefixes
        pieces[1::2] = vtok
        return (b"".join(pieces) + b"}}")[3:].split(b"\n")
