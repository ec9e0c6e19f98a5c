"""``streamer evaluate`` end to end on a tiny simulated set, and its refusals and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from streamer.channels import ChannelLayout
from streamer.commands.evaluate import evaluate
from tests.daemon_helpers import untrained_checkpoint

SMALL = Path(__file__).resolve().parents[1] / "configs" / "sim" / "small.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An untrained small model for the small sim config's channels (3 x 6 TCs)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    model_id = untrained_checkpoint(path, list(ChannelLayout(3, 6).channels))
    return path, model_id


def _run(args: list[str]) -> object:
    return CliRunner().invoke(evaluate, args, catch_exceptions=False)


def test_end_to_end_writes_report_and_pngs(tiny_ckpt: tuple[Path, str], tmp_path: Path) -> None:
    ckpt, model_id = tiny_ckpt
    out = tmp_path / "eval"
    res = _run(["--model", str(ckpt), "--simulate", "--seed", "101", "--sim-config", str(SMALL),
                "--hours", "3", "--gbt-train-seed", "102", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "rule system" in res.output and "gradient-boosted trees" in res.output
    assert "95 % CI, model (LSTM): false alarms" in res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["model"]["model_id"] == model_id
    assert rep["data"]["seed"] == 101 and rep["seed_check"]["training_seeds"] == [7]
    assert rep["seed_check"]["gbt_train_seed"] == 102
    assert "--seed 101" in rep["rerun"] and "--gbt-train-seed 102" in rep["rerun"]
    assert set(rep["systems"]) == {"model", "rules", "gbt"}
    c = rep["counts"]
    assert c["strands"] == 2 and c["readings"] == 2 * 3 * 3600
    assert c["windows"] == c["readings"] - 2 * 59  # hop 1 from the 60th reading
    assert c["strand_days"] == pytest.approx(c["windows"] / 86400)
    assert sum(c["events"].values()) > 0
    for name, sysrep in rep["systems"].items():
        for t in ["sticker", "crack", "slag", "any"]:
            w = sysrep["window"][t]
            assert w["windows"] == c["windows"]
            for key in ("roc_auc", "average_precision"):
                assert w[key] is None or 0.0 <= w[key] <= 1.0, (name, t, key)
        ev = sysrep["events"]
        for t in ["sticker", "crack", "slag"]:
            bt = ev["by_type"][t]
            assert bt["events"] == c["events"][t]
            assert bt["caught"] + bt["missed"] + bt["pending"] == bt["events"]
        assert ev["false_alarms"] == sum(ev["false_alarms_by_nuisance"].values())
        lo, hi = ev["false_alarms_per_strand_day_ci95"]
        assert lo <= ev["false_alarms_per_strand_day"] <= hi
        points = {p["threshold"]: p for p in sysrep["operating_points"]}
        assert sorted(points) == [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98]
        for t in ["sticker", "crack", "slag"]:  # the sweep's 0.8 point is the headline
            assert points[0.8]["by_type"][t]["caught"] == ev["by_type"][t]["caught"]
            assert points[0.8]["by_type"][t]["false_alarms"] == ev["by_type"][t]["false_alarms"]
    assert rep["systems"]["gbt"]["train"]["source"]["seed"] == 102
    assert rep["plots"] == ["curves.png", "lead_time_sticker.png", "operating_points.png",
                           "traces.png"]
    import matplotlib.image as mpimg

    for name in rep["plots"]:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE
        img = mpimg.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert np.ptp(img) > 0  # not a blank image


def test_no_baselines_scores_the_model_only(tiny_ckpt: tuple[Path, str], tmp_path: Path) -> None:
    ckpt, _ = tiny_ckpt
    res = _run(["--model", str(ckpt), "--simulate", "--seed", "103", "--sim-config", str(SMALL),
                "--hours", "1", "--no-baselines", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "report.json").read_text())
    assert list(rep["systems"]) == ["model"]
    assert "--no-baselines" in rep["rerun"]


def test_model_thresholds_resolve_like_the_daemon(tiny_ckpt: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    """Checkpoint operating thresholds apply unless the config or --threshold overrides them;
    the headline numbers of each type equal the sweep at that type's threshold."""
    from streamer.model.checkpoint import update_metadata

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(tiny_ckpt[0].read_bytes())
    update_metadata(ckpt, {"operating_thresholds": {
        "alarm_by_type": {"sticker": 0.55, "crack": 0.65}, "chosen_on": {"seeds": [8001, 103]},
        "on_delay_s": 2}})
    cfg = tmp_path / "daemon.yaml"
    cfg.write_text("alerts:\n  alarm_by_type:\n    crack: 0.9\n")
    base = ["--model", str(ckpt), "--simulate", "--seed", "103", "--sim-config", str(SMALL),
            "--hours", "1", "--no-baselines", "-q"]
    res = _run([*base, "--out", str(tmp_path / "a"), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    # one of the seeds the thresholds were chosen on is the one evaluated: said, not hidden
    assert "thresholds were chosen on seed 103" in res.output
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    got = rep["settings"]["model_alarm_thresholds"]
    assert got["alarm_by_type"] == {"sticker": 0.55, "crack": 0.9, "slag": 0.8}
    assert got["source"] == {"sticker": "checkpoint operating_thresholds",
                             "crack": "alerts.alarm_by_type", "slag": "alerts.alarm"}
    # the on-delay chosen with the thresholds applies with them, to the sweep as well
    assert got["on_delay_s"] == 2.0
    assert got["on_delay_source"] == dict.fromkeys(
        ("sticker", "crack", "slag"), "checkpoint operating_thresholds")
    assert "model sticker 0.55 (checkpoint operating_thresholds)" in res.output
    assert "on-delay 2 s" in res.output
    assert rep["settings"]["threshold"] == 0.8 and not rep["settings"]["threshold_explicit"]
    assert "--config" in rep["rerun"] and "--threshold" not in rep["rerun"]
    model = rep["systems"]["model"]
    points = {p["threshold"]: p for p in model["operating_points"]}
    assert {0.55, 0.8, 0.9} <= set(points)
    for t, th in got["alarm_by_type"].items():
        for key in ("caught", "missed", "false_alarms"):
            assert model["events"]["by_type"][t][key] == points[th]["by_type"][t][key], (t, key)

    res = _run([*base, "--out", str(tmp_path / "b"), "--threshold", "0.7"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    assert rep["settings"]["model_alarm_thresholds"]["alarm_by_type"] == {
        "sticker": 0.7, "crack": 0.7, "slag": 0.7}
    assert "--threshold 0.7" in rep["rerun"]

    cfg.write_text("alerts:\n  alarm_by_type:\n    stikcer: 0.7\n")
    res = _run([*base, "--out", str(tmp_path / "c"), "--config", str(cfg)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: alerts.alarm_by_type.stikcer: not a "
                                                   "defect type"), res.output


def test_baseline_thresholds_chosen_for_the_same_trees_apply(tiny_ckpt: tuple[Path, str],
                                                            tmp_path: Path) -> None:
    """Thresholds the chooser picks for the trees and the rules on dev heats are what the
    report applies to them; trees fitted otherwise are refused; conflicting flags are usage
    errors."""
    from streamer.evaluation.thresholds import main as choose

    ckpt, _ = tiny_ckpt
    sim = ["--sim-config", str(SMALL), "--strands", "1", "--hours", "3"]
    records = {}
    for system in ("gbt", "rules"):
        path = tmp_path / f"{system}.json"
        assert choose([str(ckpt), "--seed", "8001", *sim, "--system", system,
                       "--gbt-train-seed", "102", "--json", str(path)]) == 0
        records[system] = json.loads(path.read_text())
        assert records[system]["system"] == system
    assert records["gbt"]["gbt_train"]["source"]["seed"] == 102
    assert "gbt_train" not in records["rules"]

    base = ["--model", str(ckpt), "--simulate", "--seed", "101", *sim,
            "--gbt-train-seed", "102", "-q"]
    files = ["--baseline-thresholds", str(tmp_path / "gbt.json"),
             "--baseline-thresholds", str(tmp_path / "rules.json")]
    res = _run([*base, *files, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "a" / "report.json").read_text())
    assert str(tmp_path / "gbt.json") in rep["rerun"]
    for system, rec in records.items():
        sysrep = rep["systems"][system]
        assert sysrep["alarm_thresholds"]["alarm_by_type"] == rec["alarm_by_type"]
        assert set(sysrep["alarm_thresholds"]["source"].values()) == {"--baseline-thresholds"}
        got = rep["settings"]["baseline_alarm_thresholds"][system]
        assert got["alarm_by_type"] == rec["alarm_by_type"]
        assert got["chosen_on"]["seed"] == 8001
        points = {p["threshold"]: p for p in sysrep["operating_points"]}
        for t, th in rec["alarm_by_type"].items():  # headline = the sweep at its threshold
            for key in ("caught", "missed", "false_alarms"):
                assert sysrep["events"]["by_type"][t][key] == points[th]["by_type"][t][key]
    assert rep["systems"]["model"]["alarm_thresholds"]["source"]["sticker"] == "alerts.alarm"

    res = _run([*base, *files, "--gbt-stride", "2", "--out", str(tmp_path / "b")])
    assert res.exit_code == 1
    assert "chosen for other trees" in res.output and "stride" in res.output
    res = _run([*base, *files, "--no-baselines", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--baseline-thresholds needs the baselines" in res.output
    res = _run([*base, *files, "--threshold", "0.7", "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "not both" in res.output
    res = _run([*base, "--baseline-thresholds", str(tmp_path / "rules.json"),
                "--baseline-thresholds", str(tmp_path / "rules.json"), "--out", str(tmp_path)])
    assert res.exit_code == 1 and "two records for rules" in res.output


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a JSON threshold record"),
    ("[1, 2]", "not a JSON threshold record"),
    ('{"system": "model", "alarm_by_type": {}}', "system: must be one of gbt, rules"),
    ('{"system": "rules", "alarm_by_type": {"stikcer": 0.7}}',
     "alarm_by_type.stikcer: not a defect type"),
    ('{"system": "rules", "alarm_by_type": {"sticker": 1.5}}',
     "alarm_by_type.sticker: must be a number in (0, 1)"),
    ('{"system": "rules", "alarm_by_type": {"sticker": 0.7}}', "no threshold for crack, slag"),
    ('{"system": "gbt", "alarm_by_type": {"sticker": 0.7, "crack": 0.7, "slag": 0.7}}',
     "gbt_train: missing"),
])
def test_a_bad_baseline_threshold_file_is_a_one_line_error(
        tiny_ckpt: tuple[Path, str], tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    res = _run(["--model", str(tiny_ckpt[0]), "--simulate", "--seed", "101",
                "--sim-config", str(SMALL), "--hours", "1", "--baseline-thresholds", str(bad),
                "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: "), res.output
    assert message in lines[0], res.output
    assert not (tmp_path / "o").exists()  # refused before simulating or fitting anything


def test_heat_folder_input(tiny_ckpt: tuple[Path, str], tmp_path: Path) -> None:
    from simulators.caster import generate, load_config
    from simulators.heatfile import write_heats

    ckpt, _ = tiny_ckpt
    heats = generate(load_config(SMALL, seed=105, hours=0.5))
    write_heats(tmp_path / "h", heats)
    res = _run(["--model", str(ckpt), "--data", str(tmp_path / "h"), "--no-baselines",
                "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert rep["data"]["source"] == str(tmp_path / "h") and rep["data"]["seed"] == 105
    assert rep["counts"]["readings"] == heats.readings.num_rows
    assert rep["counts"]["events"] == {t: sum(1 for e in heats.events.to_pylist()
                                              if e["type"] == t)
                                       for t in ("sticker", "crack", "slag")}


def test_refuses_a_training_seed(tiny_ckpt: tuple[Path, str], tmp_path: Path) -> None:
    ckpt, _ = tiny_ckpt
    res = _run(["--model", str(ckpt), "--simulate", "--seed", "7", "--sim-config", str(SMALL),
                "--out", str(tmp_path), "-q"])
    assert res.exit_code == 1
    assert "seed 7" in res.output and "never saw" in res.output
    assert not (tmp_path / "report.json").exists()


def test_refuses_a_heat_folder_with_a_training_seed(tiny_ckpt: tuple[Path, str],
                                                    tmp_path: Path) -> None:
    from simulators.caster import generate, load_config
    from simulators.heatfile import write_heats

    ckpt, _ = tiny_ckpt
    write_heats(tmp_path / "h", generate(load_config(SMALL, seed=7, hours=0.2)))
    res = _run(["--model", str(ckpt), "--data", str(tmp_path / "h"), "--out",
                str(tmp_path / "o"), "-q"])
    assert res.exit_code == 1 and "seed 7" in res.output


def test_refuses_gbt_training_on_the_heldout_seed(tiny_ckpt: tuple[Path, str],
                                                  tmp_path: Path) -> None:
    ckpt, _ = tiny_ckpt
    res = _run(["--model", str(ckpt), "--simulate", "--seed", "104", "--sim-config", str(SMALL),
                "--hours", "0.2", "--gbt-train-seed", "104", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 1 and "GBT training seed 104" in res.output


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_bad_data_is_a_one_line_error(tiny_ckpt: tuple[Path, str], tmp_path: Path,
                                      kind: str) -> None:
    ckpt, _ = tiny_ckpt
    d = tmp_path / "heats"
    if kind != "missing":
        d.mkdir()
    if kind == "corrupt":
        (d / "manifest.json").write_text("{not json")
    res = _run(["--model", str(ckpt), "--data", str(d), "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.output
    assert "Traceback" not in res.output


def test_bad_checkpoint_and_usage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    res = _run(["--model", str(bad), "--simulate", "--seed", "5", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 1 and "corrupt" in res.output
    res = _run(["--model", str(bad), "--simulate", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--seed" in res.output
    res = _run(["--model", str(bad), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--data" in res.output


def test_command_module_imports_no_heavy_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, streamer.commands.evaluate; "
            "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'pyarrow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
