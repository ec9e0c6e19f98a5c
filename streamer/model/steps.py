"""The last N valid readings of every row of a padded batch.

Why a module of its own: the main LSTM (``architecture.steps``) and the column encoder
(``columns.steps``) both read only the end of a window whose first readings serve as context
(``columns.baseline``), and they must cut it the same way. Valid readings come first in a
row; a row of length L keeps readings [max(0, L - N), L).
"""

from __future__ import annotations

import torch


def last_steps(x: torch.Tensor, lengths: torch.Tensor | None, n: int
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """x [B, T, F] -> (x [B, min(T, N), F], lengths or None when all full, start [B] or None).

    ``start[b]`` is the window position of row b's first kept reading; None when nothing
    was cut (n = 0 or T <= n), so callers can keep the unpadded fast path."""
    T = x.shape[1]
    if n <= 0 or T <= n:
        return x, lengths, None
    if lengths is None:
        return x[:, -n:], None, torch.full((x.shape[0],), T - n, device=x.device)
    lengths = lengths.to(x.device)
    start = (lengths - n).clamp(min=0)
    idx = _positions(start, n, T)
    x = x.gather(1, idx[..., None].expand(-1, -1, x.shape[2]))
    lengths = lengths.clamp(max=n)
    return x, (None if int(lengths.min()) == n else lengths), start


def to_window_positions(w: torch.Tensor, start: torch.Tensor | None, T: int) -> torch.Tensor:
    """Per-step values over the kept readings [B, N] -> [B, T] at their window positions,
    0 elsewhere (context readings and padding). Identity when nothing was cut."""
    if start is None:
        return w
    out = w.new_zeros(w.shape[0], T)
    return out.scatter_add_(1, _positions(start.to(w.device), w.shape[1], T), w)


def _positions(start: torch.Tensor, n: int, T: int) -> torch.Tensor:
    """[B, n] window positions of each row's kept readings (valid readings come first)."""
    return (start[:, None] + torch.arange(n, device=start.device)).clamp(max=T - 1)
