"""Configuration of the caster simulator: one pydantic model, loadable from YAML.

Precedence: model defaults < YAML file (``--config``) < CLI flags. Every invalid value
raises :class:`ConfigError` whose one-line message names the offending field, e.g.
``invalid simulator config: rates.sticker: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamer.channels import DEFECT_TYPES

# Hard-negative kinds, drawn at per-strand rates (ladle changes come with every heat
# boundary and are recorded as nuisances too, but have no rate of their own).
NUISANCE_KINDS: tuple[str, ...] = (
    "speed_change",
    "tc_stuck",
    "tc_dropout",
    "tc_spike",
    "tc_out_of_range",
    "level_burst",
    "near_sticker",
    "near_crack",
)
ALL_NUISANCE_KINDS: tuple[str, ...] = ("ladle_change", *NUISANCE_KINDS)

DEFAULT_ROW_DEPTHS_MM: tuple[float, ...] = (210.0, 325.0, 445.0)  # DOMAIN.md (Nanjing mould)


class ConfigError(ValueError):
    """An invalid simulator configuration; ``str()`` is one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EventRates(_Strict):
    """Defect events per strand per hour of casting (far above real plants, on purpose)."""

    sticker: float = Field(0.75, ge=0, le=60)
    crack: float = Field(0.75, ge=0, le=60)
    slag: float = Field(0.75, ge=0, le=60)


class NuisanceRates(_Strict):
    """Hard negatives per strand per hour of casting."""

    speed_change: float = Field(1.0, ge=0, le=60)
    tc_stuck: float = Field(0.4, ge=0, le=60)
    tc_dropout: float = Field(0.4, ge=0, le=60)
    tc_spike: float = Field(1.0, ge=0, le=60)
    tc_out_of_range: float = Field(0.3, ge=0, le=60)
    level_burst: float = Field(1.2, ge=0, le=60)
    near_sticker: float = Field(1.5, ge=0, le=60)
    near_crack: float = Field(1.0, ge=0, le=60)


class SimConfig(_Strict):
    """Everything that shapes a generated heat set. Units are in the field names."""

    seed: int = Field(0, ge=0, description="Root seed; each (caster, strand) gets a child seed.")
    casters: int = Field(1, ge=1, le=50)
    strands_per_caster: int = Field(2, ge=1, le=8, description="DOMAIN.md: 1-8 per caster.")
    hours: float | None = Field(2.0, gt=0, le=24 * 14,
                                description="Hours of casting per strand (ignored when heats is set).")
    heats: int | None = Field(None, ge=1, le=1000,
                              description="Number of heats per caster; overrides hours when set.")
    hz: float = Field(1.0, gt=0, le=20, description="Readings per second (DOMAIN.md: 1 Hz archived).")
    start_ts: float = Field(1_735_689_600.0, ge=0, description="Epoch s of the first reading.")
    tc_rows: int = Field(3, ge=1, le=10)
    tc_cols: int = Field(8, ge=1, le=40)
    row_depths_mm: list[float] | None = Field(
        None, description="Depth of each TC row below the mould top; default 210/325/445 for 3 rows.")
    col_pitch_mm: float = Field(150.0, gt=0, le=1000)
    mould_length_mm: float = Field(900.0, gt=0, le=3000)
    casting_speed_range: tuple[float, float] = Field(
        (0.9, 1.6), description="Range of a heat's base casting speed, m/min (slab).")
    heat_minutes: tuple[float, float] = Field((40.0, 50.0), description="Range of heat durations.")
    tc_noise_degc: tuple[float, float] = Field(
        (0.3, 0.7), description="Range of per-thermocouple white sensor noise (sd, degC).")
    level_noise_mm: tuple[float, float] = Field(
        (1.2, 1.9), description="Range of per-strand mould-level noise (sd of an AR(1), mm).")
    rates: EventRates = Field(default_factory=EventRates)
    nuisance_rates: NuisanceRates = Field(default_factory=NuisanceRates)

    @model_validator(mode="after")
    def _check(self) -> SimConfig:
        def bad(field: str, msg: str) -> None:
            raise ValueError(f"{field}: {msg}")

        for name in ("casting_speed_range", "heat_minutes", "tc_noise_degc", "level_noise_mm"):
            lo, hi = getattr(self, name)
            if not (0 < lo <= hi):
                bad(name, f"must be [low, high] with 0 < low <= high, got [{lo}, {hi}]")
        if self.casting_speed_range[1] > 2.5:
            bad("casting_speed_range", "slab casting speed above 2.5 m/min is out of scope")
        if self.heat_minutes[0] < 10:
            bad("heat_minutes", "heats shorter than 10 min leave no room for events")
        if self.row_depths_mm is not None:
            d = list(self.row_depths_mm)
            if len(d) != self.tc_rows:
                bad("row_depths_mm", f"needs tc_rows={self.tc_rows} entries, got {len(d)}")
            if any(b <= a for a, b in itertools.pairwise(d)):
                bad("row_depths_mm", f"depths must increase downwards, got {d}")
            if d[0] <= 0 or d[-1] >= self.mould_length_mm:
                bad("row_depths_mm",
                    f"depths must lie inside the mould (0, {self.mould_length_mm}) mm, got {d}")
        elif self.tc_rows != 3 and self.depths()[-1] >= self.mould_length_mm:
            # the derived default depths must fit the mould too
            bad("mould_length_mm", "too short for the default row depths; give row_depths_mm")
        return self

    # -- derived values -------------------------------------------------------------------
    def depths(self) -> list[float]:
        """Row depths in mm below the mould top (given, or the default for tc_rows)."""
        if self.row_depths_mm is not None:
            return [float(x) for x in self.row_depths_mm]
        if self.tc_rows == 3:
            return list(DEFAULT_ROW_DEPTHS_MM)
        # assumed: rows every 117.5 mm from 210 mm (the Nanjing mean spacing), squeezed to
        # end by 800 mm when there are many rows
        last = min(800.0, 210.0 + 117.5 * (self.tc_rows - 1))
        if self.tc_rows == 1:
            return [210.0]
        step = (last - 210.0) / (self.tc_rows - 1)
        return [210.0 + i * step for i in range(self.tc_rows)]

    def strand_ids(self) -> list[tuple[int, int, str]]:
        """(caster, strand, id) for every strand, 1-based, id ``C{c}-S{s}``."""
        return [(c, s, f"C{c}-S{s}") for c in range(1, self.casters + 1)
                for s in range(1, self.strands_per_caster + 1)]


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not a simulator setting)"
            if loc.startswith("rates."):
                msg = f"unknown defect type (expected one of {', '.join(DEFECT_TYPES)})"
            elif loc.startswith("nuisance_rates."):
                msg = f"unknown hard-negative kind (expected one of {', '.join(NUISANCE_KINDS)})"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid simulator config: " + "; ".join(parts)


def make_config(data: dict[str, Any] | None = None, **overrides: Any) -> SimConfig:
    """Validate a mapping (plus overrides) into a SimConfig, or raise ConfigError."""
    merged = _deep_merge(dict(data or {}), overrides)
    try:
        return SimConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None


def load_config(path: str | Path | None = None, **overrides: Any) -> SimConfig:
    """Defaults < YAML file < overrides (nested dicts merge, e.g. ``rates={"sticker": 2}``)."""
    from streamer.yaml_file import read_yaml_mapping

    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml_mapping(path, ConfigError, "config file",
                                 not_mapping="top level must be a mapping of settings")
    # a row count given as an override wins over depths of another length in the file
    depths = data.get("row_depths_mm")
    if ("tc_rows" in overrides and "row_depths_mm" not in overrides
            and isinstance(depths, list) and len(depths) != overrides["tc_rows"]):
        data = {k: v for k, v in data.items() if k != "row_depths_mm"}
    if "heats" in overrides and overrides["heats"] is not None:
        overrides.setdefault("hours", None)
    if "hours" in overrides and overrides["hours"] is not None:
        overrides.setdefault("heats", None)
    return make_config(data, **overrides)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
