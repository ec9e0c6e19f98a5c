"""The channels a strand reports, and how they are named on the wire and in heat files.

One place defines the names so the simulator, the heat files, the model checkpoint and the
daemon agree. A thermocouple is ``tc_r{row}_c{col}`` (1-based; row 1 is nearest the
meniscus, the top of the mould).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Process tags every strand reports, in this order, before the thermocouple grid.
PROCESS_CHANNELS: tuple[str, ...] = (
    "casting_speed",
    "mould_level",
    "superheat",
    "water_flow",
    "water_dt",
)

UNITS: dict[str, str] = {
    "casting_speed": "m/min",
    "mould_level": "mm",  # deviation from the set-point
    "superheat": "degC",
    "water_flow": "L/min",
    "water_dt": "degC",
}
TC_UNIT = "degC"

# Physical validity range of a copper-plate thermocouple (DOMAIN.md): outside it, the
# sensor is faulty and its value is filled from its row (streamer.consume.tc_fill).
TC_VALID_RANGE: tuple[float, float] = (10.0, 250.0)

DEFECT_TYPES: tuple[str, ...] = ("sticker", "crack", "slag")

_TC_RE = re.compile(r"^tc_r(\d+)_c(\d+)$")
STRAND_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def tc_name(row: int, col: int) -> str:
    """Wire name of the thermocouple at 1-based (row, col)."""
    return f"tc_r{row}_c{col}"


def parse_tc_name(name: str) -> tuple[int, int] | None:
    """(row, col) of a thermocouple channel name, or None for any other channel."""
    m = _TC_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


@dataclass(frozen=True)
class ChannelLayout:
    """Process tags plus a rows x cols thermocouple grid of one wide face."""

    tc_rows: int = 3
    tc_cols: int = 8

    @property
    def channels(self) -> tuple[str, ...]:
        return PROCESS_CHANNELS + tuple(
            tc_name(r, c) for r in range(1, self.tc_rows + 1) for c in range(1, self.tc_cols + 1)
        )

    @property
    def units(self) -> dict[str, str]:
        return {ch: UNITS.get(ch, TC_UNIT) for ch in self.channels}

    @classmethod
    def from_channels(cls, channels: list[str] | tuple[str, ...]) -> "ChannelLayout":
        """Recover the layout from an ordered channel list; raise if it is not one."""
        tcs = [parse_tc_name(c) for c in channels[len(PROCESS_CHANNELS):]]
        if any(t is None for t in tcs) or not tcs:
            raise ValueError("channel list is not process channels followed by a TC grid")
        rows = max(r for r, _ in tcs)  # type: ignore[misc]
        cols = max(c for _, c in tcs)  # type: ignore[misc]
        layout = cls(tc_rows=rows, tc_cols=cols)
        if tuple(channels) != layout.channels:
            raise ValueError(
                f"channel list does not match a {rows}x{cols} layout; expected {list(layout.channels)}"
            )
        return layout
