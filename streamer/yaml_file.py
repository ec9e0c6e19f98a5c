"""Read a YAML file whose top level is a mapping, with one-line errors a user can act on.

Shared by the daemon's settings (:func:`streamer.config.load_settings`) and the caster
simulator's config (:func:`simulators.caster.config.load_config`) so that both word a
missing, unreadable, malformed or non-mapping file the same way. Every message starts
``"{what} {path}: "`` and is raised as the caller's own error class, so each command keeps
its exception type and exit path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml_mapping(path: str | Path, error_cls: type[Exception], what: str, *,
                      not_mapping: str = "top level must be a mapping") -> dict[str, Any]:
    """The file's top-level mapping; an empty file gives ``{}``.

    Raises ``error_cls(message)`` with message ``"{what} {path}: ..."``:
    ``not found``; ``cannot be read (reason)``; ``not valid YAML (first line of the parser's
    error)``; or ``not_mapping`` when the top level is a list, a scalar, etc.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_cls(f"{what} {p}: not found") from None
    except OSError as exc:
        raise error_cls(f"{what} {p}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise error_cls(f"{what} {p}: cannot be read (not UTF-8: {exc.reason})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise error_cls(f"{what} {p}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error_cls(f"{what} {p}: {not_mapping}")
    return data
