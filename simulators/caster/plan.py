"""Caster-level schedule: the heat sequence every strand of one caster shares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.caster.config import SimConfig


@dataclass
class LadleChange:
    """Transient at the boundary between heat h-1 and heat h (times in s from start)."""

    boundary: float  # the new heat starts here
    start: float  # speed starts to fall
    ramp_down: float
    hold: float
    ramp_up: float
    dip_frac: float  # speed falls to (1 - dip_frac) x the old speed
    level_pp: float  # small mould-level wobble while the ladle is changed (mm p-p)

    @property
    def end(self) -> float:
        return self.start + self.ramp_down + self.hold + self.ramp_up


@dataclass
class CasterPlan:
    caster: int
    duration_s: float
    heat_ids: list[str]
    starts: np.ndarray  # heat start, s from start_ts
    ends: np.ndarray  # heat end, cut at the end of the simulated time
    durations: np.ndarray  # full planned heat durations (s), not cut
    speed: np.ndarray  # base casting speed of each heat (m/min)
    sh_start: np.ndarray  # superheat at the start of each heat (degC)
    sh_end: np.ndarray  # superheat the heat decays towards (degC)
    ramp_s: float  # cast-start speed ramp
    ladles: list[LadleChange] = field(default_factory=list)

    def heat_index(self, t: np.ndarray | float) -> np.ndarray:
        return np.clip(np.searchsorted(self.starts, t, side="right") - 1, 0, len(self.starts) - 1)


def caster_rng(cfg: SimConfig, caster: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(caster, 0)))


def make_plan(cfg: SimConfig, caster: int) -> CasterPlan:
    """Heat sequence of one caster, deterministic in (seed, caster)."""
    rng = caster_rng(cfg, caster)
    lo_min, hi_min = cfg.heat_minutes
    durations: list[float] = []
    if cfg.heats is not None:
        durations = list(rng.uniform(lo_min, hi_min, cfg.heats) * 60.0)
        total = float(sum(durations))
    else:
        assert cfg.hours is not None
        total = float(cfg.hours) * 3600.0
        while sum(durations) < total:
            durations.append(float(rng.uniform(lo_min, hi_min)) * 60.0)
    n = len(durations)
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    ends = np.minimum(np.cumsum(durations), total)
    vlo, vhi = cfg.casting_speed_range
    speed = rng.uniform(vlo, vhi, n)
    sh_start = rng.uniform(28.0, 40.0, n)
    sh_end = rng.uniform(15.0, 22.0, n)
    ramp_s = float(rng.uniform(180.0, 300.0))
    ladles = []
    for h in range(1, n):
        rd, hold, ru = rng.uniform(20, 40), rng.uniform(30, 90), rng.uniform(40, 90)
        ladles.append(LadleChange(
            boundary=float(starts[h]), start=float(starts[h] - rd - hold / 2), ramp_down=float(rd),
            hold=float(hold), ramp_up=float(ru), dip_frac=float(rng.uniform(0.1, 0.3)),
            level_pp=float(rng.uniform(3.0, 8.0)),
        ))
    heat_ids = [f"C{caster}-H{h + 1:05d}" for h in range(n)]
    return CasterPlan(caster=caster, duration_s=total, heat_ids=heat_ids, starts=starts,
                      ends=ends, durations=np.asarray(durations), speed=speed, sh_start=sh_start, sh_end=sh_end, ramp_s=ramp_s,
                      ladles=ladles)
