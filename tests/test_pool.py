"""Pooling evaluation reports: summed counts, intervals, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamer.evaluation.pool import PoolError, main, pool

# the reports of the previous default model, 315d1068299e (streamer/model/default/README.md)
PREVIOUS = Path(__file__).resolve().parents[1] / "docs" / "reports" / "315d1068299e"


def _report(seed: int, caught: int, missed: int, fa: int, days: float,
            model_id: str = "m1", threshold: float = 0.8) -> dict[str, Any]:
    by_type = {"sticker": {"caught": caught, "missed": missed, "false_alarms": fa}}
    return {"format": "streamer-evaluation", "model": {"model_id": model_id},
            "defect_types": ["sticker"], "data": {"seed": seed},
            "systems": {"model": {
                "events": {"strand_days": days, "false_alarms": fa, "by_type": by_type},
                "alarm_thresholds": {"alarm_by_type": {"sticker": threshold}}}}}


def test_counts_are_summed_and_rates_carry_intervals() -> None:
    p = pool([_report(1, 9, 1, 2, 2.0), _report(2, 18, 2, 4, 4.0)], ["a", "b"])
    m = p["systems"]["model"]
    assert m["strand_days"] == 6.0 and m["false_alarms"] == 6
    assert m["false_alarms_per_strand_day"] == 1.0
    lo, hi = m["false_alarms_per_strand_day_ci95"]
    assert lo < 1.0 < hi
    st = m["by_type"]["sticker"]
    assert (st["caught"], st["missed"]) == (27, 3) and st["detection_rate"] == pytest.approx(0.9)
    assert st["detection_rate_ci95"][0] < 0.9 < st["detection_rate_ci95"][1]
    assert m["same_thresholds"]
    p = pool([_report(1, 9, 1, 2, 2.0), _report(2, 9, 1, 2, 2.0, threshold=0.7)], ["a", "b"])
    assert not p["systems"]["model"]["same_thresholds"]
    # the same thresholds with another on-delay are other thresholds; no delay equals 0
    delayed = _report(2, 9, 1, 2, 2.0)
    delayed["systems"]["model"]["alarm_thresholds"]["on_delay_s"] = 3.0
    p = pool([_report(1, 9, 1, 2, 2.0), delayed], ["a", "b"])
    assert not p["systems"]["model"]["same_thresholds"]
    assert p["systems"]["model"]["thresholds"][1] == {"sticker": 0.8, "sticker on-delay": 3.0}
    delayed["systems"]["model"]["alarm_thresholds"]["on_delay_s"] = 0.0
    assert pool([_report(1, 9, 1, 2, 2.0), delayed], ["a", "b"])["systems"]["model"][
        "same_thresholds"]


def test_refuses_another_model_or_the_same_heats_twice() -> None:
    with pytest.raises(PoolError, match="model m2, not m1"):
        pool([_report(1, 1, 0, 0, 1.0), _report(2, 1, 0, 0, 1.0, model_id="m2")], ["a", "b"])
    with pytest.raises(PoolError, match="appears twice"):
        pool([_report(1, 1, 0, 0, 1.0), _report(1, 1, 0, 0, 1.0)], ["a", "b"])


def test_cli_on_the_shipped_reports_and_bad_files(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    reports = [str(PREVIOUS / f"eval_report_{s}.json") for s in (9101, 9201, 9301)]
    out = tmp_path / "pool.json"
    assert main([*reports, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "seeds 9101, 9201, 9301" in text and "thresholds differ" not in text
    p = json.loads(out.read_text())
    singles = [json.loads(Path(r).read_text()) for r in reports]
    assert p["systems"]["model"]["false_alarms"] == sum(
        s["systems"]["model"]["events"]["false_alarms"] for s in singles)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report(1, 9, 1, 2, 2.0)))
    b.write_text(json.dumps(_report(2, 9, 1, 2, 2.0, threshold=0.7)))
    assert main([str(a), str(b)]) == 0
    assert "thresholds differ between reports" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert main([reports[0], str(bad)]) == 2
    assert "not a streamer evaluate report" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(("damage", "field"), [
    (lambda r: r.pop("defect_types"), "defect_types: missing or not a list"),
    (lambda r: r["model"].pop("model_id"), "model.model_id: missing or not a string"),
    (lambda r: r["systems"]["model"].pop("events"), "systems.model.events: missing"),
    (lambda r: r["systems"]["model"]["events"].update(strand_days="8"),
     "systems.model.events.strand_days: missing or not a number"),
    (lambda r: r["systems"]["model"]["events"]["by_type"].pop("sticker"),
     "systems.model.events.by_type.sticker: missing"),
    (lambda r: r["systems"]["model"]["events"]["by_type"]["sticker"].update(caught=True),
     "systems.model.events.by_type.sticker.caught: missing or not an integer"),
    (lambda r: r["systems"]["model"]["alarm_thresholds"].update(on_delay_s="3 s"),
     "systems.model.alarm_thresholds.on_delay_s: must be a number of seconds in [0, 60]"),
    (lambda r: r["systems"]["model"]["alarm_thresholds"].update(
        on_delay_by_type={"sticker": 90}),
     "systems.model.alarm_thresholds.on_delay_by_type.sticker: must be a number of seconds"),
    (lambda r: r["systems"]["model"].update(alarm_thresholds=[0.8]),
     "systems.model.alarm_thresholds: not an object"),
])
def test_a_damaged_report_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          damage: Any, field: str) -> None:
    rep = _report(1, 9, 1, 2, 2.0)
    damage(rep)
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(rep))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}" in err and "Traceback" not in err
