"""The daemon's decoding rules on a whole recorded series, for training and evaluation.

The daemon (``streamer.consume.decode`` and ``streamer.consume.tc_fill``) drops a reading
whose process tags are missing or outside their plausibility bounds, or whose whole
thermocouple row is invalid, and fills a failed thermocouple from its row. Training and
evaluation apply exactly these rules to a strand's series at once, so the model, the rules
and the trees learn and are scored on what the daemon would feed them (a test checks the
two reading by reading).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamer.channels import PROCESS_CHANNELS
from streamer.consume.decode import PROCESS_BOUNDS
from streamer.consume.tc_fill import TcFill, fill_series


def decode_series(values: np.ndarray, channels: Sequence[str], fill: TcFill | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """(values float32 [N, F] with failed thermocouples filled, keep bool [N], number of
    thermocouple values filled). ``values`` is one strand's readings in time order;
    ``keep`` is False for the readings the daemon rejects."""
    fill = fill or TcFill(channels)
    v = np.asarray(values, dtype=np.float64)
    keep = np.ones(len(v), dtype=bool)
    for i, c in enumerate(channels):
        if c in PROCESS_CHANNELS:
            lo, hi = PROCESS_BOUNDS[c]
            keep &= (v[:, i] >= lo) & (v[:, i] <= hi)  # NaN compares false
    bad = fill.invalid(v)
    for row in fill.rows:
        keep &= ~bad[:, row].all(1)
    out, filled = fill_series(fill, v, keep, bad)
    finite = np.isfinite(out).all(1)
    return out, keep & finite, filled
