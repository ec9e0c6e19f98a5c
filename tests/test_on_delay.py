"""The on-delay study: sweeps summed across seeds, leave one seed out, and the delay rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.evaluation.on_delay import (
    DelayResult,
    Fold,
    Totals,
    leave_one_out,
    main,
    pick_by_type,
    pick_delay,
    sum_points,
)
from streamer.evaluation.thresholds import TypePoint

TH = (0.6, 0.7, 0.8, 0.9)


def sweep(caught: list[int], fa: list[int], days: float, events: int = 10,
          lead: float | None = 35.0) -> list[TypePoint]:
    return [TypePoint(t, c, events - c, f, f / days, lead) for t, c, f in zip(TH, caught, fa)]


def test_sum_points_adds_counts_and_rates_over_all_days() -> None:
    a = {"sticker": sweep([10, 9, 8, 5], [4, 2, 1, 0], 2.0)}
    b = {"sticker": sweep([9, 9, 9, 6], [2, 2, 0, 0], 1.0)}
    s = sum_points([a, b], 3.0)["sticker"]
    assert [(p.caught, p.missed, p.false_alarms) for p in s] == [
        (19, 1, 6), (18, 2, 4), (17, 3, 1), (11, 9, 0)]
    assert s[0].false_alarms_per_strand_day == pytest.approx(2.0)
    with pytest.raises(ValueError, match="different thresholds"):
        sum_points([a, {"sticker": [TypePoint(0.65, 1, 0, 0, 0.0)] * 4}], 3.0)


def test_leave_one_out_chooses_on_the_others_and_counts_on_the_held_out_seed() -> None:
    """Budget 0.5 FA/day, reference 0.8. Seeds 1 and 2 hold no false alarm from 0.7 up, so
    held out 3 it is chosen on them: base 0.7 (catches the most), t_hold 0.7 -> 0.7; seed 3's
    numbers at 0.7 are counted (4 false alarms there)."""
    per_seed = {
        1: ({"sticker": sweep([10, 10, 9, 7], [3, 0, 0, 0], 2.0)}, 2.0),
        2: ({"sticker": sweep([10, 10, 9, 8], [2, 0, 0, 0], 2.0)}, 2.0),
        3: ({"sticker": sweep([10, 10, 10, 9], [9, 4, 1, 0], 2.0)}, 2.0),
    }
    r = leave_one_out(per_seed, 0.0, {"sticker": 0.5}, 0.8, margin=0.0)
    third = next(f for f in r.folds if f.held_out == 3)
    assert third.chosen == {"sticker": 0.7}
    assert (third.counted["sticker"].caught, third.counted["sticker"].false_alarms) == (10, 4)
    # held out 1: seeds 2 + 3 have 4 FA in 4 days at 0.7 (over budget), 1 at 0.8 -> 0.8
    first = next(f for f in r.folds if f.held_out == 1)
    assert first.chosen == {"sticker": 0.8}
    assert r.total("sticker") == (9 + 9 + 10, 30, 0 + 0 + 4)
    assert r.joint["sticker"].threshold == 0.8  # 5 FA in 6 days at 0.7: over budget


def _result(delay: float, caught: int, fa: int, lead: float | None) -> DelayResult:
    p = TypePoint(0.8, caught, 10 - caught, fa, float(fa), lead)
    return DelayResult(delay, [Fold(1, {"sticker": 0.8}, {"sticker": p})])


def test_pick_delay_keeps_stickers_and_lead_then_fewest_false_alarms() -> None:
    results = [_result(0, 9, 8, 34.0), _result(2, 9, 5, 33.0), _result(3, 9, 5, 32.0),
               _result(5, 8, 1, 31.0), _result(8, 9, 0, 29.0)]
    # 5 s loses a sticker, 8 s leads under 30 s; 2 and 3 tie on false alarms: the shorter
    assert pick_delay(results).delay_s == 2
    assert pick_delay(results, min_lead_s=28.0).delay_s == 8
    assert pick_delay([_result(0, 9, 8, 25.0)]) is None  # not even no delay qualifies
    assert pick_delay([]) is None


SMALL = str(Path(__file__).resolve().parents[1] / "configs" / "sim" / "small.yaml")


def _totals(delay: float, sticker: tuple[int, int], crack: tuple[int, int],
            slag: tuple[int, int], lead: float) -> Totals:
    """(caught, false alarms) per type, of 10 events each."""
    return Totals(delay, {"sticker": (sticker[0], 10, sticker[1]),
                          "crack": (crack[0], 10, crack[1]),
                          "slag": (slag[0], 10, slag[1])}, lead)


ROWS = [_totals(0, (9, 5), (10, 4), (8, 6), 34.0),
        _totals(3, (9, 5), (10, 0), (7, 2), 33.0),   # slag loses an event
        _totals(5, (8, 1), (10, 0), (8, 1), 31.0),   # stickers lose one
        _totals(8, (9, 0), (10, 0), (9, 0), 29.0)]   # sticker lead under 30 s


def test_pick_by_type_applies_the_rule_to_each_type_alone() -> None:
    # sticker: 3 s ties 0 s on false alarms (5 s loses one, 8 s leads too little) -> 0 s;
    # crack: 3 s is the shortest with none; slag: 3 s loses an event, 8 s catches more and
    # has none (the sticker lead does not bind another type)
    assert pick_by_type(ROWS) == {"sticker": 0.0, "crack": 3.0, "slag": 8.0}
    assert pick_by_type(ROWS, min_lead_s=28.0)["sticker"] == 8.0
    # the one-delay rule on the same totals: 3 s has the fewest in all among 0 and 3
    results = [DelayResult(r.delay_s, [Fold(1, {}, {t: TypePoint(
        0.8, c, n - c, fa, float(fa), r.min_sticker_lead_s if t == "sticker" else None)
        for t, (c, n, fa) in r.by_type.items()})]) for r in ROWS]
    assert [r.totals() for r in results] == ROWS
    assert pick_delay(results).delay_s == 3
    assert pick_by_type([]) == {}


def test_repick_reads_a_record_and_adds_the_per_type_pick(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = {"model_id": "x", "picked_on_delay_s": 3.0, "delays": [
        {"on_delay_s": r.delay_s, "false_alarms": r.false_alarms(),
         "by_type": {t: dict(zip(("caught", "judged", "false_alarms"), v))
                     for t, v in r.by_type.items()},
         "min_sticker_lead_s": r.min_sticker_lead_s} for r in ROWS]}
    src, out = tmp_path / "od.json", tmp_path / "out.json"
    src.write_text(json.dumps(rec))
    assert main(["--repick", str(src), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "picked: on-delay 3 s" in text
    assert "picked per type: sticker 0 s, crack 3 s, slag 8 s " \
           "(--on-delay sticker=0,crack=3,slag=8)" in text
    got = json.loads(out.read_text())
    assert got["picked_by_type"] == {"sticker": 0.0, "crack": 3.0, "slag": 8.0}
    assert got["model_id"] == "x" and got["delays"] == rec["delays"]
    src.write_text(json.dumps({"delays": [{"on_delay_s": 0}]}))
    assert main(["--repick", str(src)]) == 2
    assert "od.json: delays[0]" in capsys.readouterr().err
    assert main(["--repick", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err
    assert main([]) == 2
    assert "give a checkpoint to score, or --repick" in capsys.readouterr().err
    assert main(["m.pt", "--repick", str(out)]) == 2
    assert "--repick reads a record: give no checkpoint" in capsys.readouterr().err


def test_command_refuses_one_seed_report_seeds_and_bad_delays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = str(tmp_path / "none.pt")
    assert main([ckpt, "--seed", "8001"]) == 2
    assert "at least two development seeds" in capsys.readouterr().err
    assert main([ckpt, "--seed", "8001", "--seed", "9931"]) == 2
    assert "9931 is a held-out report seed" in capsys.readouterr().err
    assert main([ckpt, "--seed", "8001", "--seed", "8002", "--delays", "0,90"]) == 2
    assert "--delays: each must be in [0, 60]" in capsys.readouterr().err
    assert main([ckpt, "--seed", "8001", "--seed", "8002", "--delays", "three"]) == 2
    assert "expected numbers" in capsys.readouterr().err
    # the chooser's own checks of --grid and --margin apply here too
    assert main([ckpt, "--seed", "8001", "--seed", "8002", "--grid", "0.5:0.9"]) == 2
    assert "--grid: expected START:STOP:STEP" in capsys.readouterr().err
    assert main([ckpt, "--seed", "8001", "--seed", "8002", "--margin", "-0.1"]) == 2
    assert "--margin: need 0 <= MARGIN < 1" in capsys.readouterr().err
    assert main([ckpt, "--seed", "8001", "--seed", "8002"]) == 2  # no such checkpoint
    assert "none.pt" in capsys.readouterr().err


def test_command_scores_a_baseline_as_the_chooser_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--system rules``: each held-out fold's counts are the chooser's own sweep of that
    seed (same system, same delay) at the thresholds the other seed chose."""
    from streamer.channels import ChannelLayout
    from streamer.evaluation import thresholds as chooser
    from tests.daemon_helpers import untrained_checkpoint

    ckpt = tmp_path / "tiny.pt"
    untrained_checkpoint(ckpt, list(ChannelLayout(3, 6).channels))
    common = ["--system", "rules", "--sim-config", SMALL, "--strands", "1", "--hours", "1",
              "--grid", "0.5:0.95:0.05"]
    assert main([str(ckpt), "--seed", "8001", "--seed", "8002", *common, "--delays", "0,2",
                 "--json", str(tmp_path / "od.json")]) == 0
    assert "== rules baseline for" in capsys.readouterr().out
    od = json.loads((tmp_path / "od.json").read_text())
    assert od["system"] == "rules" and set(od["picked_by_type"]) == {"sticker", "crack", "slag"}
    row = next(r for r in od["delays"] if r["on_delay_s"] == 2.0)
    sweeps = {}
    for seed in (8001, 8002):
        out = tmp_path / f"{seed}.json"
        assert chooser.main([str(ckpt), "--seed", str(seed), *common, "--on-delay", "2",
                             "--json", str(out)]) == 0
        rec = json.loads(out.read_text())
        sweeps[seed] = {t: {th: (c, fa) for th, c, _, fa, _ in v["sweep"]}
                        for t, v in rec["per_type"].items()}
    for t in ("sticker", "crack", "slag"):
        caught = fa = 0
        for fold in row["folds"]:
            c, f = sweeps[fold["held_out"]][t][fold["chosen"][t]]
            caught, fa = caught + c, fa + f
        assert (row["by_type"][t]["caught"], row["by_type"][t]["false_alarms"]) == (caught, fa)
