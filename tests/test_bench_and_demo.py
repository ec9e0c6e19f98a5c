"""The two long-running commands at small settings: `streamer bench --quick` prints all five
sections; `streamer demo --duration 60` catches real defects with the shipped model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_helpers import tiny_checkpoint

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_bench_quick_prints_all_five_sections(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(tmp_path / "m.pt", window=120)
    out = subprocess.run(
        [sys.executable, "-m", "streamer", "bench", "--quick", "--model", str(ckpt),
         "--capacity-steps", "64,128", "--json", str(tmp_path / "b.json")],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    for heading in ("1. client limit", "2. ingest", "3. latency", "4. capacity", "5. model"):
        assert heading in out.stdout
    r = json.loads((tmp_path / "b.json").read_text())["sections"]
    assert r["client"]["consume_decode_per_s"] > 0 and r["ingest"]["records_per_s"] > 0
    assert r["latency"]["alerts"] == r["latency"]["readings"]  # every reading evaluated
    assert r["latency"]["p99_ms"] >= r["latency"]["p50_ms"] > 0
    assert [s["strands"] for s in r["capacity"]["steps"]][0] == 64
    assert {row["batch"] for row in r["model"]["results"]} == {1, 64, 256, 1024}


def test_bench_workers_share_the_load(tmp_path: Path) -> None:
    """Two daemon workers in one consumer group and two load processes: every reading of
    every strand is evaluated exactly once across the group (no partition read twice or
    left unread)."""
    ckpt = tiny_checkpoint(tmp_path / "m.pt", window=120)
    out = subprocess.run(
        [sys.executable, "-m", "streamer", "bench", "--sections", "latency", "--model", str(ckpt),
         "--workers", "2", "--load-procs", "2", "--strands", "24", "--seconds", "4",
         "--torch-threads", "1", "--json", str(tmp_path / "b.json")],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    la = json.loads((tmp_path / "b.json").read_text())["sections"]["latency"]
    assert la["workers"] == 2 and la["readings"] == 24 * 4
    assert la["alerts"] == la["readings"]
    assert "2 daemon workers" in out.stdout


def test_demo_catches_defects(tmp_path: Path) -> None:
    from streamer.app import default_model_path

    if not default_model_path().exists():
        pytest.fail("the shipped default model is missing: see streamer/model/default/README.md")
    out = subprocess.run(
        [sys.executable, "-m", "streamer", "demo", "--duration", "60", "--no-live",
         "--json", str(tmp_path / "demo.json")],
        capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "demo summary" in out.stdout
    s = json.loads((tmp_path / "demo.json").read_text())
    caught = sum(t["caught"] for t in s["events"]["by_type"].values())
    assert caught >= 1, out.stdout
    assert s["latency_p50_s"] is not None and s["alerts"] > 0


def test_load_slices_cover_every_strand_once() -> None:
    from streamer.bench.load import _slices, strand_names

    names = strand_names(37)
    parts = _slices(names, 4)
    assert len(parts) == 4 and sorted(n for p in parts for n in p) == sorted(names)
    assert _slices(names[:2], 4) == [[names[0]], [names[1]]]  # never an empty process


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--capacity-steps", "256,x", "comma-separated integers"),
    ("--model-batches", "64,0", "positive integers")])
def test_bench_bad_list_flag_names_it(flag: str, value: str, says: str) -> None:
    """A wrong list flag stops before any broker starts, naming the flag."""
    from click.testing import CliRunner

    from streamer.commands.bench import bench

    out = CliRunner().invoke(bench, [flag, value])
    assert out.exit_code == 2 and flag in out.output and says in out.output
