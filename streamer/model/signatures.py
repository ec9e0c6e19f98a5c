"""Defect-signature channels: what the classical rules measure, as per-step model inputs.

An LSTM can in principle learn a 5 s rise rate or a 65 s running mean from z-scored
temperatures, but a 0.3 degC/s rise on one of 24 thermocouples is a tiny change in z units
and a 2-layer, 64-unit model trained for 12 minutes does not find it reliably (the shipped
model without these channels missed one sticker in five). So the model is also fed the
quantities plants have alarmed on for decades (DOMAIN.md), each in units of its classical
threshold, so that 1.0 means "the rule would fire here":

========================  ===============================================================  =====
channel (per step t)      definition (causal, from the window's own readings only)         unit
========================  ===============================================================  =====
``rise:tc_rR_cC``         (T(t) - T(t - 5)) / 5 s minus the mean of that rate over all       0.3 degC/s
                          TCs (T = 3-reading moving average; the mean takes out mould-
                          wide warming after a speed change)
``drop:tc_rR_cC``         running mean of the last 65 s minus T(t), minus the mean of       8 degC
                          that drop over all TCs (a mould-wide cooling is not a crack)
``inversion:tc_rR_cC``    T(row R) - T(row R - 1) in the same column, minus its running     1 degC
                          mean of the last 65 s: the lower TC warming against the upper
                          one as a sticker's tear passes (rows 2.. only)
``level_swing_60s``       max - min of the mould level over the last 60 s                  20 mm
``level_swing_30s``       the same over 30 s                                               20 mm
``speed_change_60s``      casting speed now minus 60 s ago                                  0.2 m/min
``tc_common_rate``        the mean rise rate removed above                                 0.3 degC/s
========================  ===============================================================  =====

At the start of a window the look-backs are shorter (a 65 s mean over the readings there
are), exactly as in training, which cuts windows the same way. Every channel is clipped to
+-10 thresholds: a sensor spike must not dominate the input. Rows past a sequence's length
(padding) hold garbage that the LSTM never reads (packed sequences) and attention masks.
The rules take the median over the TCs for the common mode; the mean is used here because
``torch.median`` over 24 values per step cost three times the whole LSTM on a CPU, and one
TC's sticker moves a 24-TC mean by only 1/24 of its rise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from streamer.channels import parse_tc_name

# The rule system's windows and thresholds (RuleSettings), fixed here rather than read from
# it: they scale a checkpoint's inputs, which must not move when the evaluation is retuned.
RISE_S, SMOOTH_S, MEAN_S, LEVEL_S, SPEED_S = 5, 3, 65, 60, 60  # seconds
RISE_UNIT, DROP_UNIT, INVERSION_UNIT = 0.3, 8.0, 1.0           # degC/s, degC, degC
LEVEL_UNIT, SPEED_UNIT = 20.0, 0.2                             # mm, m/min
CLIP = 10.0


def tc_grid(channels: Sequence[str]) -> list[list[int]]:
    """idx[row][col] (0-based) of every thermocouple channel; ValueError if the grid has holes."""
    pos = {rc: i for i, c in enumerate(channels) if (rc := parse_tc_name(c)) is not None}
    if not pos:
        raise ValueError("no thermocouple channels (tc_r{row}_c{col})")
    rows, cols = max(r for r, _ in pos), max(c for _, c in pos)
    missing = [f"tc_r{r}_c{c}" for r in range(1, rows + 1) for c in range(1, cols + 1)
               if (r, c) not in pos]
    if missing:
        raise ValueError(f"thermocouple grid incomplete, missing {', '.join(missing[:4])}")
    return [[pos[(r, c)] for c in range(1, cols + 1)] for r in range(1, rows + 1)]


def feature_names(channels: Sequence[str]) -> list[str]:
    grid = tc_grid(channels)
    tcs = [channels[i] for row in grid for i in row]
    lower = [channels[i] for row in grid[1:] for i in row]
    return ([f"rise:{c}" for c in tcs] + [f"drop:{c}" for c in tcs]
            + [f"inversion:{c}" for c in lower]
            + ["level_swing_60s", "level_swing_30s", "speed_change_60s", "tc_common_rate"])


def source_channels(channels: Sequence[str]) -> list[int]:
    """For every signature channel, the index of the reading channel it describes (-1: none)."""
    grid = tc_grid(channels)
    level = _index(channels, "mould_level")
    speed = _index(channels, "casting_speed")
    flat = [i for row in grid for i in row]
    return (flat + flat + [i for row in grid[1:] for i in row]
            + [level, level, speed, -1])


class SignatureFeatures(nn.Module):
    """x [B, T, F] readings in physical units -> [B, T, K] signature channels (table above)."""

    def __init__(self, channels: Sequence[str], hz: float = 1.0):
        super().__init__()
        grid = tc_grid(channels)
        self.rows, self.cols = len(grid), len(grid[0])
        flat = [i for row in grid for i in row]
        self.register_buffer("tc_idx", torch.tensor(flat), persistent=False)
        # the usual layout keeps the TCs contiguous: a slice is a view, a gather a copy
        self.tc_slice = (slice(flat[0], flat[0] + len(flat))
                         if flat == list(range(flat[0], flat[0] + len(flat))) else None)
        self.level_idx, self.speed_idx = _index(channels, "mould_level"), _index(channels,
                                                                                 "casting_speed")
        self.steps = {k: max(1, round(s * hz)) for k, s in (
            ("rise", RISE_S), ("smooth", SMOOTH_S), ("mean", MEAN_S), ("level", LEVEL_S),
            ("level30", LEVEL_S // 2), ("speed", SPEED_S))}
        self.hz = hz
        self.out_features = len(feature_names(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        B, T, _ = x.shape
        s = self.steps
        tc = x[..., self.tc_slice] if self.tc_slice is not None else x[..., self.tc_idx]
        tc = _rolling_mean(tc, s["smooth"])  # [B, T, N]
        rate = (tc - _lag(tc, s["rise"])) * (self.hz / s["rise"])
        common = rate.mean(dim=-1, keepdim=True)  # a median is 3x the cost of the LSTM on CPU
        rise = (rate - common) / RISE_UNIT
        drop = _rolling_mean(tc, s["mean"]) - tc
        drop = (drop - drop.mean(dim=-1, keepdim=True)) / DROP_UNIT
        grid = tc.reshape(B, T, self.rows, self.cols)
        inv = (grid[:, :, 1:] - grid[:, :, :-1]).reshape(B, T, -1)
        inv = (inv - _rolling_mean(inv, s["mean"])) / INVERSION_UNIT
        zero = x.new_zeros(B, T, 1)
        if self.level_idx >= 0:
            level = x[..., self.level_idx : self.level_idx + 1]
            sw60 = _rolling_range(level, s["level"]) / LEVEL_UNIT
            sw30 = _rolling_range(level, s["level30"]) / LEVEL_UNIT
        else:
            sw60 = sw30 = zero
        if self.speed_idx >= 0:
            speed = x[..., self.speed_idx : self.speed_idx + 1]
            dspeed = (speed - _lag(speed, s["speed"])) / SPEED_UNIT
        else:
            dspeed = zero
        out = torch.cat([rise, drop, inv, sw60, sw30, dspeed, common / RISE_UNIT], dim=-1)
        return out.clamp(-CLIP, CLIP)


def _index(channels: Sequence[str], name: str) -> int:
    return list(channels).index(name) if name in channels else -1


def _lag(x: torch.Tensor, k: int) -> torch.Tensor:
    """x(t - k) along dim 1, the first reading standing in before the window starts."""
    if k >= x.shape[1]:
        return x[:, :1].expand_as(x)
    return torch.cat([x[:, :1].expand(-1, k, *x.shape[2:]), x[:, :-k]], dim=1)


def _rolling_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the last k readings (fewer at the start) along dim 1 (slices, no gathers)."""
    T = x.shape[1]
    c = F.pad(x.cumsum(dim=1), (0, 0, 1, 0))  # c[t] = sum of x[:t], T + 1 rows
    k = min(k, T)
    before = torch.cat([c[:, :1].expand(-1, k, *c.shape[2:]), c[:, 1 : T + 1 - k]], dim=1)
    n = torch.arange(1, T + 1, device=x.device).clamp(max=k).to(x.dtype).view(1, T, 1)
    return (c[:, 1:] - before) / n


def rolling_min(x: torch.Tensor, k: int) -> torch.Tensor:
    """Minimum of the last k readings (fewer at the start) along dim 1 of x [B, T, ...]:
    causal, so a reading never depends on the padding after it."""
    B, T = x.shape[:2]
    y = x.reshape(B, T, -1).transpose(1, 2)  # [B, F, T]
    y = F.pad(y, (k - 1, 0), mode="replicate")  # the first reading stands in before it
    return (-F.max_pool1d(-y, k, stride=1)).transpose(1, 2).reshape(x.shape)


def _rolling_range(x: torch.Tensor, k: int) -> torch.Tensor:
    """max - min of the last k readings along dim 1, for x [B, T, 1]."""
    return -rolling_min(-x, k) - rolling_min(x, k)
