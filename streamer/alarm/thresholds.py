"""Which alarm threshold applies to each defect type, and where it came from.

One resolution, used by the daemon and by ``streamer evaluate`` alike, so that an offline
report describes what the daemon does. Per defect type, the first that is set wins:

1. ``alerts.alarm_by_type[type]`` (the daemon's configuration: the plant overrides);
2. the checkpoint's ``metadata.operating_thresholds.alarm_by_type[type]`` (the thresholds
   the model was shipped with, chosen on development heats by
   ``python -m streamer.evaluation.thresholds``);
3. ``alerts.alarm`` (one threshold for every type).

The alarm on-delay (``alerts.on_delay_s``, :mod:`streamer.alarm.levels`) travels with the
thresholds, because thresholds chosen with a delay are too low without it: the first that is
set wins of ``alerts.on_delay_s``, the checkpoint's ``operating_thresholds.on_delay_s``, and 0.

Watch and warning stay ``alerts.watch`` / ``alerts.warning`` for every type, except that a
type whose alarm threshold is below them has them lowered to its alarm threshold (levels
stay ordered; a probability that reaches the alarm threshold goes straight to ``alarm``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamer.config import AlertSettings

SOURCE_CONFIG = "alerts.alarm_by_type"
SOURCE_CHECKPOINT = "checkpoint operating_thresholds"
SOURCE_GLOBAL = "alerts.alarm"
SOURCE_CLI = "--threshold"
SOURCE_DELAY_CONFIG = "alerts.on_delay_s"
SOURCE_DEFAULT = "default"
MAX_ON_DELAY_S = 60.0
METADATA_KEY = "operating_thresholds"


class ThresholdError(ValueError):
    """A per-type threshold names an unknown defect type or is out of (0, 1); names the field."""


@dataclass(frozen=True, slots=True)
class TypeThresholds:
    """The three level thresholds of one defect type (watch <= warning <= alarm)."""

    watch: float
    warning: float
    alarm: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.watch, self.warning, self.alarm)


@dataclass(frozen=True)
class ResolvedThresholds:
    """Alarm threshold and its source per defect type, in the model's output order."""

    defect_types: tuple[str, ...]
    alarm: dict[str, float]
    source: dict[str, str]
    on_delay_s: float = 0.0  # seconds p must stay >= the alarm threshold before a raise
    on_delay_source: str = SOURCE_DEFAULT

    def levels(self, settings: AlertSettings) -> dict[str, TypeThresholds]:
        """Watch / warning / alarm per type: global watch / warning, clamped to its alarm."""
        return {t: TypeThresholds(min(settings.watch, a), min(settings.warning, a), a)
                for t, a in self.alarm.items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: what a report records and the start-up log shows."""
        return {"alarm_by_type": dict(self.alarm), "source": dict(self.source),
                "on_delay_s": self.on_delay_s, "on_delay_source": self.on_delay_source}

    def by_type_text(self) -> dict[str, str]:
        """``{"sticker": "0.7 (checkpoint operating_thresholds)", ...}``: the start-up log's
        fields."""
        return {t: f"{self.alarm[t]:g} ({self.source[t]})" for t in self.defect_types}

    def describe(self) -> str:
        """``sticker 0.7 (checkpoint operating_thresholds), crack 0.8 (alerts.alarm), ...``,
        then the on-delay where there is one."""
        text = ", ".join(f"{t} {text}" for t, text in self.by_type_text().items())
        if self.on_delay_s:
            text += f"; on-delay {self.on_delay_s:g} s ({self.on_delay_source})"
        return text


def check_alarm_map(values: Any, defect_types: Sequence[str], field: str) -> dict[str, float]:
    """A {type: threshold} mapping with known keys and values in (0, 1), or ThresholdError."""
    if not isinstance(values, Mapping):
        raise ThresholdError(f"{field}: must be a mapping of defect type to threshold")
    out: dict[str, float] = {}
    for key, v in values.items():
        if key not in defect_types:
            raise ThresholdError(
                f"{field}.{key}: not a defect type of the model "
                f"(its types: {', '.join(defect_types)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0.0 < float(v) < 1.0:
            raise ThresholdError(f"{field}.{key}: must be a number in (0, 1), got {v!r}")
        out[str(key)] = float(v)
    return out


def checkpoint_thresholds(metadata: Mapping[str, Any] | None,
                          defect_types: Sequence[str]) -> dict[str, float]:
    """The checkpoint's ``operating_thresholds.alarm_by_type`` ({} if absent), validated."""
    rec = (metadata or {}).get(METADATA_KEY)
    if rec is None:
        return {}
    field = f"metadata.{METADATA_KEY}"
    if not isinstance(rec, Mapping) or "alarm_by_type" not in rec:
        raise ThresholdError(f"{field}: must be a mapping with an 'alarm_by_type' mapping")
    return check_alarm_map(rec["alarm_by_type"], defect_types, f"{field}.alarm_by_type")


def check_on_delay(value: Any, field: str) -> float:
    """An on-delay in seconds, in [0, MAX_ON_DELAY_S], or ThresholdError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0.0 <= float(value) <= MAX_ON_DELAY_S:
        raise ThresholdError(f"{field}: must be a number of seconds in [0, {MAX_ON_DELAY_S:g}], "
                             f"got {value!r}")
    return float(value)


def checkpoint_on_delay(metadata: Mapping[str, Any] | None) -> float | None:
    """The checkpoint's ``operating_thresholds.on_delay_s`` (None if absent), validated."""
    rec = (metadata or {}).get(METADATA_KEY)
    if not isinstance(rec, Mapping) or rec.get("on_delay_s") is None:
        return None
    return check_on_delay(rec["on_delay_s"], f"metadata.{METADATA_KEY}.on_delay_s")


def resolve_on_delay(settings: AlertSettings, recorded: float | None,
                     recorded_source: str) -> tuple[float, str]:
    """(delay, source): ``alerts.on_delay_s`` if set, else the delay recorded with the
    thresholds (a checkpoint's or a baseline record's), else 0."""
    if settings.on_delay_s is not None:
        return float(settings.on_delay_s), SOURCE_DELAY_CONFIG
    if recorded is not None:
        return recorded, recorded_source
    return 0.0, SOURCE_DEFAULT


def resolve_thresholds(settings: AlertSettings, defect_types: Sequence[str],
                       metadata: Mapping[str, Any] | None = None, *,
                       override: float | None = None) -> ResolvedThresholds:
    """Per-type alarm thresholds: config > checkpoint > ``alerts.alarm`` (module docstring);
    the on-delay: config > checkpoint > 0.

    ``override`` (``streamer evaluate --threshold``) replaces all three with one value (not
    the on-delay). Raises ThresholdError naming the field for an unknown type or a bad value.
    """
    types = tuple(defect_types)
    configured = check_alarm_map(settings.alarm_by_type, types, "alerts.alarm_by_type")
    shipped = checkpoint_thresholds(metadata, types)
    alarm: dict[str, float] = {}
    source: dict[str, str] = {}
    for t in types:
        if override is not None:
            alarm[t], source[t] = float(override), SOURCE_CLI
        elif t in configured:
            alarm[t], source[t] = configured[t], SOURCE_CONFIG
        elif t in shipped:
            alarm[t], source[t] = shipped[t], SOURCE_CHECKPOINT
        else:
            alarm[t], source[t] = settings.alarm, SOURCE_GLOBAL
    delay, delay_source = resolve_on_delay(settings, checkpoint_on_delay(metadata),
                                           SOURCE_CHECKPOINT)
    return ResolvedThresholds(types, alarm, source, delay, delay_source)
