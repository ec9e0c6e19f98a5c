"""Per-type alarm thresholds: config validation, resolution order, AlarmStates, the daemon's
start-up, the checkpoint's operating thresholds, and the chooser's rule."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamer.alarm.levels import ALARM, NORMAL, WARNING, WATCH, AlarmStates
from streamer.alarm.thresholds import (
    SOURCE_CHECKPOINT,
    SOURCE_CLI,
    SOURCE_CONFIG,
    SOURCE_DEFAULT,
    SOURCE_DELAY_CONFIG,
    SOURCE_GLOBAL,
    ThresholdError,
    resolve_thresholds,
)
from streamer.config import AlertSettings, ConfigError, load_settings
from streamer.evaluation.alarms import alert_settings, raises_from_scores
from streamer.evaluation.data import StrandSeries
from streamer.evaluation.events import TruthEvent
from streamer.evaluation.thresholds import (
    TypePoint,
    choose_all,
    choose_threshold,
    chosen_seeds,
    default_budgets,
    grid,
    points_from_record,
    sweep_scores,
)
from tests.daemon_helpers import untrained_checkpoint

TYPES = ("sticker", "crack", "slag")


def _shipped(thresholds: dict[str, float]) -> dict[str, Any]:
    return {"operating_thresholds": {"alarm_by_type": thresholds, "chosen_on": {"seed": 8001}}}


# -- config ---------------------------------------------------------------------------------

def test_config_accepts_per_type_thresholds_and_names_a_bad_value() -> None:
    s = load_settings(None, {"alerts.alarm_by_type": {"sticker": 0.65}})
    assert s.alerts.alarm_by_type == {"sticker": 0.65} and s.alerts.alarm == 0.8
    assert AlertSettings().alarm_by_type == {}
    with pytest.raises(ConfigError, match=r"alerts\.alarm_by_type\.sticker: Input should be less"):
        load_settings(None, {"alerts.alarm_by_type": {"sticker": 1.2}})
    with pytest.raises(ConfigError, match=r"alerts\.alarm_by_type\.crack: Input should be greater"):
        load_settings(None, {"alerts.alarm_by_type": {"crack": 0}})


def test_config_from_yaml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("alerts:\n  alarm_by_type:\n    sticker: 0.7\n")
    assert load_settings(f).alerts.alarm_by_type == {"sticker": 0.7}
    monkeypatch.setenv("STREAMER_ALERTS__ALARM_BY_TYPE", '{"slag": 0.9}')
    assert load_settings(None).alerts.alarm_by_type == {"slag": 0.9}


def test_unknown_type_names_the_field() -> None:
    bad = AlertSettings(alarm_by_type={"stikcer": 0.7})
    with pytest.raises(ThresholdError, match=r"^alerts\.alarm_by_type\.stikcer: not a defect "
                                             r"type of the model \(its types: sticker, crack"):
        resolve_thresholds(bad, TYPES)
    with pytest.raises(ThresholdError, match=r"alerts\.alarm_by_type\.stikcer"):
        AlarmStates(bad, TYPES)


# -- resolution order -----------------------------------------------------------------------

def test_resolution_config_over_checkpoint_over_global() -> None:
    settings = AlertSettings(alarm=0.85, alarm_by_type={"crack": 0.9})
    r = resolve_thresholds(settings, TYPES, _shipped({"sticker": 0.6, "crack": 0.7}))
    assert r.alarm == {"sticker": 0.6, "crack": 0.9, "slag": 0.85}
    assert r.source == {"sticker": SOURCE_CHECKPOINT, "crack": SOURCE_CONFIG,
                        "slag": SOURCE_GLOBAL}
    assert "sticker 0.6 (checkpoint operating_thresholds)" in r.describe()
    plain = resolve_thresholds(AlertSettings(), TYPES, {})
    assert plain.alarm == {t: 0.8 for t in TYPES} and set(plain.source.values()) == {SOURCE_GLOBAL}
    cli = resolve_thresholds(settings, TYPES, _shipped({"sticker": 0.6}), override=0.75)
    assert cli.alarm == {t: 0.75 for t in TYPES} and set(cli.source.values()) == {SOURCE_CLI}


def test_bad_checkpoint_thresholds_name_the_field() -> None:
    with pytest.raises(ThresholdError,
                       match=r"metadata\.operating_thresholds\.alarm_by_type\.breakout"):
        resolve_thresholds(AlertSettings(), TYPES, _shipped({"breakout": 0.6}))
    with pytest.raises(ThresholdError, match=r"alarm_by_type\.sticker: must be a number in"):
        resolve_thresholds(AlertSettings(), TYPES, _shipped({"sticker": 1.5}))
    with pytest.raises(ThresholdError, match=r"metadata\.operating_thresholds: must be"):
        resolve_thresholds(AlertSettings(), TYPES, {"operating_thresholds": [0.6]})


def test_on_delay_travels_with_the_thresholds_unless_configured() -> None:
    shipped = {"operating_thresholds": {"alarm_by_type": {"sticker": 0.66}, "on_delay_s": 3}}
    r = resolve_thresholds(AlertSettings(), TYPES, shipped)
    assert r.on_delay_s == 3.0 and r.on_delay_source == dict.fromkeys(TYPES, SOURCE_CHECKPOINT)
    assert "on-delay 3 s (checkpoint operating_thresholds)" in r.describe()
    assert AlarmStates(AlertSettings(), TYPES, r).on_delay == [3.0, 3.0, 3.0]
    mine = resolve_thresholds(AlertSettings(on_delay_s=0), TYPES, shipped)
    assert mine.on_delay_s == 0.0
    assert mine.on_delay_source == dict.fromkeys(TYPES, SOURCE_DELAY_CONFIG)
    old = resolve_thresholds(AlertSettings(), TYPES, _shipped({"sticker": 0.6}))
    assert old.on_delay_s == 0.0 and old.on_delay_source == dict.fromkeys(TYPES, SOURCE_DEFAULT)
    assert "on-delay" not in old.describe() and old.as_dict()["on_delay_s"] == 0.0
    with pytest.raises(ThresholdError, match=r"operating_thresholds\.on_delay_s: must be"):
        resolve_thresholds(AlertSettings(), TYPES,
                           {"operating_thresholds": {"alarm_by_type": {}, "on_delay_s": -1}})
    with pytest.raises(ValueError, match="on_delay_s"):
        AlertSettings(on_delay_s=61)


def test_on_delay_per_type_resolves_type_by_type() -> None:
    """Per type: alerts.on_delay_by_type > alerts.on_delay_s > the checkpoint's per-type
    delay > its one delay > 0; each type's alarm logic waits its own delay."""
    shipped = {"operating_thresholds": {"alarm_by_type": {"sticker": 0.66}, "on_delay_s": 3,
                                        "on_delay_by_type": {"slag": 5}}}
    r = resolve_thresholds(AlertSettings(), TYPES, shipped)
    assert r.on_delay == {"sticker": 3.0, "crack": 3.0, "slag": 5.0} and r.on_delay_s is None
    assert r.as_dict()["on_delay_by_type"] == {"sticker": 3.0, "crack": 3.0, "slag": 5.0}
    assert r.as_dict()["on_delay_s"] is None
    assert r.delay_text() == ("sticker 3 s, crack 3 s, slag 5 s "
                              "(checkpoint operating_thresholds)")
    assert AlarmStates(AlertSettings(), TYPES, r).on_delay == [3.0, 3.0, 5.0]
    mine = resolve_thresholds(AlertSettings(on_delay_s=1, on_delay_by_type={"crack": 0}),
                              TYPES, shipped)
    assert mine.on_delay == {"sticker": 1.0, "crack": 0.0, "slag": 1.0}
    assert mine.on_delay_source == {"sticker": SOURCE_DELAY_CONFIG,
                                    "crack": "alerts.on_delay_by_type",
                                    "slag": SOURCE_DELAY_CONFIG}
    only_type = resolve_thresholds(AlertSettings(on_delay_by_type={"sticker": 0}), TYPES,
                                   shipped)
    assert only_type.on_delay == {"sticker": 0.0, "crack": 3.0, "slag": 5.0}
    with pytest.raises(ThresholdError, match=r"alerts\.on_delay_by_type\.breakout: not a "
                                             "defect type"):
        resolve_thresholds(AlertSettings(on_delay_by_type={"breakout": 2}), TYPES)
    with pytest.raises(ThresholdError,
                       match=r"operating_thresholds\.on_delay_by_type\.slag: must be"):
        resolve_thresholds(AlertSettings(), TYPES, {"operating_thresholds": {
            "alarm_by_type": {}, "on_delay_by_type": {"slag": 90}}})
    with pytest.raises(ValueError, match="on_delay_by_type"):
        AlertSettings(on_delay_by_type={"slag": -1})


def test_baseline_record_carries_its_on_delay(tmp_path: Path) -> None:
    from streamer.evaluation.thresholds import load_baseline_thresholds

    f = tmp_path / "rules.json"
    rec = {"system": "rules", "alarm_by_type": {t: 0.7 for t in TYPES}}
    f.write_text(json.dumps(rec))
    assert load_baseline_thresholds(str(f), TYPES)[1].on_delay_s == 0.0  # older records
    f.write_text(json.dumps({**rec, "on_delay_s": 3}))
    got = load_baseline_thresholds(str(f), TYPES)[1]
    assert got.on_delay_s == 3.0
    assert got.on_delay_source == dict.fromkeys(TYPES, "--baseline-thresholds")
    # a configured on-delay applies to the baselines as to the model
    mine = load_baseline_thresholds(str(f), TYPES, AlertSettings(on_delay_s=0))[1]
    assert mine.on_delay_s == 0.0
    assert mine.on_delay_source == dict.fromkeys(TYPES, SOURCE_DELAY_CONFIG)
    f.write_text(json.dumps({**rec, "on_delay_s": None,
                             "on_delay_by_type": {"sticker": 0, "crack": 3, "slag": 5}}))
    got = load_baseline_thresholds(str(f), TYPES)[1]
    assert got.on_delay == {"sticker": 0.0, "crack": 3.0, "slag": 5.0}
    f.write_text(json.dumps({**rec, "on_delay_s": "3 s"}))
    with pytest.raises(ThresholdError, match=r"rules\.json: on_delay_s: must be"):
        load_baseline_thresholds(str(f), TYPES)


# -- AlarmStates ----------------------------------------------------------------------------

def test_alarm_states_apply_per_type_thresholds_with_clamped_levels() -> None:
    settings = AlertSettings(alarm_by_type={"sticker": 0.6, "crack": 0.9})
    a = AlarmStates(settings, TYPES)
    # sticker: watch 0.5, warning min(0.7, 0.6) = 0.6, alarm 0.6; crack 0.5/0.7/0.9; slag default
    assert a.thresholds == [(0.5, 0.6, 0.6), (0.5, 0.7, 0.9), (0.5, 0.7, 0.8)]
    d = a.update("s", 0.0, np.array([0.65, 0.85, 0.85]))
    assert d.levels == [ALARM, WARNING, ALARM]
    assert d.events == [(0, "raised"), (2, "raised")]
    d = a.update("s", 1.0, np.array([0.56, 0.91, 0.76]))  # sticker held by hysteresis
    assert d.levels == [ALARM, ALARM, ALARM] and d.events == [(1, "raised")]
    d = a.update("s", 2.0, np.array([0.54, 0.84, 0.74]))  # below 0.6 - 0.05: warning gone too
    assert d.levels == [WATCH, WARNING, WARNING] and d.events == [(0, "cleared")]
    # a threshold below the global watch lowers that type's watch with it
    low = AlarmStates(AlertSettings(alarm_by_type={"slag": 0.3}), TYPES)
    assert low.thresholds[2] == (0.3, 0.3, 0.3)
    assert low.update("s", 0.0, np.array([0.0, 0.0, 0.31])).levels == [NORMAL, NORMAL, ALARM]


def test_alarm_states_take_the_resolved_thresholds() -> None:
    r = resolve_thresholds(AlertSettings(), TYPES, _shipped({"sticker": 0.7}))
    a = AlarmStates(AlertSettings(), TYPES, r)
    assert a.update("s", 0.0, np.array([0.72, 0.72, 0.72])).events == [(0, "raised")]
    with pytest.raises(ValueError):
        AlarmStates(AlertSettings(), ("sticker",), r)


def test_skipping_quiet_readings_respects_a_low_per_type_watch() -> None:
    """A type alarmed at 0.3 must not be skipped because its score is below the global watch."""
    rng = np.random.default_rng(3)
    ts = np.arange(2000, dtype=np.float64)
    scores = rng.uniform(0, 0.45, size=(2000, 3)) * (rng.uniform(size=(2000, 1)) > 0.9)
    settings = AlertSettings(alarm_by_type={"slag": 0.3}, repeat_suppression_s=20)
    got = raises_from_scores("A", ts, scores, TYPES, settings)
    ref = AlarmStates(settings, TYPES)
    want = [(TYPES[k], float(t)) for t, row in zip(ts, scores)
            for k, e in ref.update("A", float(t), row).events if e == "raised"]
    assert [(r.defect, r.ts) for r in got] == want and len(want) > 5
    assert all(r.defect == "slag" for r in got)


# -- the daemon ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from streamer.channels import ChannelLayout

    path = tmp_path_factory.mktemp("ckpt") / "small.pt"
    untrained_checkpoint(path, list(ChannelLayout().channels))
    return path


def _daemon_settings(ckpt: Path, **over: Any) -> Any:
    base = {"kafka.bootstrap_servers": "127.0.0.1:1", "kafka.connect_retry_max_s": 0.5,
            "model.path": str(ckpt), "model.torch_threads": 1, "http.port": 0}
    return load_settings(None, {**base, **over})


async def test_daemon_refuses_an_unknown_type_naming_the_field(small_ckpt: Path) -> None:
    from streamer.app import Application, StartupError

    app = Application(_daemon_settings(small_ckpt,
                                       **{"alerts.alarm_by_type": {"stikcer": 0.7}}))
    assert await asyncio.wait_for(app.run(install_signal_handlers=False), 30) == 1
    assert isinstance(app._fatal, StartupError)
    assert str(app._fatal).startswith("alerts.alarm_by_type.stikcer: not a defect type")


async def test_daemon_uses_and_logs_the_resolved_thresholds(small_ckpt: Path,
                                                           tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from streamer.app import Application
    from streamer.model.checkpoint import load_checkpoint, update_metadata

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(small_ckpt.read_bytes())
    mid = load_checkpoint(ckpt).model_id
    shipped = _shipped({"sticker": 0.6, "crack": 0.7})
    shipped["operating_thresholds"]["on_delay_s"] = 2
    assert update_metadata(ckpt, shipped) == mid
    assert load_checkpoint(ckpt).metadata["data_seeds"] == [7]  # other metadata kept
    app = Application(_daemon_settings(ckpt, **{"alerts.alarm_by_type": {"crack": 0.9}}))
    with capture_logs() as logs:
        assert await asyncio.wait_for(app.run(install_signal_handlers=False), 30) == 1
    assert "cannot reach Kafka" in str(app._fatal)  # got past the model and its thresholds
    assert app.alarms.thresholds == [(0.5, 0.6, 0.6), (0.5, 0.7, 0.9), (0.5, 0.7, 0.8)]
    line = next(e for e in logs if e["event"] == "alarm thresholds")
    assert line["sticker"] == f"0.6 ({SOURCE_CHECKPOINT})"
    assert line["crack"] == f"0.9 ({SOURCE_CONFIG})"
    assert line["slag"] == f"0.8 ({SOURCE_GLOBAL})"
    assert line["on_delay"] == f"2 s ({SOURCE_CHECKPOINT})"  # it came with the thresholds
    assert app.alarms.on_delay == [2.0, 2.0, 2.0]


# -- the chooser's rule ----------------------------------------------------------------------

def _pts(rows: list[tuple[float, int, int, float]], n: int) -> list[TypePoint]:
    """(threshold, caught, false alarms, FA per strand-day) rows, n events."""
    return [TypePoint(t, c, n - c, fa, per) for t, c, fa, per in rows]


def test_rule_lowers_sticker_only_as_far_as_budget_and_need() -> None:
    rows = [(0.6, 10, 4, 2.0), (0.65, 10, 2, 1.0), (0.7, 9, 1, 0.5), (0.75, 8, 1, 0.5),
            (0.8, 7, 0, 0.0), (0.9, 5, 0, 0.0)]
    c = choose_threshold("sticker", _pts(rows, 10), budget=0.6, reference=0.8)
    assert (c.t_budget, c.t_need, c.t_keep, c.threshold) == (0.7, 0.65, 0.8, 0.7)
    assert c.within_budget and c.point.caught == 9 and c.at_reference.caught == 7
    # a larger budget goes down to what is needed, not further
    assert choose_threshold("sticker", _pts(rows, 10), 5.0, 0.8).threshold == 0.65


def test_rule_raises_crack_to_meet_the_budget_without_losing_an_event() -> None:
    rows = [(0.7, 20, 6, 3.0), (0.8, 20, 4, 2.0), (0.85, 20, 1, 0.5), (0.9, 20, 0, 0.0),
            (0.95, 18, 0, 0.0)]
    c = choose_threshold("crack", _pts(rows, 20), budget=0.2, reference=0.8)
    assert (c.t_budget, c.t_keep, c.threshold, c.within_budget) == (0.9, 0.9, 0.9, True)
    # the budget would need 0.95, which loses two cracks: stop at t_keep, over budget
    rows2 = [(0.8, 20, 4, 2.0), (0.9, 20, 2, 1.0), (0.95, 18, 0, 0.0)]
    c2 = choose_threshold("crack", _pts(rows2, 20), budget=0.2, reference=0.8)
    assert (c2.t_budget, c2.threshold, c2.within_budget) == (0.95, 0.9, False)
    # nothing within budget anywhere: the fewest false alarms without losing an event
    rows3 = [(0.8, 20, 4, 2.0), (0.9, 20, 3, 1.5)]
    c3 = choose_threshold("crack", _pts(rows3, 20), budget=0.2, reference=0.8)
    assert (c3.t_budget, c3.threshold) == (None, 0.9)
    # within budget at the reference and nothing more to catch below: keep the reference
    rows4 = [(0.7, 20, 0, 0.0), (0.8, 20, 0, 0.0), (0.9, 20, 0, 0.0)]
    assert choose_threshold("slag", _pts(rows4, 20), 0.2, 0.8).threshold == 0.8


def test_rule_budget_must_hold_from_the_threshold_upwards() -> None:
    """A lucky dip in false alarms below a violation is not 'within budget'."""
    rows = [(0.6, 10, 0, 0.0), (0.7, 10, 3, 1.5), (0.8, 9, 0, 0.0)]
    c = choose_threshold("sticker", _pts(rows, 10), budget=0.6, reference=0.8)
    assert c.t_budget == 0.8 and c.threshold == 0.8
    with pytest.raises(ValueError, match="reference"):
        choose_threshold("sticker", _pts(rows, 10), 0.6, reference=0.75)


def test_margin_goes_up_to_just_below_where_a_development_event_is_lost() -> None:
    """Within budget at the reference, zero false alarms on the development heats from 0.8 up,
    a sticker lost above 0.9: step 2 goes to 0.9 - margin, not further, never below base."""
    rows = [(0.7, 10, 3, 1.5), (0.8, 10, 0, 0.0), (0.84, 10, 0, 0.0), (0.86, 10, 0, 0.0),
            (0.88, 10, 0, 0.0), (0.9, 10, 0, 0.0), (0.92, 9, 0, 0.0)]
    c = choose_threshold("sticker", _pts(rows, 10), budget=0.6, reference=0.8, margin=0.02)
    assert (c.base, c.t_hold, c.threshold, c.point.caught) == (0.8, 0.9, 0.88, 10)
    assert choose_threshold("sticker", _pts(rows, 10), 0.6, 0.8, margin=0.0).threshold == 0.9
    assert choose_threshold("sticker", _pts(rows, 10), 0.6, 0.8, margin=0.05).threshold == 0.84
    # a margin wider than the room above base: base
    assert choose_threshold("sticker", _pts(rows, 10), 0.6, 0.8, margin=0.5).threshold == 0.8


def test_margin_holds_what_base_catches_when_base_is_below_the_reference() -> None:
    """Base went down to 0.65 to catch a tenth event: step 2 may not give it back."""
    rows = [(0.6, 10, 4, 2.0), (0.65, 10, 2, 1.0), (0.7, 9, 1, 0.5), (0.8, 7, 0, 0.0)]
    c = choose_threshold("sticker", _pts(rows, 10), budget=5.0, reference=0.8, margin=0.0)
    assert (c.base, c.t_hold, c.threshold) == (0.65, 0.65, 0.65)


def test_chosen_seeds_reads_new_and_old_records() -> None:
    assert chosen_seeds({"seeds": [8001, 8002], "sim_config": "x"}) == {8001, 8002}
    assert chosen_seeds({"seed": 8001}) == {8001}
    assert chosen_seeds(None) == set() and chosen_seeds({"seeds": "8001"}) == set()


def test_budgets_and_grid() -> None:
    assert default_budgets(TYPES) == {"sticker": 0.6, "crack": 0.2, "slag": 0.2}
    assert default_budgets(("defect",)) == {"defect": 1.0}
    g = grid(0.5, 0.95, 0.025, include=[0.8])
    assert len(g) == 19 and g[0] == 0.5 and g[-1] == 0.95 and 0.8 in g and 0.725 in g


def test_chooser_on_hand_made_score_series() -> None:
    """Scores -> the daemon's alarm logic -> event matching -> the rule, end to end.

    One strand, 1 Hz, 4000 s. Stickers at 500 s, 1500 s and 2500 s peak at 0.9, 0.72 and 0.68;
    a near-sticker at 3500 s (no event) peaks at 0.66. Reference 0.8 catches one sticker;
    0.675 catches all three but also raises the false alarm; the budget allows none."""
    n, min_fill = 4000, 1
    ts = np.arange(n, dtype=np.float64)
    sc = np.zeros((n, 3), np.float32)
    events = []
    for i, (start, peak) in enumerate([(500, 0.9), (1500, 0.72), (2500, 0.68)]):
        sc[start:start + 30, 0] = peak
        events.append(TruthEvent(f"e{i}", "A", "sticker", float(start - 5), float(start + 40)))
    sc[3500:3520, 0] = 0.66  # false: no event there
    series = [StrandSeries("A", ts, np.zeros((n, 1), np.float32), np.zeros((n, 3), np.uint8))]
    points, days = sweep_scores(series, [sc], events, TYPES, grid(include=[0.8]), min_fill)
    assert days == pytest.approx(n / 86400)
    by_t = {p.threshold: p for p in points["sticker"]}
    assert (by_t[0.8].caught, by_t[0.7].caught, by_t[0.675].caught) == (1, 2, 3)
    assert (by_t[0.675].false_alarms, by_t[0.65].false_alarms) == (0, 1)
    c = choose_threshold("sticker", points["sticker"], budget=0.0, reference=0.8)
    assert c.threshold == 0.675 and c.point.caught == 3 and c.within_budget
    # no other type had a score: their thresholds stay at the reference
    assert choose_threshold("crack", points["crack"], 0.0, 0.8).threshold == 0.8
    # the same scores through alert_settings at the chosen value raise the same alarms
    got = raises_from_scores("A", ts, sc, TYPES, alert_settings(0.675))
    assert sorted(r.ts for r in got) == [500.0, 1500.0, 2500.0]
    # with a 25 s on-delay the 20 s look-alike raises nothing, so the budget allows 0.65
    # (which catches no more here); every sticker is alarmed 25 s later
    points, _ = sweep_scores(series, [sc], events, TYPES, grid(include=[0.8]), min_fill,
                             on_delay=25.0)
    by_t = {p.threshold: p for p in points["sticker"]}
    assert (by_t[0.65].caught, by_t[0.65].false_alarms) == (3, 0)
    assert by_t[0.8].lead_time_median_s == pytest.approx(540 - 525)  # raised at 500 + 25
    # a per-type delay acts on its own type only: the sticker's, as above; another's, none
    own, _ = sweep_scores(series, [sc], events, TYPES, grid(include=[0.8]), min_fill,
                          on_delay={"sticker": 25.0})
    assert own["sticker"] == points["sticker"]
    other, _ = sweep_scores(series, [sc], events, TYPES, grid(include=[0.8]), min_fill,
                            on_delay={"crack": 25.0, "slag": 25.0})
    assert {p.threshold: p for p in other["sticker"]}[0.65].false_alarms > 0


# -- the chooser's command ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_small_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained model for configs/sim/small.yaml's channels (3 x 6 TCs), seed 7."""
    from streamer.channels import ChannelLayout

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    untrained_checkpoint(path, list(ChannelLayout(3, 6).channels))
    return path


SMALL = str(Path(__file__).resolve().parents[1] / "configs" / "sim" / "small.yaml")


def test_chooser_refuses_the_report_seed_and_training_seeds(
        tiny_small_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.thresholds import main

    assert main([str(tiny_small_ckpt), "--seed", "9001"]) == 2
    assert "held-out report seed" in capsys.readouterr().err
    assert main([str(tiny_small_ckpt), "--seed", "7", "--sim-config", SMALL]) == 2
    assert "seed 7 trained" in capsys.readouterr().err
    assert main([str(tiny_small_ckpt), "--seed", "8001", "--budget", "stikcer=1"]) == 2
    assert "--budget stikcer: not a defect type" in capsys.readouterr().err


def test_chooser_writes_the_thresholds_into_the_checkpoint(
        tiny_small_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.thresholds import main
    from streamer.model.checkpoint import load_checkpoint

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(tiny_small_ckpt.read_bytes())
    before = load_checkpoint(ckpt)
    assert main([str(ckpt), "--seed", "8001", "--on-delay", "61"]) == 2
    assert "--on-delay: must be a number of seconds in [0, 60]" in capsys.readouterr().err
    assert main([str(ckpt), "--seed", "8001", "--on-delay", "breakout=2"]) == 2
    assert "--on-delay breakout: not a defect type" in capsys.readouterr().err
    assert main([str(ckpt), "--seed", "8001", "--on-delay", "slag=x"]) == 2
    assert "--on-delay: expected SECONDS or TYPE=SECONDS" in capsys.readouterr().err
    assert main([str(ckpt), "--seed", "8001", "--sim-config", SMALL, "--strands", "1",
                 "--hours", "1", "--on-delay", "2", "--write"]) == 0
    out = capsys.readouterr().out
    assert "chosen: sticker" in out and "model id" in out
    after = load_checkpoint(ckpt)
    assert after.model_id == before.model_id
    rec = after.metadata["operating_thresholds"]
    assert set(rec["alarm_by_type"]) == set(TYPES)
    assert all(v in rec["grid"] for v in rec["alarm_by_type"].values())
    assert rec["chosen_on"]["seed"] == 8001 and rec["rule"] and rec["model_id"] == after.model_id
    assert rec["budget_false_alarms_per_strand_day"] == {"sticker": 0.6, "crack": 0.2,
                                                         "slag": 0.2}
    r = resolve_thresholds(AlertSettings(), TYPES, after.metadata)
    assert r.alarm == rec["alarm_by_type"] and set(r.source.values()) == {SOURCE_CHECKPOINT}
    assert rec["on_delay_s"] == 2.0 and r.on_delay_s == 2.0  # the delay travels with them
    assert rec["on_delay_by_type"] == dict.fromkeys(TYPES, 2.0)


def test_chooser_sweeps_several_development_seeds_as_one_set_of_heats(
        tiny_small_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two seeds: twice the strand-days, the events of both, and a record that names both;
    a report seed among them is refused."""
    from streamer.evaluation.thresholds import main

    base = [str(tiny_small_ckpt), "--sim-config", SMALL, "--strands", "1", "--hours", "1",
            "--system", "rules"]
    assert main([*base, "--seed", "8001", "--json", str(tmp_path / "one.json")]) == 0
    assert main([*base, "--seed", "8002", "--json", str(tmp_path / "two.json")]) == 0
    assert main([*base, "--seed", "8001", "--seed", "8002",
                 "--json", str(tmp_path / "both.json")]) == 0
    assert "dev seed 8001+8002" in capsys.readouterr().out
    one, two, both = (json.loads((tmp_path / f"{n}.json").read_text())
                      for n in ("one", "two", "both"))
    assert one["chosen_on"]["seeds"] == [8001] and one["chosen_on"]["seed"] == 8001
    assert both["chosen_on"]["seeds"] == [8001, 8002] and "seed" not in both["chosen_on"]
    assert both["chosen_on"]["strand_days"] == pytest.approx(
        one["chosen_on"]["strand_days"] + two["chosen_on"]["strand_days"], abs=2e-4)
    for t in TYPES:
        assert both["chosen_on"]["events"][t] == (one["chosen_on"]["events"][t]
                                                  + two["chosen_on"]["events"][t])
        # the counts of each seed add up at the reference (strands of the two seeds kept apart)
        ref = {n: r["per_type"][t]["at_reference"] for n, r in
               (("one", one), ("two", two), ("both", both))}
        for key in ("caught", "missed", "false_alarms"):
            assert ref["both"][key] == ref["one"][key] + ref["two"][key], (t, key)
    assert main([*base, "--seed", "8001", "--seed", "9001", "--json", "x.json"]) == 2
    assert "seed 9001 is a held-out report seed" in capsys.readouterr().err
    # the trees may not be trained on any of the development seeds, not only the first
    gbt = [*base[:-2], "--system", "gbt", "--seed", "8001", "--seed", "8002",
           "--gbt-train-seed", "8002", "--json", str(tmp_path / "gbt.json")]
    assert main(gbt) == 2
    assert "GBT training heats have the development seed 8002" in capsys.readouterr().err
    # the record keeps the whole sweep: the same rule on it offline chooses the same values,
    # and another margin can be tried without scoring the heats again
    pts = points_from_record(both)
    budgets = both["budget_false_alarms_per_strand_day"]
    again = choose_all(pts, budgets, both["reference"], both["margin"])
    assert {t: c.threshold for t, c in again.items()} == both["alarm_by_type"]
    assert all(len(pts[t]) == len(both["grid"]) for t in TYPES)
    wide = choose_all(pts, budgets, both["reference"], margin=0.9)
    assert all(c.threshold == c.base for c in wide.values())
    with pytest.raises(ValueError, match="sweep"):
        points_from_record({"per_type": {"sticker": {"t_keep": 0.8}}})


def test_chooser_for_a_baseline_needs_a_json_record_and_never_writes_the_checkpoint(
        tiny_small_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.thresholds import main

    assert main([str(tiny_small_ckpt), "--seed", "8001", "--system", "rules"]) == 2
    assert "--system rules needs --json FILE" in capsys.readouterr().err
    assert main([str(tiny_small_ckpt), "--seed", "8001", "--system", "gbt", "--write",
                 "--json", "x.json"]) == 2
    assert "--write stores a model's thresholds" in capsys.readouterr().err
    assert main([str(tiny_small_ckpt), "--seed", "8001", "--system", "gbt",
                 "--gbt-stride", "0", "--json", "x.json"]) == 2
    assert "--gbt-stride must be >= 1" in capsys.readouterr().err
