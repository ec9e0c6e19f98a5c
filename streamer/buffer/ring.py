"""Ring buffers for every strand in one preallocated array, and vectorised window gathering.

All strands share ``data[slot, C, F]`` with C = window + slack, so a window that ended a few
readings ago (several readings of one strand arrive in one poll) is still intact when the
batch is gathered: up to ``slack`` readings per strand may be appended between snapshots.
Gathering B windows is one fancy-indexing operation, no Python loop per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class StrandState:
    slot: int
    heat: str
    call: int = -1  # the append_batch call that last touched this strand
    call_appends: int = 0  # appends in that call (at most `slack`, or windows get overwritten)
    total: int = 0  # readings ever written to this slot: the ring's write position
    filled: int = 0  # readings since the window (re)started: a window's valid length
    last_seq: int = -1
    last_ts: float = -1.0
    last_seen: float = 0.0  # monotonic wall time of the last reading, for idle eviction
    since_eval: int = 0
    partition: int = -1


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


class StrandBuffers:
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
        self._free: list[int] = list(range(initial_slots - 1, -1, -1))
        self._steps = np.arange(window, dtype=np.int64)
        self._calls = 0

    @property
    def slack(self) -> int:
        return self.capacity - self.window

    def __len__(self) -> int:
        return len(self.strands)

    def _grow(self) -> None:
        old = self.data.shape[0]
        self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=0)
        self._free.extend(range(2 * old - 1, old - 1, -1))

    def state(self, strand: str) -> StrandState | None:
        return self.strands.get(strand)

    def append(self, strand: str, heat: str, ts: float, seq: int, values: np.ndarray,
               now: float, partition: int = -1) -> tuple[int, WindowRef | None]:
        """Add one reading. Returns (AppendResult code, the window now due or None)."""
        st = self.strands.get(strand)
        if st is None:
            if not self._free:
                self._grow()
            st = self.strands[strand] = StrandState(slot=self._free.pop(), heat=heat)
        elif seq <= st.last_seq or ts < st.last_ts:
            return AppendResult.DUPLICATE, None
        code = AppendResult.APPENDED
        if st.filled and ts - st.last_ts > self.gap_restart_s:
            st.filled = 0
            st.since_eval = 0
            code = AppendResult.RESTARTED
        self.data[st.slot, st.total % self.capacity] = values
        st.total += 1
        st.filled += 1
        st.last_seq, st.last_ts, st.last_seen, st.heat = seq, ts, now, heat
        st.partition = partition
        st.since_eval += 1
        if st.filled >= self.min_fill and st.since_eval >= self.hop:
            st.since_eval = 0
            return code, WindowRef(st.slot, st.total - 1, min(st.filled, self.window))
        return code, None

    def append_batch(self, strands: list[str], heats: list[str], ts: np.ndarray,
                     seq: np.ndarray, values: np.ndarray, now: float, partition: int = -1,
                     start: int = 0) -> BatchAppend:
        """:meth:`append` for many rows at once: the bookkeeping per row in Python, the
        values copied into the ring with one fancy-indexed assignment. Stops early (``stop``)
        before a strand would be appended more than ``slack`` times in one call, because
        its earlier due windows would then be overwritten before they are gathered."""
        n = len(strands)
        self._calls += 1
        call = self._calls
        codes = np.zeros(n, dtype=np.int8)
        pos = np.full(n, -1, dtype=np.int64)
        due: list[tuple[int, WindowRef]] = []
        ts_l, seq_l = ts.tolist(), seq.tolist()
        cap, window, slack = self.capacity, self.window, self.slack
        hop, min_fill, gap = self.hop, self.min_fill, self.gap_restart_s
        get = self.strands.get
        i = start
        while i < n:
            strand, t, q = strands[i], ts_l[i], seq_l[i]
            st = get(strand)
            if st is None:
                if not self._free:
                    self._grow()
                st = self.strands[strand] = StrandState(slot=self._free.pop(), heat=heats[i])
            elif q <= st.last_seq or t < st.last_ts:
                codes[i] = AppendResult.DUPLICATE
                i += 1
                continue
            if st.call != call:
                st.call, st.call_appends = call, 0
            elif st.call_appends >= slack:
                break
            st.call_appends += 1
            if st.filled and t - st.last_ts > gap:
                st.filled = 0
                st.since_eval = 0
                codes[i] = AppendResult.RESTARTED
            pos[i] = st.slot * cap + st.total % cap
            st.total += 1
            st.filled += 1
            st.last_seq, st.last_ts, st.last_seen, st.heat = q, t, now, heats[i]
            st.partition = partition
            st.since_eval += 1
            if st.filled >= min_fill and st.since_eval >= hop:
                st.since_eval = 0
                due.append((i, WindowRef(st.slot, st.total - 1, min(st.filled, window))))
            i += 1
        rows = np.flatnonzero(pos[start:i] >= 0) + start
        if rows.size:
            self.data.reshape(-1, self.n_features)[pos[rows]] = values[rows]
        return BatchAppend(codes, due, i)

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
            self._free.append(st.slot)

    def drop_partitions(self, partitions: set[int]) -> list[str]:
        gone = [s for s, st in self.strands.items() if st.partition in partitions]
        for s in gone:
            self.drop(s)
        return gone
