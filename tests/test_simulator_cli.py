"""``caster-sim generate`` and ``caster-sim plot`` from the command line: exit codes and
one-line messages, never tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.cli import cli
from simulators.heatfile import read_heats

ROOT = Path(__file__).resolve().parents[1]
SMALL = str(ROOT / "configs" / "sim" / "small.yaml")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "heats"
    res = CliRunner().invoke(cli, ["generate", "--out", str(out), "--config", SMALL,
                                   "--hours", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def test_generate_writes_a_readable_heat_folder(data_dir):
    heats = read_heats(data_dir)
    m = heats.manifest
    assert m["counts"]["readings"] == 2 * 3600
    assert m["config"]["hours"] == 1.0 and m["seed"] == 7
    assert set(m["defect_types"]) == {"sticker", "crack", "slag"}
    assert json.loads((data_dir / "manifest.json").read_text())["format"] == "streamer-heats"


def test_generate_prints_a_summary(tmp_path):
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "x"), "--strands", "1",
                                   "--hours", "0.5", "--seed", "3", "--rate", "sticker=4", "-q"])
    assert res.exit_code == 0, res.output
    assert "1 strands, 1800 readings" in res.output
    assert "events: sticker" in res.output and "hard negatives:" in res.output
    cfg = read_heats(tmp_path / "x").manifest["config"]
    assert cfg["rates"]["sticker"] == 4.0 and cfg["seed"] == 3


@pytest.mark.parametrize("yaml_text, args, needle", [
    ("rates:\n  sticker: -1\n", [], "rates.sticker"),
    ("rates:\n  stickr: 1\n", [], "rates.stickr"),
    ("tc_rows: 0\n", [], "tc_rows"),
    ("row_depths_mm: [210, 200, 445]\n", [], "row_depths_mm"),
    ("seed: [1\n", [], "not valid YAML"),
    ("", ["--rate", "bogus=1"], "unknown kind 'bogus'"),
    ("", ["--rate", "sticker"], "KIND=PER_HOUR"),
    ("", ["--strands", "0"], "strands_per_caster"),
    ("", ["--hours", "-1"], "hours"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, yaml_text, args, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "o"), "--config", str(cfg),
                                   *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "o").exists()


def test_missing_config_file_and_non_empty_out(tmp_path, data_dir):
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path / "o"), "--config",
                                   str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "not found" in res.output
    res = CliRunner().invoke(cli, ["generate", "--out", str(data_dir), "--hours", "0.1"])
    assert res.exit_code == 2 and "not empty" in res.output and "--force" in res.output


def test_plot_event_and_time_window(data_dir, tmp_path):
    heats = read_heats(data_dir)
    eid = heats.events.column("event_id")[0].as_py()
    res = CliRunner().invoke(cli, ["plot", str(data_dir), "--event", eid,
                                   "--out", str(tmp_path / "e.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    nid = heats.nuisances.column("event_id")[0].as_py()
    res = CliRunner().invoke(cli, ["plot", str(data_dir), "--event", nid,
                                   "--out", str(tmp_path / "n.png")])
    assert res.exit_code == 0, res.output
    ts = heats.readings.column("ts")[1000].as_py()
    res = CliRunner().invoke(cli, ["plot", str(data_dir), "--strand", "C1-S2", "--at", str(ts),
                                   "--before", "300", "--out", str(tmp_path / "t.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.png").stat().st_size > 1000


@pytest.mark.parametrize("args, needle", [
    (["--event", "C9-S9-E9999"], "C9-S9-E9999"),
    (["--strand", "C7-S1", "--at", "0"], "no strand 'C7-S1'"),
    (["--strand", "C1-S1", "--at", "5"], "no readings"),
])
def test_plot_unknown_event_strand_or_time(data_dir, tmp_path, args, needle):
    res = CliRunner().invoke(cli, ["plot", str(data_dir), *args, "--out", str(tmp_path / "p.png")])
    assert res.exit_code != 0
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "p.png").exists()


def test_plot_missing_folder_and_bad_arguments(tmp_path, data_dir):
    res = CliRunner().invoke(cli, ["plot", str(tmp_path / "nowhere"), "--event", "x",
                                   "--out", str(tmp_path / "p.png")])
    assert res.exit_code != 0
    assert "not a heat folder" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["plot", str(data_dir), "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 2 and "--event" in res.output
    res = CliRunner().invoke(cli, ["plot", str(data_dir), "--strand", "C1-S1",
                                   "--out", str(tmp_path / "p.png")])
    assert res.exit_code == 2


def test_help_is_fast_and_imports_no_heavy_library():
    code = ("import sys; from simulators.cli import cli\n"
            "for name in ('generate', 'plot'):\n"
            "    cli.get_command(None, name)\n"
            "heavy = [m for m in ('numpy', 'pyarrow', 'matplotlib', 'scipy') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for cmd in (["--help"], ["generate", "--help"], ["plot", "--help"]):
        res = CliRunner().invoke(cli, cmd)
        assert res.exit_code == 0 and "Usage" in res.output
