"""One strand: process tags, the thermocouple grid, defects and hard negatives.

Everything is vectorised over time with numpy (AR(1) noise and first-order lags through
``scipy.signal.lfilter``); a defect or nuisance only touches the slice of samples it
spans. Times inside this module are seconds from ``start_ts``; records are converted to
epoch seconds by :mod:`simulators.caster.generate`.

Where a number comes from DOMAIN.md the comment says so; everything else is "assumed".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import lfilter

from simulators.caster.config import SimConfig
from simulators.caster.plan import CasterPlan

V_REF = 1.2  # m/min: speed at which a thermocouple reads its base temperature (assumed)
T_WATER_SIDE = 35.0  # degC: copper temperature the TCs tend to at zero heat flux (assumed)
TC_TOP_MEAN = 160.0  # degC: row-1 base at V_REF (DOMAIN.md: steady 100-200)
LEVEL_TO_TC = (-0.08, -0.04)  # degC per mm of level, rows 1 and 2 (assumed meniscus coupling)
SUPERHEAT_TO_TC = 0.15  # degC per degC superheat above 25 (assumed)
INVERSION_MARGIN = 4.0  # degC: a sticker's lower row ends at least this much above the upper


@dataclass
class Record:
    """An event or a nuisance, times in s from start (converted to epoch on output)."""

    kind: str
    onset: float
    critical: float
    row: int
    col: int
    severity: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class StrandData:
    strand: str
    caster: int
    t: np.ndarray  # s from start_ts, float64 [N]
    heat_index: np.ndarray  # index into plan.heat_ids, [N]
    values: np.ndarray  # float32 [N, C] in ChannelLayout order
    events: list[Record]
    nuisances: list[Record]
    dropped: dict[str, int] = field(default_factory=dict)  # drawn but found no free slot


# --------------------------------------------------------------------------------------
# small signal helpers


def _ar1(rng: np.random.Generator, n: int, cols: int, sd: float | np.ndarray, tau_s: float,
         hz: float) -> np.ndarray:
    """Stationary AR(1) noise [n, cols] with standard deviation sd and time constant tau_s."""
    phi = math.exp(-1.0 / (tau_s * hz))
    e = rng.standard_normal((n, cols))
    x0 = rng.standard_normal((1, cols))
    y = lfilter([math.sqrt(1 - phi * phi)], [1.0, -phi], e, axis=0, zi=phi * x0)[0]
    return y * np.asarray(sd, dtype=np.float64)


def _lag(x: np.ndarray, tau_s: float, hz: float) -> np.ndarray:
    """First-order lag (thermal inertia) of a 1-D signal, starting settled at x[0]."""
    a = math.exp(-1.0 / (tau_s * hz))
    return lfilter([1 - a], [1.0, -a], x, zi=[a * x[0]])[0]


def _ramp01(tt: np.ndarray, t0: float, dur: float) -> np.ndarray:
    """0 before t0, 1 after t0 + dur, smooth (cosine) in between."""
    u = np.clip((tt - t0) / max(dur, 1e-9), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _trapezoid(tt: np.ndarray, t0: float, up: float, hold: float, down: float) -> np.ndarray:
    return _ramp01(tt, t0, up) - _ramp01(tt, t0 + up + hold, down)


def _rolling_pp(x: np.ndarray, win: int) -> np.ndarray:
    """max - min of x over trailing windows of win samples (NaN-free x), length len(x)."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(x) == 0:
        return x.copy()
    pad = np.concatenate([np.full(win - 1, x[0]), x])
    w = sliding_window_view(pad, win)
    return w.max(axis=1) - w.min(axis=1)


def _pulse(tt: np.ndarray, t_on: float, amp: float, rate: float, tau_fall: float) -> np.ndarray:
    """Hot-spot trace at one TC: linear rise at `rate` to `amp`, then exponential fall."""
    rise = amp / rate
    u = tt - t_on
    up = np.clip(u, 0.0, rise) * rate
    down = np.exp(-np.clip(u - rise, 0.0, None) / tau_fall)
    return np.where(u < 0, 0.0, np.where(u <= rise, up, amp * down))


def _swing(tt: np.ndarray, t0: float, dur: float, period: float, phase: float) -> np.ndarray:
    """Unit-amplitude level oscillation with a quick build-up and a slower decay."""
    u = (tt - t0) / dur
    env = np.where(u < 0.2, np.sin(np.pi / 2 * np.clip(u / 0.2, 0, 1)) ** 2,
                   np.where(u < 0.65, 1.0, np.cos(np.pi / 2 * np.clip((u - 0.65) / 0.35, 0, 1)) ** 2))
    env = np.where((u < 0) | (u > 1), 0.0, env)
    return env * np.sin(2 * np.pi * (tt - t0) / period + phase)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    """A right-skewed draw with the given median, clipped to [lo, hi]."""
    return float(np.clip(median * math.exp(sigma * rng.standard_normal()), lo, hi))


class _Occupancy:
    """Disjoint time intervals already used by an event, a nuisance or a transient."""

    def __init__(self, end: float):
        self.end = end
        self.iv: list[tuple[float, float]] = []

    def free(self, a: float, b: float) -> bool:
        return a >= 0 and b <= self.end and all(b <= x or a >= y for x, y in self.iv)

    def add(self, a: float, b: float) -> None:
        self.iv.append((a, b))

    def place(self, rng: np.random.Generator, span: Callable[[float], tuple[float, float]],
              guard: float, tries: int = 80) -> float | None:
        """Draw an onset whose [onset - pre - guard, onset + post + guard] is free."""
        for _ in range(tries):
            onset = float(rng.uniform(0.0, self.end))
            pre, post = span(onset)
            a, b = onset - pre - guard, onset + post + guard
            if self.free(a, b):
                self.add(a, b)
                return onset
        return None


# --------------------------------------------------------------------------------------


def strand_rngs(cfg: SimConfig, caster: int, strand: int) -> tuple[np.random.Generator, ...]:
    """Independent generators (base signals, events, nuisances) of one (caster, strand).

    Child seeds come from the root seed and the (caster, strand) key, so adding casters
    or strands never changes the signals of the others.
    """
    ss = np.random.SeedSequence(cfg.seed, spawn_key=(caster, strand))
    return tuple(np.random.default_rng(s) for s in ss.spawn(3))


def simulate_strand(cfg: SimConfig, plan: CasterPlan, strand: int) -> StrandData:
    rng_b, rng_e, rng_n = strand_rngs(cfg, plan.caster, strand)
    sid = f"C{plan.caster}-S{strand}"
    hz = cfg.hz
    n = round(plan.duration_s * hz)
    t = np.arange(n, dtype=np.float64) / hz
    T = n / hz
    R, C = cfg.tc_rows, cfg.tc_cols
    depths = np.asarray(cfg.depths())
    hours = T / 3600.0
    vlo, vhi = cfg.casting_speed_range

    def sl(a: float, b: float) -> slice:
        return slice(max(0, math.ceil(a * hz)), min(n, math.ceil(b * hz) + 1))

    occ = _Occupancy(T)
    cast_settled = plan.ramp_s + 240.0
    occ.add(0.0, cast_settled)
    nuis: list[Record] = []
    events: list[Record] = []
    dropped: dict[str, int] = {}

    # ---- heats, ladle changes and speed changes -> the planned speed ------------------
    heat_speed = np.clip(plan.speed + rng_b.normal(0.0, 0.03, len(plan.speed)), vlo, vhi)
    for lc in plan.ladles:
        occ.add(lc.start - 30.0, lc.end + 60.0)
    sc_onsets = []
    for _ in range(rng_n.poisson(cfg.nuisance_rates.speed_change * hours)):
        ramp = float(rng_n.uniform(20.0, 60.0))
        o = occ.place(rng_n, lambda _o, r=ramp: (0.0, r + 90.0), guard=20.0)
        if o is None:
            dropped["speed_change"] = dropped.get("speed_change", 0) + 1
        else:
            sc_onsets.append((o, ramp, float(rng_n.uniform(0.1, 0.35)), float(rng_n.random())))

    # knots of the planned speed, in time order
    knots_t = [0.0, plan.ramp_s]
    knots_v = [0.3, float(heat_speed[0])]  # cast start: ramp up from 0.3 m/min (assumed)
    items = [("lc", lc.start, lc) for lc in plan.ladles] + [("sc", o[0], o) for o in sc_onsets]
    v_cur = float(heat_speed[0])
    for kind, _t0, it in sorted(items, key=lambda x: x[1]):
        if kind == "lc":
            lc = it
            h = int(plan.heat_index(lc.boundary))
            v_low = v_cur * (1 - lc.dip_frac)
            v_new = float(heat_speed[h])
            knots_t += [lc.start, lc.start + lc.ramp_down, lc.start + lc.ramp_down + lc.hold, lc.end]
            knots_v += [v_cur, v_low, v_low, v_new]
            nuis.append(Record("ladle_change", lc.start, min(lc.end + 60.0, T), 0, 0,
                               v_cur - v_low, {
                                   "heat_boundary_ts": lc.boundary, "speed_before": v_cur,
                                   "speed_low": v_low, "speed_after": v_new,
                                   "superheat_jump": float(plan.sh_start[h] - plan.sh_end[h - 1]),
                                   "level_pp_mm": lc.level_pp}))
            v_cur = v_new
        else:
            o, ramp, mag, u = it
            if v_cur + mag > vhi + 0.1:
                sign = -1.0
            elif v_cur - mag < vlo - 0.1:
                sign = 1.0
            else:
                sign = 1.0 if u < 0.5 else -1.0
            v_new = v_cur + sign * mag
            knots_t += [o, o + ramp]
            knots_v += [v_cur, v_new]
            nuis.append(Record("speed_change", o, o + ramp + 90.0, 0, 0, abs(v_new - v_cur), {
                "speed_before": v_cur, "speed_after": v_new, "ramp_s": ramp,
                "note": "all thermocouples warm/cool together, no propagation"}))
            v_cur = v_new
    kt, kv = np.asarray(knots_t), np.asarray(knots_v)

    def v_at(x: float) -> float:
        return float(np.interp(x, kt, kv))

    # ---- draw defect events (timings only; signals are built further down) -------------
    # all parameters are drawn first, then the events are placed in a shuffled order so
    # that a high rate of one type cannot crowd out the others
    spec: list[tuple[str, float, dict[str, Any]]] = []
    todo: list[tuple[str, dict[str, Any], Callable[[float], tuple[float, float]]]] = []
    row_sp = np.diff(depths)

    for _ in range(rng_e.poisson(cfg.rates.sticker * hours)):
        p = {
            "col": int(rng_e.integers(1, C + 1)),
            "amp": _lognormal(rng_e, 11.0, 0.35, 6.0, 20.0),  # DOMAIN.md: rise ~6-20 degC
            "rate": _lognormal(rng_e, 0.65, 0.40, 0.32, 2.0),  # DOMAIN.md: 0.37-2.05, median 0.61
            "ratio": _lognormal(rng_e, 0.76, 0.40, 0.2, 1.9),  # DOMAIN.md: median 0.76
            "vh": float(rng_e.uniform(1.0, 9.0)),  # DOMAIN.md: horizontal 1-9 m/min
            "spread": int(rng_e.choice([0, 1, 2], p=[0.25, 0.45, 0.30])),  # 14/61 one column
            "growth": rng_e.uniform(1.0, 1.15, max(R - 1, 0)).tolist(),
            "rate_jit": rng_e.uniform(0.9, 1.15, R).tolist(),
            "tau": rng_e.uniform(5.0, 12.0, R).tolist(),
            "resp": (float(rng_e.uniform(0.25, 0.45)), float(rng_e.uniform(10, 20)),
                     float(rng_e.uniform(60, 120)), float(rng_e.uniform(30, 60))),
        }

        def span(o: float, p: dict[str, Any] = p) -> tuple[float, float]:
            vp = p["ratio"] * v_at(o) * 1000.0 / 60.0  # mm/s
            to_exit = (cfg.mould_length_mm - depths[0]) / vp
            _f, d, hold, u = p["resp"]
            return 0.0, to_exit + d + hold + u + 60.0

        todo.append(("sticker", p, span))

    for _ in range(rng_e.poisson(cfg.rates.crack * hours)):
        p = {
            "col": int(rng_e.integers(1, C + 1)),
            "depth": float(rng_e.uniform(8.0, 20.0)),  # DOMAIN.md: >= 8 degC below 65 s mean
            "row_jit": rng_e.uniform(0.85, 1.15, R).tolist(),
            "delays": rng_e.uniform(15.0, 45.0, max(R - 1, 0)).tolist(),  # assumed
            "fall": float(rng_e.uniform(3.0, 8.0)),
            "hold": rng_e.uniform(20.0, 120.0, R).tolist(),
            "recover": rng_e.uniform(10.0, 30.0, R).tolist(),
        }
        total = sum(p["delays"]) + p["fall"] + p["hold"][-1] + p["recover"][-1]
        todo.append(("crack", p, lambda _o, tot=total: (0.0, tot + 60.0)))

    for _ in range(rng_e.poisson(cfg.rates.slag * hours)):
        p = {
            "pp": float(rng_e.uniform(22.0, 45.0)),  # DOMAIN.md: > 20 mm within 60 s
            "dur": float(rng_e.uniform(40.0, 150.0)),
            "period": float(rng_e.uniform(10.0, 30.0)),
            "phase": float(rng_e.uniform(0, 2 * np.pi)),
        }
        todo.append(("slag", p, lambda _o, d=p["dur"]: (0.0, d + 60.0)))

    for i in rng_e.permutation(len(todo)):
        kind, p, span_fn = todo[i]
        o = occ.place(rng_e, span_fn, guard=60.0)
        if o is None:
            dropped[kind] = dropped.get(kind, 0) + 1
        else:
            spec.append((kind, o, p))

    # ---- draw the remaining hard negatives ---------------------------------------------
    nspec: list[tuple[str, float, dict[str, Any]]] = []
    nr = cfg.nuisance_rates

    ntodo: list[tuple[str, dict[str, Any]]] = []

    def draw(kind: str, rate: float, make: Callable[[], dict[str, Any]]) -> None:
        for _ in range(rng_n.poisson(rate * hours)):
            ntodo.append((kind, make()))

    def tc() -> tuple[int, int]:
        return int(rng_n.integers(1, R + 1)), int(rng_n.integers(1, C + 1))

    draw("tc_stuck", nr.tc_stuck, lambda: {"tc": tc(), "dur": float(rng_n.uniform(60, 600))})
    draw("tc_dropout", nr.tc_dropout, lambda: {
        "tc": tc(), "dur": float(rng_n.uniform(5, 120)), "nan": bool(rng_n.random() < 0.5),
        "level": float(rng_n.uniform(0.0, 3.0))})
    draw("tc_spike", nr.tc_spike, lambda: {
        "tc": tc(), "dur": float(rng_n.integers(1, 4)), "amp": float(rng_n.uniform(30, 80))})
    draw("tc_out_of_range", nr.tc_out_of_range, lambda: {
        "tc": tc(), "dur": float(rng_n.uniform(10, 120)), "high": bool(rng_n.random() < 0.6),
        "value": float(rng_n.uniform(255, 400)), "low_value": float(rng_n.uniform(-20, 5))})
    draw("level_burst", nr.level_burst, lambda: {
        "pp": float(rng_n.uniform(10.0, 18.0)), "dur": float(rng_n.uniform(20.0, 90.0)) + 60.0,
        "period": float(rng_n.uniform(8.0, 25.0)), "phase": float(rng_n.uniform(0, 2 * np.pi))})

    def near() -> dict[str, Any]:
        mode = rng_n.choice(["small", "slow", "weak_propagating"], p=[0.4, 0.35, 0.25])
        if mode == "small":
            amp, rate = rng_n.uniform(2.5, 5.8), rng_n.uniform(0.3, 1.2)
        elif mode == "slow":
            amp, rate = rng_n.uniform(6.0, 12.0), rng_n.uniform(0.1, 0.28)
        else:  # DOMAIN.md false alarms: ~0.48 degC/s, ~0.42 m/min, but weak and fading
            amp, rate = rng_n.uniform(2.5, 5.0), _lognormal(rng_n, 0.48, 0.3, 0.3, 1.0)
        row = int(rng_n.integers(1, min(2, R) + 1))
        tau = float(rng_n.uniform(8.0, 30.0))
        return {"mode": str(mode), "tc": (row, int(rng_n.integers(1, C + 1))), "amp": float(amp),
                "rate": float(rate), "tau": tau, "vp": _lognormal(rng_n, 0.42, 0.3, 0.2, 1.0),
                "decay": float(rng_n.uniform(0.4, 0.7)), "dur": float(amp / rate + 5 * tau)}

    draw("near_sticker", nr.near_sticker, near)

    def near_crack() -> dict[str, Any]:
        slow = bool(rng_n.random() < 0.5)
        if slow:  # deep but slow: never 8 degC below its own 65 s running mean
            dip, fall = rng_n.uniform(8.0, 14.0), rng_n.uniform(70.0, 130.0)
        else:  # fast but shallow
            dip, fall = rng_n.uniform(3.0, 6.5), rng_n.uniform(3.0, 15.0)
        hold, rec = rng_n.uniform(10.0, 90.0), rng_n.uniform(10.0, 40.0)
        return {"tc": tc(), "slow": slow, "dip": float(dip), "fall": float(fall),
                "hold": float(hold), "rec": float(rec), "dur": float(fall + hold + rec)}

    draw("near_crack", nr.near_crack, near_crack)
    for i in rng_n.permutation(len(ntodo)):
        kind, p = ntodo[i]
        o = occ.place(rng_n, lambda _o, d=p["dur"]: (0.0, d), guard=20.0)
        if o is None:
            dropped[kind] = dropped.get(kind, 0) + 1
        else:
            nspec.append((kind, o, p))

    # ==== build the signals ============================================================
    # casting speed: plan x sticker-response factors + noise
    v_plan = np.interp(t, kt, kv)
    resp = np.ones(n)
    hidx = plan.heat_index(t)

    # superheat: decays through each heat, jumps with the new ladle (DOMAIN.md 15-40 degC)
    t0h = plan.starts[hidx]
    dur_h = plan.durations[hidx]
    sh = plan.sh_end[hidx] + (plan.sh_start[hidx] - plan.sh_end[hidx]) * np.exp(-(t - t0h) / (dur_h / 2))
    sh = _lag(sh, 40.0, hz) + _ar1(rng_b, n, 1, 0.25, 60.0, hz)[:, 0] + rng_b.normal(0, 0.1, n)

    # mould level (deviation, mm): AR(1) noise, DOMAIN.md +-2..5 mm steady
    lvl_sd = float(rng_b.uniform(*cfg.level_noise_mm))
    level = _ar1(rng_b, n, 1, lvl_sd, 4.0, hz)[:, 0] + rng_b.normal(0, 0.3, n)
    for lc in plan.ladles:
        s = sl(lc.start, lc.end)
        level[s] += lc.level_pp / 2 * _swing(t[s], lc.start, lc.end - lc.start, 20.0, 0.0)

    # thermocouple grid: base temperatures, upper rows hotter
    x = (np.arange(C) - (C - 1) / 2) / max((C - 1) / 2, 1)
    col_lvl = rng_b.normal(0.0, 3.0, C) - 6.0 * x**2
    # each row of a column 2-4.5 degC cooler than the row above (assumed)
    gaps = rng_b.uniform(2.0, 4.5, (max(R - 1, 0), C))
    top = TC_TOP_MEAN + col_lvl + np.clip(rng_b.normal(0, 0.6, C), -1.0, 1.0)
    base = (top[None, :] - np.concatenate([np.zeros((1, C)), np.cumsum(gaps, axis=0)])).reshape(R * C)
    tc_sd = rng_b.uniform(*cfg.tc_noise_degc, R * C)
    drift = _ar1(rng_b, n, R * C, 0.3, 1800.0, hz)
    local = _ar1(rng_b, n, R * C, 0.6, 20.0, hz)
    common = _ar1(rng_b, n, 1, 0.4, 30.0, hz)
    white = rng_b.standard_normal((n, R * C)) * tc_sd
    spd_noise = _ar1(rng_b, n, 1, 0.003, 10.0, hz)[:, 0] + rng_b.normal(0, 0.002, n)
    flow_sp = float(rng_b.uniform(3400.0, 4200.0))
    flow = flow_sp + _ar1(rng_b, n, 1, 15.0, 120.0, hz)[:, 0] + rng_b.normal(0, 8.0, n)
    dt0 = float(rng_b.uniform(6.8, 8.0))
    dt_noise = _ar1(rng_b, n, 1, 0.05, 30.0, hz)[:, 0] + rng_b.normal(0, 0.05, n)

    pulses = np.zeros((n, R * C))

    def ci(r: int, c: int) -> int:
        return (r - 1) * C + (c - 1)

    # ---- defects ----------------------------------------------------------------------
    for kind, o, p in sorted(spec, key=lambda s: s[1]):
        if kind == "sticker":
            events.append(_sticker(cfg, p, o, v_at(o), depths, row_sp, t, sl, pulses, resp,
                                   base, drift + local, ci, T))
        elif kind == "crack":
            events.append(_crack(cfg, p, o, t, sl, pulses, ci))
        else:
            s = sl(o, o + p["dur"])
            sw = _swing(t[s], o, p["dur"], p["period"], p["phase"])
            pp_unit = float(_rolling_pp(sw, round(60 * hz)).max())
            level[s] += sw * (p["pp"] / max(pp_unit, 1e-9))
            events.append(Record("slag", o, o + p["dur"], 0, 0, p["pp"], {
                "peak_to_peak_mm": p["pp"], "period_s": p["period"],
                "duration_s": p["dur"], "threshold_mm_in_60s": 20.0}))

    # ---- near-stickers and level bursts (before sensor faults, which overwrite) ---------
    win = round(60 * hz)
    for kind, o, p in sorted(nspec, key=lambda s: s[1]):
        if kind == "near_sticker":
            r, c = p["tc"]
            s = sl(o, o + p["dur"])
            pulses[s, ci(r, c)] += _pulse(t[s], o, p["amp"], p["rate"], p["tau"])
            detail = {k: p[k] for k in ("mode", "amp", "rate", "tau")}
            if p["mode"] == "weak_propagating" and r < R:
                lag = row_sp[r - 1] / (p["vp"] * 1000 / 60)
                a2 = p["amp"] * p["decay"]
                pulses[s, ci(r + 1, c)] += _pulse(t[s], o + lag, a2, p["rate"] * p["decay"], p["tau"])
                detail.update({"vp_m_min": p["vp"], "lower_row_amp": a2, "lag_s": lag})
            nuis.append(Record("near_sticker", o, o + p["dur"], r, c, p["amp"], detail))
        elif kind == "near_crack":
            r, c = p["tc"]
            s = sl(o, o + p["dur"])
            tt = t[s]
            shape = _ramp01(tt, o, p["fall"]) - _ramp01(tt, o + p["fall"] + p["hold"], p["rec"])
            pre = np.zeros(round(65 * hz))  # running mean starts on undisturbed values
            full = np.concatenate([pre, shape])
            csum = np.cumsum(np.concatenate([[0.0], full]))
            w = len(pre)
            mean = (csum[w + 1:] - csum[1:len(full) - w + 1]) / w
            below = float((shape - mean).max())  # depth of the dip under its running mean
            dip = p["dip"] * min(1.0, 6.5 / max(below * p["dip"], 1e-9))
            pulses[s, ci(r, c)] -= dip * shape
            nuis.append(Record("near_crack", o, o + p["dur"], r, c, dip, {
                "mode": "slow" if p["slow"] else "shallow", "dip": dip, "fall_s": p["fall"],
                "max_below_running_mean": below * dip,
                "note": "one thermocouple, no row-by-row pattern, < 8 degC under its 65 s mean"}))
        elif kind == "level_burst":
            d = p["dur"] - 60.0
            s = sl(o, o + d)
            sw = _swing(t[s], o, d, p["period"], p["phase"])
            sw *= p["pp"] / max(float(_rolling_pp(sw, win).max()), 1e-9)
            wide = sl(o - 60.0, o + d + 60.0)
            off = s.start - wide.start
            scale = 1.0
            for _ in range(30):  # keep the whole level under 20 mm p-p in 60 s (+ margin)
                trial = level[wide].copy()
                trial[off:off + len(sw)] += sw * scale
                if _rolling_pp(trial, win).max() <= 18.5:
                    break
                scale *= 0.9
            level[s] += sw * scale
            nuis.append(Record("level_burst", o, o + d, 0, 0, p["pp"] * scale, {
                "peak_to_peak_mm": p["pp"] * scale, "period_s": p["period"],
                "note": "below the 20 mm / 60 s instability threshold"}))

    # ---- assemble -------------------------------------------------------------------------
    v = v_plan * resp + spd_noise
    g = _lag(np.sqrt(np.clip(v, 0.05, None) / V_REF), 10.0, hz)  # heat flux ~ sqrt(speed)
    lvl_coupling = np.zeros(R * C)
    for r in range(1, min(R, len(LEVEL_TO_TC)) + 1):
        lvl_coupling[(r - 1) * C:r * C] = LEVEL_TO_TC[r - 1]
    tcs = (T_WATER_SIDE + (base[None, :] - T_WATER_SIDE) * g[:, None]
           + SUPERHEAT_TO_TC * (sh[:, None] - 25.0) + level[:, None] * lvl_coupling[None, :]
           + drift + local + common + white + pulses)
    water_dt = dt0 * _lag(g, 15.0, hz) * (flow_sp / flow) + 0.02 * (sh - 25.0) + dt_noise

    # ---- sensor faults: overwrite single thermocouples -----------------------------------
    for kind, o, p in sorted(nspec, key=lambda s: s[1]):
        if not kind.startswith("tc_"):
            continue
        r, c = p["tc"]
        j = ci(r, c)
        i0 = min(n - 1, math.ceil(o * hz))
        s = slice(i0, min(n, i0 + max(1, round(p["dur"] * hz))))
        k = s.stop - s.start
        if kind == "tc_stuck":
            val = float(tcs[s.start, j])
            tcs[s, j] = val
            det: dict[str, Any] = {"value": val}
        elif kind == "tc_dropout":
            tcs[s, j] = np.nan if p["nan"] else p["level"] + rng_n.normal(0, 0.2, k)
            det = {"nan": p["nan"], "value": None if p["nan"] else p["level"]}
        elif kind == "tc_spike":
            tcs[s, j] += p["amp"]
            det = {"spike_degc": p["amp"]}
        else:
            val = p["value"] if p["high"] else p["low_value"]
            tcs[s, j] = val + rng_n.normal(0, 1.0, k)
            det = {"value": val}
        det["samples"] = k
        sev = p.get("amp", 0.0)
        nuis.append(Record(kind, float(t[s.start]), float(t[s.stop - 1]), r, c, float(sev), det))

    values = np.empty((n, 5 + R * C), dtype=np.float32)
    values[:, 0] = np.round(v, 3)
    values[:, 1] = np.round(level, 1)
    values[:, 2] = sh
    values[:, 3] = flow
    values[:, 4] = water_dt
    values[:, 5:] = tcs
    return StrandData(strand=sid, caster=plan.caster, t=t, heat_index=hidx, values=values,
                      events=sorted(events, key=lambda e: e.onset),
                      nuisances=sorted(nuis, key=lambda e: e.onset), dropped=dropped)


def _sticker(cfg: SimConfig, p: dict[str, Any], o: float, v0: float, depths: np.ndarray,
             row_sp: np.ndarray, t: np.ndarray, sl: Callable[[float, float], slice],
             pulses: np.ndarray, resp: np.ndarray, base: np.ndarray, slow: np.ndarray,
             ci: Callable[[int, int], int], T: float) -> Record:
    """Hot spot at row 1 of column c0, moving down at vp and sideways at vh (V shape)."""
    R, C = cfg.tc_rows, cfg.tc_cols
    c0 = p["col"]
    vp_mm = p["ratio"] * v0 * 1000.0 / 60.0
    vh_mm = p["vh"] * 1000.0 / 60.0
    crit = o + (cfg.mould_length_mm - depths[0]) / vp_mm
    row_on = [o + (depths[r] - depths[0]) / vp_mm for r in range(R)]
    amps = [p["amp"]]
    for r in range(1, R):
        amps.append(amps[-1] * p["growth"][r - 1])
    rates = [p["rate"]] + [p["rate"] * p["rate_jit"][r] for r in range(1, R)]
    taus = p["tau"]
    g0 = math.sqrt(v0 / V_REF)

    # enforce the inversion (lower row hotter than the upper one) on the model without
    # its white noise (`slow` = drift + local fluctuations of each TC)
    # before critical_ts: the lower row's spot may grow up to 1.5x in size and rate; a
    # tear too fast (or a rise too slow) for that shows no inversion before critical_ts.
    inversion: list[float | None] = []
    for r in range(1, R):
        s = sl(o, crit)
        tt = t[s]
        up = _pulse(tt, row_on[r - 1], amps[r - 1], rates[r - 1], taus[r - 1])
        gap = ((base[ci(r, c0)] - base[ci(r + 1, c0)]) * g0
               + slow[s, ci(r, c0)] - slow[s, ci(r + 1, c0)])
        a0, q0 = amps[r], rates[r]
        for k in range(11):
            amps[r], rates[r] = a0 * 1.04**k, min(q0 * 1.04**k, 2.0)
            diff = _pulse(tt, row_on[r], amps[r], rates[r], taus[r]) - up - gap
            if len(diff) and diff.max() >= INVERSION_MARGIN:
                break
        # recorded only when clear of the noise (>= 2 degC in the noise-free model)
        hit = np.nonzero(diff > 0)[0] if len(diff) and diff.max() >= 2.0 else []
        inversion.append(float(tt[hit[0]]) if len(hit) else None)

    # heal after the operators' (late) response at crit
    f, d_down, hold, d_up = p["resp"]
    heal_t0 = crit + 5.0
    tcs_detail = []
    for r in range(1, R + 1):
        for k in range(-p["spread"], p["spread"] + 1):
            c = c0 + k
            if not 1 <= c <= C:
                continue
            on = row_on[r - 1] + abs(k) * cfg.col_pitch_mm / vh_mm
            a = amps[r - 1] * (0.7 ** abs(k))
            q = rates[r - 1] * (0.7 ** abs(k)) if k else rates[r - 1]
            if on >= crit:
                continue
            end = on + a / q + 8 * taus[r - 1]
            s = sl(on, max(end, heal_t0 + 90))
            tt = t[s]
            pul = _pulse(tt, on, a, q, taus[r - 1])
            pul *= np.exp(-np.clip(tt - heal_t0, 0, None) / 15.0)
            pulses[s, ci(r, c)] += pul
            tcs_detail.append({"row": r, "col": c, "rise_start_ts": on, "amplitude": a,
                               "rate": q, "peak_ts": on + a / q, "fall_tau_s": taus[r - 1]})
    s = sl(crit, crit + d_down + hold + d_up + 1)
    resp[s] *= 1.0 - (1.0 - f) * _trapezoid(t[s], crit, d_down, hold, d_up)
    return Record("sticker", o, crit, 1, c0, p["amp"], {
        "casting_speed": v0, "vp_m_min": p["ratio"] * v0, "vp_ratio": p["ratio"],
        "vh_m_min": p["vh"], "spread_cols": p["spread"], "rise_rate": p["rate"],
        "row_depths_mm": [float(x) for x in depths],
        "row_rise_start_ts": row_on, "row_amplitude": amps, "row_rate": rates,
        "row_lag_s": [float(row_sp[r] / vp_mm) for r in range(R - 1)],
        "inversion_ts": inversion, "tcs": tcs_detail,
        "critical": "tear reaches the mould exit (breakout if nothing were done)",
        "response": {"start_ts": crit, "speed_factor": f,
                     "end_ts": crit + d_down + hold + d_up}})


def _crack(cfg: SimConfig, p: dict[str, Any], o: float, t: np.ndarray,
           sl: Callable[[float, float], slice], pulses: np.ndarray,
           ci: Callable[[int, int], int]) -> Record:
    """Air gap in one column: each row drops fast, holds, recovers; rows in turn downwards."""
    R = cfg.tc_rows
    c0 = p["col"]
    fall = p["fall"]
    rows = []
    on = o
    for r in range(1, R + 1):
        if r > 1:
            on += p["delays"][r - 2]
        depth = max(8.0, p["depth"] * p["row_jit"][r - 1])
        # physical drop so that the value ends `depth` below its 65 s running mean, plus
        # 1 degC so that slow local fluctuations cannot hide the threshold
        drop = (depth + 1.0) / (1.0 - (fall / 2 + 1.0) / 65.0)
        hold, rec = p["hold"][r - 1], p["recover"][r - 1]
        s = sl(on, on + fall + hold + rec)
        tt = t[s]
        shape = _ramp01(tt, on, fall) - _ramp01(tt, on + fall + hold, rec)
        pulses[s, ci(r, c0)] -= drop * shape
        rows.append({"row": r, "drop_start_ts": on, "full_ts": on + fall,
                     "recover_start_ts": on + fall + hold, "end_ts": on + fall + hold + rec,
                     "below_running_mean": depth, "drop": drop})
    crit = rows[-1]["end_ts"]
    return Record("crack", o, crit, 1, c0, p["depth"], {
        "rows": rows, "running_mean_s": 65.0, "fall_s": fall,
        "critical": "the lowest row has shown the drop and recovered (end of the signature)"})
