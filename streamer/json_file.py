"""Read a JSON file whose top level is an object, with one-line errors a user can act on.

The JSON twin of :mod:`streamer.yaml_file`, shared by the tools that read records other
commands wrote (the baselines' threshold records, evaluation reports). Messages start
``"{path}: "`` and are raised as the caller's own error class.
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
