"""Wire formats (JSON, versioned by the field ``v``) and their JSON Schemas."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema shipped as ``streamer/formats/schemas/{name}.schema.json``."""
    text = resources.files("streamer.formats").joinpath("schemas", f"{name}.schema.json").read_text()
    return json.loads(text)
