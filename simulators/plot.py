"""Draw a stretch of one strand from a heat folder: TCs by row, mould level, casting speed.

Used by ``caster-sim plot``; import-light (matplotlib is imported inside the functions,
with the non-interactive Agg backend).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.heatfile import HeatSet
from streamer.channels import PROCESS_CHANNELS, parse_tc_name


class PlotError(Exception):
    """The requested event, strand or time is not in the heat set."""


@dataclass
class Window:
    strand: str
    start_ts: float
    end_ts: float
    ref_ts: float  # x axis is seconds relative to this
    title: str
    record: dict[str, Any] | None = None  # the event / nuisance row, if any


def find_record(heats: HeatSet, record_id: str) -> tuple[dict[str, Any], str]:
    """The event or nuisance row with this id, and which table it came from.

    A type name instead of an id (``sticker``, ``crack``, ``slag`` or a hard-negative kind
    such as ``speed_change``) picks the first record of that type.
    """
    for table, name in ((heats.events, "event"), (heats.nuisances, "nuisance")):
        ids = table.column("event_id").to_pylist()
        if record_id in ids:
            return table.slice(ids.index(record_id), 1).to_pylist()[0], name
    for table, name in ((heats.events, "event"), (heats.nuisances, "nuisance")):
        types = table.column("type").to_pylist()
        if record_id in types:
            return table.slice(types.index(record_id), 1).to_pylist()[0], name
    some = heats.events.column("event_id").to_pylist()[:5]
    hint = f"; e.g. {', '.join(some)}" if some else "; the set holds no events"
    raise PlotError(f"no event or nuisance with id {record_id!r} "
                    f"({heats.events.num_rows} events, {heats.nuisances.num_rows} nuisances{hint})")


def event_window(heats: HeatSet, record_id: str, before: float, after: float) -> Window:
    rec, table = find_record(heats, record_id)
    loc = f" r{rec['row']}c{rec['col']}" if rec["row"] else ""
    title = (f"{rec['type']} ({table}) {rec['event_id']}  strand {rec['strand']}  "
             f"heat {rec['heat']}{loc}  severity {rec['severity']:.1f}")
    return Window(strand=rec["strand"], start_ts=rec["onset_ts"] - before,
                  end_ts=rec["critical_ts"] + after, ref_ts=rec["onset_ts"], title=title,
                  record=rec)


def time_window(heats: HeatSet, strand: str, at: float, before: float, after: float) -> Window:
    if strand not in heats.strands:
        raise PlotError(f"no strand {strand!r} in the heat set (strands: "
                        f"{', '.join(heats.strands)})")
    return Window(strand=strand, start_ts=at - before, end_ts=at + after, ref_ts=at,
                  title=f"strand {strand} around {at:.0f}")


def plot_window(heats: HeatSet, win: Window, out: str | Path) -> Path:
    """Draw the window to a PNG; returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts, _seq, values = heats.strand_arrays(win.strand)
    m = (ts >= win.start_ts) & (ts <= win.end_ts)
    if not m.any():
        raise PlotError(f"strand {win.strand} has no readings between {win.start_ts:.0f} and "
                        f"{win.end_ts:.0f} (it covers {ts[0]:.0f}..{ts[-1]:.0f})")
    x = ts[m] - win.ref_ts
    v = values[m]
    channels = heats.channels
    tcs: dict[int, list[tuple[int, int]]] = {}
    for j, ch in enumerate(channels):
        rc = parse_tc_name(ch)
        if rc:
            tcs.setdefault(rc[0], []).append((rc[1], j))
    rows = sorted(tcs)
    rec = win.record
    hl_col = rec["col"] if rec and rec["col"] else None
    hl_cols: set[int] = {hl_col} if hl_col else set()
    if rec and rec["type"] == "sticker":
        try:
            hl_cols |= {t["col"] for t in json.loads(rec["detail"]).get("tcs", [])}
        except (ValueError, TypeError):
            pass

    n_panels = len(rows) + 2
    fig, axes = plt.subplots(n_panels, 1, sharex=True, figsize=(11, 2.1 * n_panels + 0.6),
                             constrained_layout=True)
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan"]  # no red (the event column) and no grey (the rest)
    for ax, r in zip(axes, rows):
        for c, j in tcs[r]:
            if c == hl_col:
                ax.plot(x, v[:, j], color="tab:red", lw=2.0, label=f"c{c} (event column)", zorder=3)
            elif c in hl_cols:
                ax.plot(x, v[:, j], color=palette[c % len(palette)], lw=1.4, label=f"c{c}",
                        zorder=2)
            else:
                ax.plot(x, v[:, j], color="0.65", lw=0.7)
        ax.set_ylabel(f"row {r}\ndegC")
        if hl_col or len(hl_cols) > 0:
            ax.legend(loc="upper left", fontsize=7, ncol=4)
    lvl = channels.index(PROCESS_CHANNELS[1])
    spd = channels.index(PROCESS_CHANNELS[0])
    axes[-2].plot(x, v[:, lvl], color="tab:blue", lw=0.9)
    axes[-2].axhline(0, color="0.8", lw=0.6)
    axes[-2].set_ylabel("mould level\nmm")
    axes[-1].plot(x, v[:, spd], color="tab:green", lw=1.0)
    axes[-1].set_ylabel("speed\nm/min")
    axes[-1].set_xlabel(f"s relative to {'onset' if rec else 'the requested time'} "
                        f"({win.ref_ts:.0f} epoch s)")
    if rec:
        for ax in axes:
            ax.axvline(0.0, color="tab:orange", ls="--", lw=1.2)
            ax.axvline(rec["critical_ts"] - win.ref_ts, color="tab:red", ls="--", lw=1.2)
        axes[0].text(0.0, 1.02, "onset", color="tab:orange", transform=axes[0].get_xaxis_transform(),
                     fontsize=8)
        axes[0].text(rec["critical_ts"] - win.ref_ts, 1.02, "critical", color="tab:red",
                     transform=axes[0].get_xaxis_transform(), fontsize=8)
    else:
        for ax in axes:
            ax.axvline(0.0, color="tab:orange", ls="--", lw=1.0)
    fig.suptitle(win.title, fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
