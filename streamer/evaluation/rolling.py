"""Causal (trailing) rolling statistics over axis 0 of a series.

Value at step i uses readings [i - w + 1, i] only (fewer at the start of the series: the
readings there are), so every score computed from them is one the daemon could compute
at that reading.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d


def _origin(w: int) -> int:
    # scipy centres a window of size w at w // 2; shifting by (w - 1) // 2 makes it trailing
    # (covering [i - w + 1, i]); the "nearest" mode repeats x[0], which is in every early window.
    return (w - 1) // 2


def rmax(x: np.ndarray, w: int) -> np.ndarray:
    w = max(1, int(w))
    return maximum_filter1d(x, w, axis=0, mode="nearest", origin=_origin(w))


def rmin(x: np.ndarray, w: int) -> np.ndarray:
    w = max(1, int(w))
    return minimum_filter1d(x, w, axis=0, mode="nearest", origin=_origin(w))


def rmean(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing mean over min(i + 1, w) readings (float64 sums, offset for precision)."""
    w = max(1, int(w))
    x = np.asarray(x, dtype=np.float64)
    x0 = x[:1]
    c = np.cumsum(x - x0, axis=0)
    s = c.copy()
    s[w:] -= c[:-w]
    n = np.minimum(np.arange(1, len(x) + 1), w).reshape((-1,) + (1,) * (x.ndim - 1))
    return s / n + x0


def rstd(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing population standard deviation over min(i + 1, w) readings."""
    w = max(1, int(w))
    x = np.asarray(x, dtype=np.float64)
    m = rmean(x, w)
    m2 = rmean((x - x[:1]) ** 2, w)
    var = m2 - (m - x[:1]) ** 2
    return np.sqrt(np.maximum(var, 0.0))


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k steps later: out[i] = x[i - k]; x[0] repeated where i < k."""
    k = int(k)
    if k <= 0:
        return x
    out = np.empty_like(x)
    out[k:] = x[:-k] if k < len(x) else x[:0]
    out[:k] = x[:1]
    return out


def rslope(x: np.ndarray, w: int, hz: float = 1.0) -> np.ndarray:
    """Least-squares slope (units per second) over the last w readings (fewer at the start)."""
    w = max(2, int(w))
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    out = np.zeros_like(x)
    if n < 2:
        return out
    t = np.arange(n, dtype=np.float64)
    shape = (-1,) + (1,) * (x.ndim - 1)
    xt = (x - x[:1]) * t.reshape(shape)
    cnt = np.minimum(np.arange(1, n + 1), w).astype(np.float64)
    mx = rmean(x - x[:1], w)
    mxt = rmean(xt, w)
    mt = rmean(t, w)
    mtt = rmean(t * t, w)
    var_t = mtt - mt * mt
    cov = mxt - mt.reshape(shape) * mx
    ok = cnt >= 2
    out[ok] = cov[ok] / var_t[ok].reshape((-1,) + (1,) * (x.ndim - 1))
    return out * hz
