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

from typing import Any

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
