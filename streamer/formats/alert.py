"""The alert message: one evaluation of one strand's window.

Topic key: the strand id. Value: JSON, version ``v`` = 1; schema in
``streamer/formats/schemas/alert.schema.json``; field meanings in docs/alerts.md.
Delivery is at-least-once: a subscriber drops duplicates by (strand, seq, model_id).
"""

from __future__ import annotations

from typing import Any

import orjson

ALERT_VERSION = 1
LEVELS: tuple[str, ...] = ("normal", "watch", "warning", "alarm")


def encode_alert(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
