"""``KEY=VALUE`` lists from the command line, parsed one way for every flag that takes them.

``caster-sim replay`` reads ``--strand-map``, ``--producer-option``, ``--sim`` and ``--map``
(a historian column map) this way; only the error each caller raises differs, so the
caller passes a function that builds it. No heavy imports: CLI modules import it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def parse_pairs(items: str | Iterable[str], error: Callable[[str], Exception]) -> dict[str, str]:
    """``"a=1, b=2"`` (or several such strings) -> ``{"a": "1", "b": "2"}``.

    Whitespace around keys and values is dropped, empty parts are skipped, a later key
    wins. A part without ``=`` or with an empty key or value raises ``error(part)``.
    """
    out: dict[str, str] = {}
    for item in [items] if isinstance(items, str) else items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise error(part)
            out[key.strip()] = value.strip()
    return out
