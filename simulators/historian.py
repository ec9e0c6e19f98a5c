"""Plant historian CSV exports -> a HeatSet that replay can publish.

One CSV file holds one strand: a timestamp column plus one column per sensor. Column names
are mapped to channel names with a column map (``channel: CSV column``; a YAML file or a
``ts=Timestamp,casting_speed=CastSpeed`` string); a column already named like a channel
needs no mapping. The strand and heat ids come from the caller (the command line).

- timestamps: ISO 8601 (``2025-01-01T00:00:01Z``, ``2025-01-01 00:00:01.5+01:00``; naive
  times are taken in ``timezone``, UTC by default) or epoch numbers (seconds, or
  milliseconds with ``ts_unit="ms"``);
- values: numbers; an empty cell, ``NaN``, ``null``, ``NA`` or ``n/a`` is "no value" (null on
  the wire); anything else is an error naming the line and the column;
- rows are sorted by time (stable) and numbered ``seq`` = 0, 1, 2, ... in that order;
- every channel of the layout must be present and no column may be left unexplained
  (neither mapped, a channel, nor listed in ``ignore_columns``): both are errors that list
  what was expected and what was found.

Everything is parsed and checked before anything is published.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any

import numpy as np

from simulators.heatfile import EVENT_SCHEMA, HeatSet
from simulators.keyvalue import parse_pairs
from streamer.channels import STRAND_ID_RE, ChannelLayout

TS = "ts"
MISSING_TOKENS = frozenset({"", "nan", "null", "none", "na", "n/a", "#n/a"})


class HistorianError(ValueError):
    """A historian CSV or column map that cannot be used; ``str()`` is one line."""


def parse_column_map(spec: str | Iterable[str]) -> dict[str, str]:
    """``"ts=Timestamp,casting_speed=CastSpeed"`` (or several such strings) -> dict."""
    return parse_pairs(spec, lambda part: HistorianError(
        f"column map entry {part!r} is not channel=Column"))


def load_column_map(path: str | Path) -> dict[str, str]:
    """A YAML (or JSON) mapping ``channel: CSV column``."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistorianError(f"column map {p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistorianError(f"column map {p}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        raise HistorianError(f"column map {p}: not valid YAML ({first})") from None
    if not isinstance(data, dict) or not data:
        raise HistorianError(f"column map {p}: expected a mapping 'channel: CSV column'")
    bad = {k: v for k, v in data.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise HistorianError(f"column map {p}: entries must be 'channel: column name' "
                             f"strings, got {bad}")
    return {k.strip(): v.strip() for k, v in data.items()}


def _parse_ts(raw: list[str], lines: list[int], column: str, unit: str, tz: Any,
              path: Path) -> np.ndarray:
    n = len(raw)
    out = np.empty(n, dtype=np.float64)
    try:
        out[:] = np.asarray(raw, dtype=np.float64)
        numeric = True
    except ValueError:
        numeric = False
    if numeric:
        bad = np.flatnonzero(~np.isfinite(out))
        if len(bad):
            k = int(bad[0])
            raise HistorianError(f"{path}: line {lines[k]}, column {column!r} (ts): "
                                 f"{raw[k]!r} is not a timestamp")
        if unit == "ms":
            out /= 1000.0
        return out
    for k, s in enumerate(raw):
        text = s.strip()
        try:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            d = datetime.fromisoformat(text)
        except ValueError:
            raise HistorianError(
                f"{path}: line {lines[k]}, column {column!r} (ts): {s!r} is not an ISO 8601 "
                "time or epoch number") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=tz)
        out[k] = d.timestamp()
    return out


def _parse_values(raw: list[str], lines: list[int], column: str, channel: str,
                  path: Path) -> np.ndarray:
    cleaned = ["nan" if s.strip().lower() in MISSING_TOKENS else s for s in raw]
    try:
        arr = np.asarray(cleaned, dtype=np.float64)
    except ValueError:
        arr = None
    if arr is not None:
        bad = np.flatnonzero(np.isinf(arr))
        if not len(bad):
            return arr
        first = int(bad[0])
    else:
        first = -1
        for k, s in enumerate(cleaned):
            try:
                float(s)
            except ValueError:
                first = k
                break
    label = f"column {column!r}" + (f" ({channel})" if column != channel else "")
    raise HistorianError(f"{path}: line {lines[first]}, {label}: {raw[first]!r} is not a "
                         "number")


def read_historian_csv(
    path: str | Path,
    *,
    strand: str,
    heat: str | None = None,
    column_map: Mapping[str, str] | None = None,
    layout: ChannelLayout | None = None,
    ignore_columns: Iterable[str] = (),
    ts_unit: str = "s",
    timezone: str = "UTC",
    delimiter: str = ",",
) -> HeatSet:
    """Read one strand's historian export; raise HistorianError (one line) on any problem.

    heat: the heat id of every row (default: the file name without extension).
    column_map: channel (or ``ts``) -> CSV column name.
    """
    path = Path(path)
    layout = layout or ChannelLayout()
    channels = list(layout.channels)
    if not STRAND_ID_RE.match(strand or ""):
        raise HistorianError(f"strand id {strand!r} is not valid (letters, digits, _.:-; at "
                             "most 64 characters)")
    heat = heat if heat is not None else path.stem
    if not heat or len(heat) > 64:
        raise HistorianError(f"heat id {heat!r} must have 1 to 64 characters")
    if ts_unit not in ("s", "ms"):
        raise HistorianError(f"ts unit must be 's' or 'ms', not {ts_unit!r}")
    try:
        tz: Any = dt_timezone.utc if timezone.upper() == "UTC" else _zone(timezone)
    except Exception:  # noqa: BLE001 - ZoneInfoNotFoundError, ValueError
        raise HistorianError(f"unknown time zone {timezone!r}") from None

    cmap = dict(column_map or {})
    unknown_keys = [k for k in cmap if k != TS and k not in channels]
    if unknown_keys:
        raise HistorianError(f"column map names {unknown_keys}, which are not channels; "
                             f"expected 'ts' or one of {channels}")
    targets: dict[str, str] = {}
    for ch, col in cmap.items():
        if col in targets:
            raise HistorianError(f"column map sends CSV column {col!r} to both "
                                 f"{targets[col]!r} and {ch!r}")
        targets[col] = ch

    # -- read ------------------------------------------------------------------------------
    if not path.exists():
        raise HistorianError(f"{path}: file not found")
    if path.is_dir():
        raise HistorianError(f"{path}: is a directory, not a CSV file")
    if path.stat().st_size == 0:
        raise HistorianError(f"{path}: file is empty")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            header = next(reader, None)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue  # blank line
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise HistorianError(f"{path}: not a UTF-8 text file (is it a CSV export?)") from None
    except csv.Error as exc:
        raise HistorianError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise HistorianError(f"{path}: cannot be read ({exc.strerror})") from None
    if not header or all(not h.strip() for h in header):
        raise HistorianError(f"{path}: no header row (expected column names on line 1)")
    header = [h.strip() for h in header]
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise HistorianError(f"{path}: duplicate column names {dups}")
    if not rows:
        raise HistorianError(f"{path}: holds a header but no data rows")
    width = len(header)
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise HistorianError(f"{path}: line {line} has {len(row)} fields, the header has "
                                 f"{width}")

    # -- columns ---------------------------------------------------------------------------
    ignore = set(ignore_columns)
    col_of: dict[str, str] = {}  # channel (or ts) -> CSV column
    unknown: list[str] = []
    for h in header:
        if h in ignore:
            continue
        name = targets.get(h)
        if name is None and h in channels + [TS] and h not in cmap:
            name = h  # already named like a channel and not mapped from elsewhere
        if name is None:
            unknown.append(h)
        elif name in col_of:
            raise HistorianError(f"{path}: both {col_of[name]!r} and {h!r} give {name!r}")
        else:
            col_of[name] = h
    ts_col = col_of.get(TS)
    missing = [c for c in channels if c not in col_of]
    mapped_missing = {ch: col for ch, col in cmap.items() if col not in header}
    if unknown or missing or ts_col is None:
        problems = []
        if ts_col is None:
            want = cmap.get(TS, TS)
            problems.append(f"no timestamp column {want!r}"
                            + ("" if TS in cmap else " (map yours with ts=ColumnName)"))
        if missing:
            problems.append(f"missing channels {missing}"
                            + (f" (mapped columns not in the file: {mapped_missing})"
                               if mapped_missing else ""))
        if unknown:
            problems.append(f"unknown columns {unknown} (neither mapped to a channel nor "
                            "channel names; map them or pass --ignore-column)")
        raise HistorianError(
            f"{path}: " + "; ".join(problems)
            + f". Expected a timestamp column and the {len(channels)} channels "
            f"{channels} ({layout.tc_rows}x{layout.tc_cols} thermocouples); found columns "
            f"{header}")

    # -- values ----------------------------------------------------------------------------
    idx = {h: k for k, h in enumerate(header)}
    cols = list(zip(*rows))
    ts = _parse_ts(list(cols[idx[ts_col]]), lines, ts_col, ts_unit, tz, path)
    values = np.empty((len(rows), len(channels)), dtype=np.float64)
    for j, ch in enumerate(channels):
        col = col_of[ch]
        values[:, j] = _parse_values(list(cols[idx[col]]), lines, col, ch, path)

    order = np.argsort(ts, kind="stable")
    return heatset_from_arrays(strand, heat, ts[order], values[order], channels,
                               manifest_extra={"source": "historian-csv", "source_file": str(path)})


def heatset_from_arrays(
    strand: str, heat: str, ts: np.ndarray, values: np.ndarray, channels: list[str],
    seq: np.ndarray | None = None, manifest_extra: Mapping[str, Any] | None = None,
) -> HeatSet:
    """A one-strand HeatSet (no events) from arrays; seq defaults to 0..N-1."""
    import pyarrow as pa

    n = len(ts)
    cols: dict[str, Any] = {
        "ts": pa.array(np.asarray(ts, dtype=np.float64)),
        "strand": pa.array([strand] * n, type=pa.string()),
        "heat": pa.array([heat] * n, type=pa.string()),
        "seq": pa.array(np.arange(n, dtype=np.int64) if seq is None else
                        np.asarray(seq, dtype=np.int64)),
    }
    for j, ch in enumerate(channels):
        cols[ch] = pa.array(np.asarray(values[:, j], dtype=np.float32))
    manifest = {"channels": list(channels), **dict(manifest_extra or {})}
    return HeatSet(manifest=manifest, readings=pa.table(cols), events=EVENT_SCHEMA.empty_table())


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


__all__ = ["HistorianError", "load_column_map", "parse_column_map", "read_historian_csv",
           "heatset_from_arrays"]
