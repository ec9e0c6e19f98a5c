"""Ring buffers for every strand in one preallocated array, and vectorised window gathering.

All strands share ``data[slot, C, F]`` with C = window + slack, so a window that ended a few
readings ago (several readings of one strand arrive in one poll) is still intact when the
batch is gathered: up to ``slack`` readings per strand may be appended between snapshots.
Gathering B windows is one fancy-indexing operation, no Python loop per window.

The bookkeeping (write position, fill, readings since the last evaluation, last seq and ts)
lives in one numpy array per field, indexed by slot, so that appending a poll is a handful
of array operations over the poll, not Python work per reading (see :meth:`append_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_
from typing import Any

import numpy as np

_NEVER = np.iinfo(np.int64).min  # "no seq yet" for a strand created in this call


class StrandState:
    """Read-only view of one strand's bookkeeping (the arrays of :class:`StrandBuffers`)."""

    __slots__ = ("_b", "slot")

    def __init__(self, buffers: StrandBuffers, slot: int):
        self._b = buffers
        self.slot = slot

    @property
    def heat(self) -> str:
        return self._b._heat[self.slot]

    @property
    def total(self) -> int:  # readings ever written to this slot: the ring's write position
        return int(self._b._total[self.slot])

    @property
    def filled(self) -> int:  # readings since the window (re)started: a window's valid length
        return int(self._b._filled[self.slot])

    @property
    def since_eval(self) -> int:
        return int(self._b._since[self.slot])

    @property
    def last_seq(self) -> int:
        return int(self._b._last_seq[self.slot])

    @property
    def last_ts(self) -> float:
        return float(self._b._last_ts[self.slot])

    @property
    def last_seen(self) -> float:  # monotonic wall time of the last reading, for idle eviction
        return float(self._b._last_seen[self.slot])

    @property
    def partition(self) -> int:
        return int(self._b._partition[self.slot])


@dataclass(slots=True)
class WindowRef:
    """A due window: strand's slot, the absolute index of its last reading, and its length."""

    slot: int
    end: int  # absolute write index of the window's last reading
    length: int


@dataclass(slots=True)
class BatchAppend:
    codes: np.ndarray  # [n] AppendResult code per row (rows before `start` untouched)
    due: list[tuple[int, WindowRef]]  # (row, window now due)
    stop: int  # rows [start, stop) were handled; stop < n: gather `due`, then call again


class AppendResult:
    APPENDED = 0
    DUPLICATE = 1  # seq not above the last one: duplicate or out of order
    RESTARTED = 2  # appended, but the window restarted after a gap


@dataclass(slots=True)
class _Live:
    """One strand's bookkeeping as Python numbers, while the row-by-row path runs."""

    total: int
    filled: int
    since: int
    last_seq: int
    last_ts: float
    heat: str
    appends: int = 0  # in this call
    touched: bool = False


@dataclass(slots=True)
class _Groups:
    """The rows of one call sorted by strand (stable, so each strand's rows stay in order)."""

    order: np.ndarray  # [m] sorted position -> row (relative to the call's first row)
    start: np.ndarray  # [g] sorted position of each strand's first row
    sizes: np.ndarray  # [g] rows of each strand
    gid: np.ndarray  # [m] sorted position -> its strand's index in start/sizes/slot
    rank: np.ndarray  # [m] how many earlier rows of the same strand there are in the call
    slot: np.ndarray  # [g] each strand's slot (provisional ids >= slots for new strands)

    @classmethod
    def of(cls, slots: np.ndarray) -> _Groups:
        order = np.argsort(slots, kind="stable")
        s = slots[order]
        first = np.empty(len(s), dtype=bool)
        first[0], first[1:] = True, s[1:] != s[:-1]
        start = np.flatnonzero(first)
        sizes = np.diff(start, append=len(s))
        gid = np.cumsum(first) - 1
        return cls(order, start, sizes, gid, np.arange(len(s)) - start[gid], s[start])


class StrandBuffers:
    # below this many rows a call takes the row-by-row path: it is cheaper than the fixed
    # cost of a dozen numpy calls (the answers are identical either way)
    vector_min_rows = 24

    def __init__(self, window: int, n_features: int, *, hop: int = 1, min_fill: int = 1,
                 gap_restart_s: float = 10.0, slack: int | None = None,
                 initial_slots: int = 64):
        if not 1 <= min_fill <= window:
            raise ValueError(f"min_fill must be in [1, window={window}], got {min_fill}")
        self.window = window
        self.capacity = window + (slack if slack is not None else window)
        self.n_features = n_features
        self.hop = hop
        self.min_fill = min_fill
        self.gap_restart_s = gap_restart_s
        self.data = np.zeros((initial_slots, self.capacity, n_features), dtype=np.float32)
        self.strands: dict[str, StrandState] = {}
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = list(range(initial_slots - 1, -1, -1))
        self._steps = np.arange(window, dtype=np.int64)
        self._total = np.zeros(initial_slots, dtype=np.int64)
        self._filled = np.zeros(initial_slots, dtype=np.int64)
        self._since = np.zeros(initial_slots, dtype=np.int64)
        self._last_seq = np.zeros(initial_slots, dtype=np.int64)
        self._last_ts = np.zeros(initial_slots, dtype=np.float64)
        self._last_seen = np.zeros(initial_slots, dtype=np.float64)
        self._partition = np.zeros(initial_slots, dtype=np.int64)
        self._heat: list[str] = [""] * initial_slots

    _COLUMNS = ("_total", "_filled", "_since", "_last_seq", "_last_ts", "_last_seen",
                "_partition")

    @property
    def slack(self) -> int:
        return self.capacity - self.window

    def __len__(self) -> int:
        return len(self.strands)

    def _grow(self) -> None:
        old = self.data.shape[0]
        self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=0)
        for name in self._COLUMNS:
            col = getattr(self, name)
            setattr(self, name, np.concatenate([col, np.zeros_like(col)]))
        self._heat += [""] * old
        self._free.extend(range(2 * old - 1, old - 1, -1))

    def _new_strand(self, strand: str, heat: str) -> int:
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._total[slot] = self._filled[slot] = self._since[slot] = 0
        self._last_seq[slot], self._last_ts[slot] = -1, -1.0
        self._last_seen[slot], self._partition[slot] = 0.0, -1
        self._heat[slot] = heat
        self.strands[strand] = StrandState(self, slot)
        self._slot_of[strand] = slot
        return slot

    def state(self, strand: str) -> StrandState | None:
        return self.strands.get(strand)

    def last_values(self, strand: str) -> np.ndarray | None:
        """The strand's last stored reading [F] (a view), or None for an unknown strand: what
        a failed thermocouple of its next reading is carried from (``consume.tc_fill``)."""
        slot = self._slot_of.get(strand)
        if slot is None or self._total[slot] == 0:
            return None
        return self.data[slot, (self._total[slot] - 1) % self.capacity]

    def append(self, strand: str, heat: str, ts: float, seq: int, values: np.ndarray,
               now: float, partition: int = -1) -> tuple[int, WindowRef | None]:
        """Add one reading. Returns (AppendResult code, the window now due or None)."""
        res = self._append_rows([strand], [heat], [ts], [seq],
                                np.asarray(values, np.float32)[None], now, partition, 0)
        return int(res.codes[0]), (res.due[0][1] if res.due else None)

    def append_batch(self, strands: list[str], heats: list[str], ts: np.ndarray,
                     seq: np.ndarray, values: np.ndarray, now: float, partition: int = -1,
                     start: int = 0) -> BatchAppend:
        """:meth:`append` for rows ``start:`` at once. Stops early (``stop``) before a strand
        would be appended more than ``slack`` times in one call, because its earlier due
        windows would then be overwritten before they are gathered.

        The usual poll (every strand's rows in seq and ts order, no gap inside the poll) is
        handled with array operations over the poll; anything else (a duplicate, a gap
        between two rows of one poll) takes the row-by-row path, which gives the same
        answers (a property test checks it)."""
        if len(strands) - start >= max(1, self.vector_min_rows):
            res = self._append_vectorised(strands, heats, ts, seq, values, now, partition,
                                          start)
            if res is not None:
                return res
        return self._append_rows(strands, heats, ts.tolist(), seq.tolist(), values, now,
                                 partition, start)

    # -- the vectorised path ---------------------------------------------------------------------

    def _call_slots(self, strands: list[str], start: int) -> tuple[np.ndarray, list[str]]:
        """Slot of each row from ``start``; a new strand gets a provisional id (slot count +
        its index in the returned list, in order of first appearance) until it is created."""
        rows = strands[start:] if start else strands
        try:
            return np.fromiter(map(self._slot_of.__getitem__, rows), np.int64, len(rows)), []
        except KeyError:
            pass
        slots = list(map(self._slot_of.get, rows))
        new = list(dict.fromkeys(compress(rows, map(is_, slots, repeat(None)))))
        base = len(self._heat)
        ids = {s: base + k for k, s in enumerate(new)}
        return np.fromiter(map(ids.get, rows, slots), np.int64, len(rows)), new

    def _append_vectorised(self, strands: list[str], heats: list[str], ts: np.ndarray,
                           seq: np.ndarray, values: np.ndarray, now: float, partition: int,
                           start: int) -> BatchAppend | None:
        """None where the rows need the row-by-row path."""
        slots, new = self._call_slots(strands, start)
        t, q = ts[start:], seq[start:]
        g = _Groups.of(slots)
        restart = self._restarts(g, t, q)
        if restart is None:
            return None
        over = g.order[g.rank >= self.slack]
        stop = len(t)
        if over.size:  # a strand has more rows than slack: handle the rows before that one
            stop = int(over.min())
            slots, t, q, restart = slots[:stop], t[:stop], q[:stop], restart[:stop]
            g = _Groups.of(slots)
            new = new[:max(0, int(slots.max()) - len(self._heat) + 1)]
        if new:
            self._create(g, new)
        codes = np.zeros(len(strands), dtype=np.int8)
        codes[start + np.flatnonzero(restart)] = AppendResult.RESTARTED
        due = self._commit(g, heats, t, q, values, restart[g.order[g.start]], now, partition,
                           start)
        return BatchAppend(codes, due, start + stop)

    def _restarts(self, g: _Groups, t: np.ndarray, q: np.ndarray) -> np.ndarray | None:
        """Per row: does its window restart after a gap? None if a row is a duplicate or out
        of order, or a window restarts after another row of the same call."""
        known = g.slot < len(self._heat)
        ks = np.where(known, g.slot, 0)
        tt, tq = t[g.order], q[g.order]
        prev_t, prev_q = np.empty_like(tt), np.empty_like(tq)
        prev_t[1:], prev_q[1:] = tt[:-1], tq[:-1]
        prev_t[g.start] = np.where(known, self._last_ts[ks], -np.inf)
        prev_q[g.start] = np.where(known, self._last_seq[ks], _NEVER)
        if not ((tq > prev_q) & (tt >= prev_t)).all():
            return None
        gap = tt - prev_t > self.gap_restart_s
        gap[g.start] &= known & (self._filled[ks] > 0)
        if (gap & (g.rank > 0)).any():
            return None
        restart = np.zeros(len(t), dtype=bool)
        restart[g.order[gap]] = True
        return restart

    def _create(self, g: _Groups, new: list[str]) -> None:
        """Allot the call's new strands their slots, in order of first appearance (as row by
        row would) and replace their provisional ids."""
        base = len(self._heat)
        real = np.array([self._new_strand(s, "") for s in new], dtype=np.int64)
        provisional = g.slot >= base
        g.slot[provisional] = real[g.slot[provisional] - base]

    def _commit(self, g: _Groups, heats: list[str], t: np.ndarray, q: np.ndarray,
                values: np.ndarray, restarted: np.ndarray, now: float, partition: int,
                start: int) -> list[tuple[int, WindowRef]]:
        """Write every row (all are appended), update each strand once, return due windows.

        A strand's k-th row of the call (1-based) is due when filled0 + k >= min_fill and
        since0 + k >= hop, which first holds at k0; after that every hop-th row is due."""
        sizes, gid = g.sizes, g.gid
        total0 = self._total[g.slot]
        filled0 = np.where(restarted, 0, self._filled[g.slot])
        since0 = np.where(restarted, 0, self._since[g.slot])
        period = max(self.hop, 1)
        k0 = np.maximum(1, np.maximum(self.min_fill - filled0, self.hop - since0))
        k = g.rank + 1
        is_due = (k >= k0[gid]) & ((k - k0[gid]) % period == 0)
        last_due = np.where(sizes >= k0, k0 + (sizes - k0) // period * period, 0)
        pos = np.empty(len(g.order), dtype=np.int64)  # ring position of each row, row order
        pos[g.order] = g.slot[gid] * self.capacity + (total0[gid] + g.rank) % self.capacity
        self.data.reshape(-1, self.n_features)[pos] = values[start:start + len(pos)]
        last = g.order[g.start + sizes - 1]
        self._total[g.slot] = total0 + sizes
        self._filled[g.slot] = filled0 + sizes
        self._since[g.slot] = np.where(last_due > 0, sizes - last_due, since0 + sizes)
        self._last_seq[g.slot], self._last_ts[g.slot] = q[last], t[last]
        self._last_seen[g.slot], self._partition[g.slot] = now, partition
        for s, r in zip(g.slot.tolist(), last.tolist()):
            self._heat[s] = heats[start + r]
        return self._due(g, gid, is_due, total0, filled0, start)

    def _due(self, g: _Groups, gid: np.ndarray, is_due: np.ndarray, total0: np.ndarray,
             filled0: np.ndarray, start: int) -> list[tuple[int, WindowRef]]:
        """The due windows, in row order."""
        pos = np.flatnonzero(is_due)
        if not pos.size:
            return []
        pos = pos[np.argsort(g.order[pos])]
        k, d = g.rank[pos] + 1, gid[pos]
        lengths = np.minimum(filled0[d] + k, self.window)
        return [(start + r, WindowRef(s, e, n)) for r, s, e, n in zip(
            g.order[pos].tolist(), g.slot[d].tolist(), (total0[d] + k - 1).tolist(),
            lengths.tolist())]

    # -- the row-by-row path ---------------------------------------------------------------------

    def _append_rows(self, strands: list[str], heats: list[str], ts: list[float],
                     seq: list[int], values: np.ndarray, now: float, partition: int,
                     start: int) -> BatchAppend:
        """The reference semantics, one row at a time, on Python copies of the touched
        strands' bookkeeping; the values go into the ring with one assignment."""
        n = len(strands)
        codes = np.zeros(n, dtype=np.int8)
        pos = np.full(n, -1, dtype=np.int64)
        due: list[tuple[int, WindowRef]] = []
        live: dict[int, _Live] = {}
        cap, window, slack = self.capacity, self.window, self.slack
        hop, min_fill, gap = self.hop, self.min_fill, self.gap_restart_s
        i = start
        while i < n:
            strand, t, q = strands[i], ts[i], seq[i]
            slot = self._slot_of.get(strand)
            if slot is None:
                slot = self._new_strand(strand, heats[i])
                st = live[slot] = self._live(slot)
            else:
                st = live.get(slot) or live.setdefault(slot, self._live(slot))
                if q <= st.last_seq or t < st.last_ts:
                    codes[i] = AppendResult.DUPLICATE
                    i += 1
                    continue
            if st.appends >= slack:
                break
            st.appends += 1
            if st.filled and t - st.last_ts > gap:
                st.filled = 0
                st.since = 0
                codes[i] = AppendResult.RESTARTED
            pos[i] = slot * cap + st.total % cap
            st.total += 1
            st.filled += 1
            st.last_seq, st.last_ts, st.heat, st.touched = q, t, heats[i], True
            st.since += 1
            if st.filled >= min_fill and st.since >= hop:
                st.since = 0
                due.append((i, WindowRef(slot, st.total - 1, min(st.filled, window))))
            i += 1
        self._store(live, now, partition)
        rows = np.flatnonzero(pos[start:i] >= 0) + start
        if rows.size:
            self.data.reshape(-1, self.n_features)[pos[rows]] = values[rows]
        return BatchAppend(codes, due, i)

    def _live(self, slot: int) -> _Live:
        return _Live(int(self._total[slot]), int(self._filled[slot]), int(self._since[slot]),
                     int(self._last_seq[slot]), float(self._last_ts[slot]), self._heat[slot])

    def _store(self, live: dict[int, _Live], now: float, partition: int) -> None:
        for slot, st in live.items():
            if not st.touched:
                continue
            self._total[slot], self._filled[slot], self._since[slot] = (
                st.total, st.filled, st.since)
            self._last_seq[slot], self._last_ts[slot] = st.last_seq, st.last_ts
            self._last_seen[slot], self._partition[slot] = now, partition
            self._heat[slot] = st.heat

    # -- windows and housekeeping ----------------------------------------------------------------

    def gather(self, refs: list[WindowRef], out: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Windows [B, window, F] (valid steps first, oldest first) and lengths [B]."""
        slots = np.fromiter((r.slot for r in refs), dtype=np.int64, count=len(refs))
        ends = np.fromiter((r.end for r in refs), dtype=np.int64, count=len(refs))
        lengths = np.fromiter((r.length for r in refs), dtype=np.int64, count=len(refs))
        starts = ends - lengths + 1
        idx = (starts[:, None] + self._steps[None, :]) % self.capacity
        if out is None:
            out = np.empty((len(refs), self.window, self.n_features), dtype=np.float32)
        np.take(self.data.reshape(-1, self.n_features),
                (slots[:, None] * self.capacity + idx), axis=0, out=out[: len(refs)])
        windows = out[: len(refs)]
        short = lengths < self.window
        if short.any():  # zero the padding so a reader never sees stale data
            pad = self._steps[None, :] >= lengths[short, None]
            windows[short] = np.where(pad[..., None], np.float32(0), windows[short])
        return windows, lengths

    def evict_idle(self, now: float, idle_s: float) -> list[str]:
        gone = [s for s, st in self.strands.items() if now - st.last_seen > idle_s]
        for s in gone:
            self.drop(s)
        return gone

    def drop(self, strand: str) -> None:
        st = self.strands.pop(strand, None)
        if st is not None:
            del self._slot_of[strand]
            self._free.append(st.slot)

    def drop_partitions(self, partitions: set[int]) -> list[str]:
        gone = [s for s, st in self.strands.items() if st.partition in partitions]
        for s in gone:
            self.drop(s)
        return gone

    def snapshot(self) -> dict[str, Any]:
        """Every strand's bookkeeping as plain numbers (for tests and debugging)."""
        return {s: {f: getattr(st, f) for f in ("slot", "heat", "total", "filled", "since_eval",
                                                "last_seq", "last_ts", "last_seen", "partition")}
                for s, st in self.strands.items()}
