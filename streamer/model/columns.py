"""Column encoder: one small LSTM shared by every thermocouple column of the mould.

Why: a sticker is a hot spot that runs down ONE column (row 1, then 2, then 3, the lower row
ending hotter than the upper: the inversion), and a crack a cold spot that does the same.
The main LSTM sees 24 thermocouples side by side and has to learn the pattern once per
column from ~100 training stickers, a handful per column; it missed small one-column
stickers that the boosted trees, whose features take the maximum over all thermocouples,
caught. Here the same weights read every column, so every training sticker teaches all
columns, and pooling over columns (max and mean) makes the summary the same whichever column
the defect is in.

Per step t and column c, from the window's own readings (degC), the inputs are::

    rel[r]      T[r,c](t) - T[r,c](0)                       / 5 degC   (r = 1..R)
    row_rel[r]  mean over columns of rel[r]                 / 5 degC   (the mould-wide move)
    inv[r]      (T[r+1,c] - T[r,c])(t) - (same at t = 0)    / 5 degC   (r = 1..R-1)
    rate[r]     (rel[r](t) - rel[r](t - 5 s)) / 5 s          / 0.3 degC/s  (0 for t < 5 s)

so 4R - 1 inputs (11 for 3 rows), each clipped to +-10 units: a 30-80 degC sensor spike must
not swamp a 6 degC sticker. With ``baseline`` = N > 0 there are R more::

    lvl[r]      dev[r,c](t) - mean of dev[r,c] over the baseline readings   / 5 degC
    dev[r,c]    T[r,c] - mean over columns of T[r,.]   (the TC's offset from its row)

where the baseline readings are the first N of the readings before those the LSTM reads
(``steps``), i.e. minutes before "now". Why: a near-crack dips one TC by 3-14 degC for a
minute or two and then recovers at a sticker's rate; inside a 120 s window that recovery is
a one-column rise like a sticker's. Against the TC's usual offset from its row it is a
return to zero, a sticker a rise above it. A window too short to hold any reading before
the read part (a strand warming up) uses the offset at the read part's start instead, so
lvl is the offset's change since then.

With ``peaks`` there are 2R - 1 more::

    peak[r]       largest held rise so far: max over s <= t of (min of rel[r] over the
                  5 s up to s)                                        / 5 degC   (r = 1..R)
    peak_step[r]  peak[r+1] - peak[r]                                 / 5 degC   (r = 1..R-1)

Why: a sticker's hot spot grows as it moves down the column (6 -> 9 degC from row 1 to row
2 in the faintest simulated ones) and a weak propagating near-sticker's fades (0.4-0.7 of
the row above); the row below rises 3-23 s after the row above, by which time the upper
row's own rise is falling back. ``peak_step`` compares the two rises whatever that lag is,
where ``inv`` compares the rows at the same moment. The 5 s minimum keeps a 1-3 s
sensor spike (30-80 degC) from setting a peak that would last the rest of the window.

The column's own change and the row's common change are both given, so the LSTM can tell a
local rise from the whole mould warming after a speed change.
t = 0 is the window's first valid reading, or with ``columns.steps`` the first of the last
``steps`` readings (a sticker runs down the three rows in well under a minute; reading 60 of
120 steps halves the encoder's cost). Padded steps are never read (packed sequences).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from streamer.model.signatures import rolling_min, tc_grid
from streamer.model.steps import last_steps

LEVEL_UNIT, RATE_UNIT, RATE_S, CLIP = 5.0, 0.3, 5, 10.0  # degC, degC/s, s, units
HELD_S = 5  # s: a peak counts a rise held this long (spikes last 1-3 s)


class ColumnEncoder(nn.Module):
    """x_raw [B, T, F] readings -> [B, 2 * hidden] (max and mean over columns of each
    column's last LSTM state)."""

    def __init__(self, channels: Sequence[str], hidden_size: int, steps: int = 0,
                 hz: float = 1.0, baseline: int = 0, peaks: bool = False):
        super().__init__()
        self.steps = steps  # read only a window's last `steps` readings (0: all of them)
        self.baseline = baseline  # readings before those that give each TC's usual offset
        if baseline and not steps:
            raise ValueError("baseline needs steps > 0: the baseline readings come before them")
        grid = tc_grid(channels)  # grid[row][col] = channel index
        self.rows, self.cols = len(grid), len(grid[0])
        # column-major, so that a reshape gives [.., cols, rows]
        idx = [grid[r][c] for c in range(self.cols) for r in range(self.rows)]
        self.register_buffer("tc_idx", torch.tensor(idx), persistent=False)
        self.rate_steps = max(1, round(RATE_S * hz))
        self.rate_scale = hz / self.rate_steps / RATE_UNIT
        self.peaks = peaks
        self.held_steps = max(1, round(HELD_S * hz))
        self.in_features = (4 * self.rows - 1 + (self.rows if baseline else 0)
                            + (2 * self.rows - 1 if peaks else 0))
        self.hidden_size = hidden_size
        self.out_features = 2 * hidden_size
        self.lstm = nn.LSTM(self.in_features, hidden_size, batch_first=True)

    def features(self, x_raw: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, C, 4R - 1 (+ R) (+ 2R - 1)] per-column inputs (module docstring); ``base``
        [B, C, R]: each TC's baseline offset from its row (``offset_baseline``)."""
        T = x_raw.shape[1]
        tc = self._grid(x_raw)
        rel = tc - tc[:, :1]
        row_rel = rel.mean(dim=2, keepdim=True).expand_as(rel)
        step = tc[..., 1:] - tc[..., :-1]
        inv = step - step[:, :1]
        k = self.rate_steps  # never shortened by T: a row must not depend on the padding
        rate = torch.zeros_like(rel)
        if k < T:
            rate[:, k:] = (rel[:, k:] - rel[:, :-k]) * self.rate_scale
        parts = [rel / LEVEL_UNIT, row_rel / LEVEL_UNIT, inv / LEVEL_UNIT, rate]
        if base is not None:
            parts.append((_offsets(tc) - base[:, None]) / LEVEL_UNIT)
        if self.peaks:
            peak = rolling_min(rel, self.held_steps).cummax(dim=1).values
            parts += [peak / LEVEL_UNIT, (peak[..., 1:] - peak[..., :-1]) / LEVEL_UNIT]
        return torch.cat(parts, dim=-1).clamp(-CLIP, CLIP)

    def offset_baseline(self, x_raw: torch.Tensor, lengths: torch.Tensor | None
                        ) -> torch.Tensor:
        """[B, C, R]: each TC's offset from its row, averaged over the first ``baseline``
        readings before the last ``steps`` (fewer if the window holds fewer); a row with
        none uses the offset at the first reading the LSTM reads."""
        B, T, _ = x_raw.shape
        dev = _offsets(self._grid(x_raw))  # [B, T, C, R]
        lengths = (torch.full((B,), T, device=x_raw.device) if lengths is None
                   else lengths.to(x_raw.device))
        before = (lengths - self.steps).clamp(min=0)  # readings before the read part
        n = before.clamp(max=self.baseline)
        use = (torch.arange(T, device=x_raw.device)[None, :] < n[:, None]).to(dev.dtype)
        mean = (dev * use[..., None, None]).sum(1) / n.clamp(min=1)[:, None, None]
        first = dev[torch.arange(B, device=x_raw.device), before]  # read part's first reading
        return torch.where((n > 0)[:, None, None], mean, first)

    def forward(self, x_raw: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        base = self.offset_baseline(x_raw, lengths) if self.baseline else None
        x_raw, lengths, _ = last_steps(x_raw, lengths, self.steps)
        B, T, _ = x_raw.shape
        f = self.features(x_raw, base).to(self.lstm.weight_ih_l0.dtype)
        f = f.permute(0, 2, 1, 3).reshape(B * self.cols, T, self.in_features)
        if lengths is None:
            _, (h_n, _) = self.lstm(f)
        else:
            lens = lengths.cpu().repeat_interleave(self.cols)
            _, (h_n, _) = self.lstm(pack_padded_sequence(f, lens, batch_first=True,
                                                         enforce_sorted=False))
        h = h_n[-1].reshape(B, self.cols, self.hidden_size)
        return torch.cat([h.amax(dim=1), h.mean(dim=1)], dim=-1)

    def _grid(self, x_raw: torch.Tensor) -> torch.Tensor:
        """[B, T, F] readings -> [B, T, C, R] thermocouples (float32)."""
        B, T, _ = x_raw.shape
        return x_raw.float()[..., self.tc_idx].reshape(B, T, self.cols, self.rows)


def _offsets(tc: torch.Tensor) -> torch.Tensor:
    """[B, T, C, R] -> each TC minus the mean of its row over the columns."""
    return tc - tc.mean(dim=2, keepdim=True)
