"""JSON records other commands read: a reader with one-line errors, and a writer's default.

:func:`read_json_object` is the JSON twin of :mod:`streamer.yaml_file`, shared by the tools
that read records other commands wrote (the baselines' threshold records, evaluation
reports); its messages start ``"{path}: "`` and are raised as the caller's own error class.
:func:`json_default` is the ``default=`` of every record written with numpy values in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: str | Path, error_cls: type[Exception], what: str
                     ) -> dict[str, Any]:
    """The file's top-level object. Raises ``error_cls``: ``"{path}: cannot read (reason)"``,
    or ``"{path}: not {what} (why)"`` for malformed JSON or a top level that is no object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error_cls(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error_cls(f"{path}: not {what} ({exc})") from None
    if not isinstance(data, dict):
        raise error_cls(f"{path}: not {what} (not an object)")
    return data


def json_default(o: Any) -> Any:
    """``json.dump(..., default=json_default)``: numpy scalars and arrays, sets (sorted) and
    tuples as plain JSON."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return sorted(o) if isinstance(o, set) else list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
