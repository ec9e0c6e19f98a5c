"""simulators.plot draws a readable PNG of an event window."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.caster import generate, make_config
from simulators.plot import PlotError, event_window, plot_window, time_window

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def heats():
    return generate(make_config(seed=5, strands_per_caster=1, hours=1.0, tc_cols=5,
                                rates={"sticker": 3.0, "crack": 1.0, "slag": 1.0}))


def _check_png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 0
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200


def test_plot_each_event_type(heats, tmp_path):
    seen = set()
    for e in heats.events.to_pylist():
        if e["type"] in seen:
            continue
        seen.add(e["type"])
        win = event_window(heats, e["event_id"], before=120, after=60)
        assert win.start_ts == e["onset_ts"] - 120 and win.end_ts == e["critical_ts"] + 60
        assert e["type"] in win.title and e["strand"] in win.title and e["heat"] in win.title
        out = plot_window(heats, win, tmp_path / f"{e['type']}.png")
        _check_png(out)
    assert "sticker" in seen


def test_plot_time_window_and_errors(heats, tmp_path):
    t = heats.readings.column("ts")[600].as_py()
    _check_png(plot_window(heats, time_window(heats, "C1-S1", t, 60, 60), tmp_path / "t.png"))
    first = heats.events.to_pylist()[0]
    assert event_window(heats, first["type"], 1, 1).record["event_id"] == first["event_id"]
    nu = heats.nuisances.to_pylist()[0]
    assert event_window(heats, nu["type"], 1, 1).record["type"] == nu["type"]
    with pytest.raises(PlotError, match="no event or nuisance"):
        event_window(heats, "nope", 10, 10)
    with pytest.raises(PlotError, match="no strand"):
        time_window(heats, "C2-S1", t, 10, 10)
