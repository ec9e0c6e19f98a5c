"""What stands in for a failed thermocouple, in the daemon and on recorded series alike.

A thermocouple outside ``TC_VALID_RANGE`` (or missing) is a broken sensor, not a reading.
Its value is filled in two steps:

1. The decoder, which sees one reading at a time, puts the mean of the valid thermocouples
   of its row (:meth:`TcFill.row_mean`).
2. Where the strand's previous reading is known, the value is *carried* instead
   (:meth:`TcFill.carry`): the previous value plus the change of the mean of the row's valid
   thermocouples since then. Every thermocouple sits a few degrees off its row's mean
   (its depth in the copper, its water channel); the row mean alone puts a step of that
   size into the signal when the sensor fails and when it comes back, and a one-column step
   is what a crack or a sticker looks like. Carrying keeps the offset, so the failure adds
   no step; the column then follows its row.

The daemon carries from the strand's last reading in its ring buffer (or an earlier reading
of the same poll); :func:`fill_series` does the same on a whole recorded series, so that
training and evaluation see what the daemon would feed the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from streamer.channels import TC_VALID_RANGE, parse_tc_name


class TcFill:
    """The thermocouple rows of one model's channel list and the two fill rules."""

    def __init__(self, channels: Sequence[str]):
        self.channels = tuple(channels)
        rows: dict[int, list[int]] = {}
        for i, c in enumerate(self.channels):
            rc = parse_tc_name(c)
            if rc is not None:
                rows.setdefault(rc[0], []).append(i)
        self.rows = [np.array(ix, dtype=np.intp) for _, ix in sorted(rows.items())]
        self.tc_idx = np.concatenate(self.rows) if self.rows else np.zeros(0, dtype=np.intp)
        self._index = {c: i for i, c in enumerate(self.channels)}
        self._row_of = {int(i): k for k, row in enumerate(self.rows) for i in row}
        # (good, gone) index pairs per affected row, by the tuple of failed channels: a failed
        # sensor stays failed for many readings, so the same tuple comes back
        self._plans: dict[tuple[str, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
        self.lo, self.hi = TC_VALID_RANGE

    def invalid(self, values: np.ndarray) -> np.ndarray:
        """Bool mask, same shape as ``values`` ([F] or [N, F]): thermocouples out of range or
        NaN (NaN compares false)."""
        bad = np.zeros(values.shape, dtype=bool)
        tc = values[..., self.tc_idx]
        bad[..., self.tc_idx] = ~((tc >= self.lo) & (tc <= self.hi))
        return bad

    def row_mean(self, arr: np.ndarray) -> tuple[str, ...] | None:
        """Fill one reading's invalid thermocouples (float64 [F], in place) with the mean of
        the valid ones of their row. Returns the names filled, or None when a whole row is
        invalid (the reading cannot be used)."""
        names: list[str] = []
        for row in self.rows:
            r = arr[row]
            good = (r >= self.lo) & (r <= self.hi)
            if good.all():
                continue
            if not good.any():
                return None
            arr[row[~good]] = r[good].mean()
            names += [self.channels[i] for i in row[~good]]
        return tuple(names)

    def carry(self, cur: np.ndarray, prev: np.ndarray, bad: np.ndarray) -> None:
        """Replace ``cur``'s invalid thermocouples (float32 [F], in place) by their value in
        ``prev`` (the strand's previous reading, as stored) moved by the change since then of
        the mean of the thermocouples of their row that are valid in ``cur``."""
        self._apply(cur, prev, [(row[~b], row[b]) for row in self.rows if (b := bad[row]).any()])

    @staticmethod
    def _apply(cur: np.ndarray, prev: np.ndarray,
               plan: list[tuple[np.ndarray, np.ndarray]]) -> None:
        for good, gone in plan:
            shift = (np.add.reduce(cur[good], dtype=np.float64)
                     - np.add.reduce(prev[good], dtype=np.float64)) / len(good)
            cur[gone] = prev[gone] + shift

    def carry_poll(self, values: np.ndarray, strands: Sequence[str],
                   degraded: dict[int, tuple[str, ...]],
                   last: Callable[[str], np.ndarray | None]) -> None:
        """:meth:`carry` for the degraded rows of one decoded poll (``values`` float32 [n, F],
        in place). The previous reading of a row's strand is the latest earlier row of the
        poll for it, else ``last(strand)`` (the buffer's last row); with neither, the row
        mean stays."""
        if not degraded:
            return
        wanted = {strands[r] for r in degraded}
        seen: dict[str, int] = {}
        for i in range(max(degraded) + 1):
            s = strands[i]
            if s not in wanted:
                continue
            names = degraded.get(i)
            if names:
                j = seen.get(s)
                prev = values[j] if j is not None else last(s)
                if prev is not None:
                    self._apply(values[i], prev, self._plan(names))
            seen[s] = i

    def _plan(self, names: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(valid, failed) indices of each row that ``names`` touch, as :meth:`carry` forms
        them from a mask."""
        plan = self._plans.get(names)
        if plan is None:
            gone_by_row: dict[int, list[int]] = {}
            for c in names:
                i = self._index[c]
                gone_by_row.setdefault(self._row_of[i], []).append(i)
            plan = []
            for k, gone in sorted(gone_by_row.items()):
                row = self.rows[k]
                plan.append((row[~np.isin(row, gone)], row[np.isin(row, gone)]))
            if len(self._plans) < 4096:
                self._plans[names] = plan
        return plan


def fill_series(fill: TcFill, values: np.ndarray, keep: np.ndarray, invalid: np.ndarray
                ) -> tuple[np.ndarray, int]:
    """One strand's series (float64 [N, F], time order) with its invalid thermocouples filled
    as the daemon fills them; ``invalid`` is :meth:`TcFill.invalid` of ``values``, ``keep``
    marks the readings the daemon would accept (the previous reading of one is the previous
    kept one). Returns (float32 [N, F], number of values filled among the kept readings).
    Rows a whole of which is invalid are left as they are: ``keep`` must already exclude
    them."""
    v = np.array(values, dtype=np.float64, copy=True)
    bad = invalid & keep[:, None]
    if not bad.any():
        return v.astype(np.float32), 0
    for row in fill.rows:
        r, b = v[:, row], bad[:, row]
        n_good = (~b).sum(1)
        mean = np.where(b, 0.0, r).sum(1) / np.maximum(n_good, 1)
        v[:, row] = np.where(b, mean[:, None], r)
    out = v.astype(np.float32)
    kept = np.flatnonzero(keep)
    for p in np.flatnonzero(bad[kept].any(1)).tolist():
        if p > 0:
            fill.carry(out[kept[p]], out[kept[p - 1]], bad[kept[p]])
    return out, int(bad.sum())
