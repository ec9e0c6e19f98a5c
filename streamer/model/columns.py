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
not swamp a 6 degC sticker. The column's own change and the row's common change are both
given, so the LSTM can tell a local rise from the whole mould warming after a speed change.
t = 0 is the window's first valid reading, or with ``columns.steps`` the first of the last
``steps`` readings (a sticker runs down the three rows in well under a minute; reading 60 of
120 steps halves the encoder's cost). Padded steps are never read (packed sequences).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from streamer.model.signatures import tc_grid

LEVEL_UNIT, RATE_UNIT, RATE_S, CLIP = 5.0, 0.3, 5, 10.0  # degC, degC/s, s, units


class ColumnEncoder(nn.Module):
    """x_raw [B, T, F] readings -> [B, 2 * hidden] (max and mean over columns of each
    column's last LSTM state)."""

    def __init__(self, channels: Sequence[str], hidden_size: int, steps: int = 0,
                 hz: float = 1.0):
        super().__init__()
        self.steps = steps  # read only a window's last `steps` readings (0: all of them)
        grid = tc_grid(channels)  # grid[row][col] = channel index
        self.rows, self.cols = len(grid), len(grid[0])
        # column-major, so that a reshape gives [.., cols, rows]
        idx = [grid[r][c] for c in range(self.cols) for r in range(self.rows)]
        self.register_buffer("tc_idx", torch.tensor(idx), persistent=False)
        self.rate_steps = max(1, round(RATE_S * hz))
        self.rate_scale = hz / self.rate_steps / RATE_UNIT
        self.in_features = 4 * self.rows - 1
        self.hidden_size = hidden_size
        self.out_features = 2 * hidden_size
        self.lstm = nn.LSTM(self.in_features, hidden_size, batch_first=True)

    def features(self, x_raw: torch.Tensor) -> torch.Tensor:
        """[B, T, C, 4R - 1] per-column inputs (module docstring)."""
        B, T, _ = x_raw.shape
        tc = x_raw.float()[..., self.tc_idx].reshape(B, T, self.cols, self.rows)
        rel = tc - tc[:, :1]
        row_rel = rel.mean(dim=2, keepdim=True).expand_as(rel)
        step = tc[..., 1:] - tc[..., :-1]
        inv = step - step[:, :1]
        k = self.rate_steps  # never shortened by T: a row must not depend on the padding
        rate = torch.zeros_like(rel)
        if k < T:
            rate[:, k:] = (rel[:, k:] - rel[:, :-k]) * self.rate_scale
        out = torch.cat([rel / LEVEL_UNIT, row_rel / LEVEL_UNIT, inv / LEVEL_UNIT, rate], dim=-1)
        return out.clamp(-CLIP, CLIP)

    def forward(self, x_raw: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.steps and x_raw.shape[1] > self.steps:
            x_raw, lengths = self._last_steps(x_raw, lengths)
        B, T, _ = x_raw.shape
        f = self.features(x_raw).to(self.lstm.weight_ih_l0.dtype)
        f = f.permute(0, 2, 1, 3).reshape(B * self.cols, T, self.in_features)
        if lengths is None:
            _, (h_n, _) = self.lstm(f)
        else:
            lens = lengths.cpu().repeat_interleave(self.cols)
            _, (h_n, _) = self.lstm(pack_padded_sequence(f, lens, batch_first=True,
                                                         enforce_sorted=False))
        h = h_n[-1].reshape(B, self.cols, self.hidden_size)
        return torch.cat([h.amax(dim=1), h.mean(dim=1)], dim=-1)

    def _last_steps(self, x: torch.Tensor, lengths: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The last ``steps`` valid readings of every row (valid readings come first)."""
        S = self.steps
        if lengths is None:
            return x[:, -S:], None
        T, F = x.shape[1], x.shape[2]
        lengths = lengths.to(x.device)
        start = (lengths - S).clamp(min=0)
        idx = (start[:, None] + torch.arange(S, device=x.device)).clamp(max=T - 1)
        x = x.gather(1, idx[..., None].expand(-1, -1, F))
        lengths = lengths.clamp(max=S)
        return x, (None if int(lengths.min()) == S else lengths)
