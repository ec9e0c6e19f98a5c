"""Which alarm threshold applies to each defect type, and where it came from.

One resolution, used by the daemon and by ``streamer evaluate`` alike, so that an offline
report describes what the daemon does. Per defect type, the first that is set wins:

1. ``alerts.alarm_by_type[type]`` (the daemon's configuration: the plant overrides);
2. the checkpoint's ``metadata.operating_thresholds.alarm_by_type[type]`` (the thresholds
   the model was shipped with, chosen on development heats by
   ``python -m streamer.evaluation.thresholds``);
3. ``alerts.alarm`` (one threshold for every type).

The alarm on-delay (:mod:`streamer.alarm.levels`) travels with the thresholds, because
thresholds chosen with a delay are too low without it. It may differ per type (a level burst
is over in seconds, a sticker must not wait). Per type, the first that is set wins:

1. ``alerts.on_delay_by_type[type]``;
2. ``alerts.on_delay_s`` (one delay for every type);
3. the checkpoint's ``operating_thresholds.on_delay_by_type[type]``;
4. the checkpoint's ``operating_thresholds.on_delay_s``;
5. 0 (off).

A configured delay outranks the checkpoint's, so ``alerts.on_delay_s: 0`` turns every delay
off.

Watch and warning stay ``alerts.watch`` / ``alerts.warning`` for every type, except that a
type whose alarm threshold is below them has them lowered to its alarm threshold (levels
stay ordered; a probability that reaches the alarm threshold goes straight to ``alarm``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamer.config import AlertSettings

SOURCE_CONFIG = "alerts.alarm_by_type"
SOURCE_CHECKPOINT = "checkpoint operating_thresholds"
SOURCE_GLOBAL = "alerts.alarm"
SOURCE_CLI = "--threshold"
SOURCE_DELAY_CONFIG = "alerts.on_delay_s"
SOURCE_DELAY_TYPE_CONFIG = "alerts.on_delay_by_type"
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
    # per type, seconds p must stay >= the alarm threshold before a raise (absent: 0)
    on_delay: dict[str, float] = field(default_factory=dict)
    on_delay_source: dict[str, str] = field(default_factory=dict)

    def delay(self, defect: str) -> float:
        return self.on_delay.get(defect, 0.0)

    def delays(self) -> dict[str, float]:
        """Every type's delay, in output order (0 where none was resolved)."""
        return {t: self.delay(t) for t in self.defect_types}

    @property
    def on_delay_s(self) -> float | None:
        """The one delay of every type, or None where the types' delays differ."""
        return common_delay(self.delays())

    def levels(self, settings: AlertSettings) -> dict[str, TypeThresholds]:
        """Watch / warning / alarm per type: global watch / warning, clamped to its alarm."""
        return {t: TypeThresholds(min(settings.watch, a), min(settings.warning, a), a)
                for t, a in self.alarm.items()}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: what a report records and the start-up log shows."""
        return {"alarm_by_type": dict(self.alarm), "source": dict(self.source),
                **delay_fields(self.delays()),
                "on_delay_source": {t: self.on_delay_source.get(t, SOURCE_DEFAULT)
                                    for t in self.defect_types}}

    def delay_text(self) -> str:
        """``3 s (checkpoint operating_thresholds)``, or per type where they differ:
        ``sticker 0 s, crack 3 s, slag 5 s (checkpoint operating_thresholds)``."""
        sources = {self.on_delay_source.get(t, SOURCE_DEFAULT) for t in self.defect_types}
        return describe_delays(self.delays()) + f" ({', '.join(sorted(sources))})"

    def by_type_text(self) -> dict[str, str]:
        """``{"sticker": "0.7 (checkpoint operating_thresholds)", ...}``: the start-up log's
        fields."""
        return {t: f"{self.alarm[t]:g} ({self.source[t]})" for t in self.defect_types}

    def describe(self) -> str:
        """``sticker 0.7 (checkpoint operating_thresholds), crack 0.8 (alerts.alarm), ...``,
        then the on-delay where there is one."""
        text = ", ".join(f"{t} {text}" for t, text in self.by_type_text().items())
        if any(self.delays().values()):
            text += f"; on-delay {self.delay_text()}"
        return text


def common_delay(delays: Mapping[str, float]) -> float | None:
    """The one delay of every type, or None where they differ (or there are none)."""
    values = set(delays.values())
    return values.pop() if len(values) == 1 else None


def delay_fields(delays: Mapping[str, float]) -> dict[str, Any]:
    """How a record or a report writes its delays (:func:`recorded_on_delay` reads them back):
    per type, and the one delay of every type (None where they differ; a record from before
    per-type delays has only that)."""
    return {"on_delay_s": common_delay(delays), "on_delay_by_type": dict(delays)}


def describe_delays(delays: Mapping[str, float]) -> str:
    """``3 s`` where every type has the same delay, else ``sticker 0 s, crack 3 s, ...``."""
    one = common_delay(delays)
    if one is not None:
        return f"{one:g} s"
    return ", ".join(f"{t} {d:g} s" for t, d in delays.items())


def on_delay_of(rec: Mapping[str, Any], where: str = "") -> dict[str, float]:
    """The per-type delays of a report's ``alarm_thresholds`` (:meth:`as_dict`), for reading
    reports back: :func:`recorded_on_delay` over the types it names; {} for a report from
    before the on-delay. Raises ThresholdError naming the field after ``where``."""
    named = [m for m in (rec.get("alarm_by_type"), rec.get("on_delay_by_type"))
             if isinstance(m, Mapping)]
    return recorded_on_delay(rec, list(dict.fromkeys(t for m in named for t in m)), where)


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
        out[str(key)] = check_alarm(v, f"{field}.{key}")
    return out


def check_alarm(value: Any, field: str) -> float:
    """An alarm threshold, in (0, 1), or ThresholdError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0.0 < float(value) < 1.0:
        raise ThresholdError(f"{field}: must be a number in (0, 1), got {value!r}")
    return float(value)


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


def check_on_delay_map(values: Any, defect_types: Sequence[str], field: str
                       ) -> dict[str, float]:
    """A {type: seconds} mapping with known keys and values in [0, MAX_ON_DELAY_S], or
    ThresholdError naming the field."""
    if not isinstance(values, Mapping):
        raise ThresholdError(f"{field}: must be a mapping of defect type to seconds")
    out: dict[str, float] = {}
    for key, v in values.items():
        if key not in defect_types:
            raise ThresholdError(f"{field}.{key}: not a defect type of the model "
                                 f"(its types: {', '.join(defect_types)})")
        out[str(key)] = check_on_delay(v, f"{field}.{key}")
    return out


def recorded_on_delay(rec: Mapping[str, Any], defect_types: Sequence[str], where: str
                      ) -> dict[str, float]:
    """The delays a threshold record was chosen with, per type: its ``on_delay_by_type``,
    else its ``on_delay_s`` for every type; {} if it has neither (a record from before the
    on-delay: 0). Raises ThresholdError naming the field after ``where`` (its prefix)."""
    one = rec.get("on_delay_s")
    out = {} if one is None else dict.fromkeys(defect_types, check_on_delay(
        one, f"{where}on_delay_s"))
    by_type = rec.get("on_delay_by_type")
    if by_type is not None:
        out.update(check_on_delay_map(by_type, defect_types, f"{where}on_delay_by_type"))
    return out


def checkpoint_on_delay(metadata: Mapping[str, Any] | None, defect_types: Sequence[str]
                        ) -> dict[str, float]:
    """The checkpoint's ``operating_thresholds`` delays per type ({} if none), validated."""
    rec = (metadata or {}).get(METADATA_KEY)
    if not isinstance(rec, Mapping):
        return {}
    return recorded_on_delay(rec, defect_types, f"metadata.{METADATA_KEY}.")


def resolve_on_delay(settings: AlertSettings, defect_types: Sequence[str],
                     recorded: Mapping[str, float], recorded_source: str
                     ) -> tuple[dict[str, float], dict[str, str]]:
    """(delay, source) per type: ``alerts.on_delay_by_type``, ``alerts.on_delay_s``, the
    delays recorded with the thresholds (a checkpoint's or a baseline record's), else 0."""
    configured = check_on_delay_map(settings.on_delay_by_type, defect_types,
                                    SOURCE_DELAY_TYPE_CONFIG)
    delay: dict[str, float] = {}
    source: dict[str, str] = {}
    for t in defect_types:
        if t in configured:
            delay[t], source[t] = configured[t], SOURCE_DELAY_TYPE_CONFIG
        elif settings.on_delay_s is not None:
            delay[t], source[t] = float(settings.on_delay_s), SOURCE_DELAY_CONFIG
        elif t in recorded:
            delay[t], source[t] = recorded[t], recorded_source
        else:
            delay[t], source[t] = 0.0, SOURCE_DEFAULT
    return delay, source


def resolve_thresholds(settings: AlertSettings, defect_types: Sequence[str],
                       metadata: Mapping[str, Any] | None = None, *,
                       override: float | None = None) -> ResolvedThresholds:
    """Per-type alarm thresholds: config > checkpoint > ``alerts.alarm`` (module docstring);
    the on-delay per type: config > checkpoint > 0.

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
    delay, delay_source = resolve_on_delay(settings, types, checkpoint_on_delay(metadata, types),
                                           SOURCE_CHECKPOINT)
    return ResolvedThresholds(types, alarm, source, delay, delay_source)
