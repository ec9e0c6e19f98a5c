"""Heat files: a folder with ``manifest.json``, ``readings.parquet``, ``events.parquet`` and
``nuisances.parquet``. Written by ``caster-sim generate``; read by replay, plot, train and
evaluate.

readings.parquet: ``ts`` (float64, Unix epoch s), ``strand`` (string), ``heat`` (string),
``seq`` (int64, per strand, strictly increasing), then one float32 column per channel in
manifest order (NaN = no value). Rows sorted by strand, then seq.

events.parquet (ground-truth defects) and nuisances.parquet (hard negatives, which are NOT
defects): ``event_id`` (string), ``strand``, ``heat``, ``type``, ``onset_ts``,
``critical_ts`` (float64 epoch s), ``row``, ``col`` (int32, 1-based location of origin; 0
when not tied to a thermocouple), ``severity`` (float64, type-specific: degC for
thermocouple signatures, mm for level swings), ``detail`` (string, JSON).

A window ending at time t is labelled positive for defect type k iff an event of type k on
that strand has ``onset_ts <= t <= critical_ts`` (docs/labels.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMAT_NAME = "streamer-heats"
FORMAT_VERSION = 1
META_COLUMNS = ("ts", "strand", "heat", "seq")
EVENT_COLUMNS = (
    "event_id", "strand", "heat", "type", "onset_ts", "critical_ts", "row", "col",
    "severity", "detail",
)
EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("strand", pa.string()), ("heat", pa.string()),
    ("type", pa.string()), ("onset_ts", pa.float64()), ("critical_ts", pa.float64()),
    ("row", pa.int32()), ("col", pa.int32()), ("severity", pa.float64()),
    ("detail", pa.string()),
])


class HeatFileError(Exception):
    """A heat folder or file is missing, empty, corrupt or not in the expected format."""


@dataclass
class HeatSet:
    """Readings, ground-truth events and hard negatives of one or more strands."""

    manifest: dict[str, Any]
    readings: pa.Table
    events: pa.Table
    nuisances: pa.Table = field(default_factory=lambda: EVENT_SCHEMA.empty_table())

    @property
    def channels(self) -> list[str]:
        return list(self.manifest["channels"])

    @property
    def strands(self) -> list[str]:
        return sorted(set(self.readings.column("strand").to_pylist()))

    def strand_arrays(self, strand: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ts [N] float64, seq [N] int64, values [N, C] float32) of one strand, in seq order."""
        import pyarrow.compute as pc

        t = self.readings.filter(pc.equal(self.readings.column("strand"), strand))
        ts = t.column("ts").to_numpy()
        seq = t.column("seq").to_numpy()
        values = np.column_stack(
            [t.column(c).to_numpy(zero_copy_only=False) for c in self.channels]
        ).astype(np.float32, copy=False)
        order = np.argsort(seq, kind="stable")
        return ts[order], seq[order], values[order]


def write_heats(folder: str | Path, heats: HeatSet) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **heats.manifest}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    pq.write_table(heats.readings, folder / "readings.parquet", compression="zstd")
    pq.write_table(heats.events, folder / "events.parquet")
    pq.write_table(heats.nuisances, folder / "nuisances.parquet")
    return folder


def _read_table(path: Path, required: tuple[str, ...]) -> pa.Table:
    if not path.exists():
        raise HeatFileError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise HeatFileError(f"{path}: file is empty")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise HeatFileError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise HeatFileError(
            f"{path}: missing columns {missing}; expected at least {list(required)}"
        )
    return table


def read_heats(folder: str | Path) -> HeatSet:
    """Load a heat folder, checking the manifest and every required column."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HeatFileError(f"{folder}: not a heat folder (expected a directory from "
                            "`caster-sim generate`)")
    mpath = folder / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise HeatFileError(f"{mpath}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HeatFileError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise HeatFileError(f"{mpath}: not a {FORMAT_NAME} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise HeatFileError(f"{mpath}: format version {manifest.get('version')!r} is not "
                            f"supported (expected {FORMAT_VERSION})")
    channels = manifest.get("channels")
    if not isinstance(channels, list) or not channels:
        raise HeatFileError(f"{mpath}: 'channels' must be a non-empty list")
    readings = _read_table(folder / "readings.parquet", META_COLUMNS + tuple(channels))
    if readings.num_rows == 0:
        raise HeatFileError(f"{folder / 'readings.parquet'}: holds no readings")
    events = _read_table(folder / "events.parquet", EVENT_COLUMNS)
    npath = folder / "nuisances.parquet"
    nuisances = _read_table(npath, EVENT_COLUMNS) if npath.exists() else EVENT_SCHEMA.empty_table()
    return HeatSet(manifest=manifest, readings=readings, events=events, nuisances=nuisances)
