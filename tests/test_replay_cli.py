"""``caster-sim replay`` as a user runs it: Ctrl-C, bad files, unreachable broker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from simulators.bench_replay import synthetic_heats
from simulators.broker import free_port
from simulators.cli import cli
from simulators.heatfile import write_heats
from tests.test_replay import consume

CLI = [sys.executable, "-c", "from simulators.cli import main; main()"]


@pytest.fixture
def heat_dir(tmp_path: Path) -> Path:
    return write_heats(tmp_path / "heats", synthetic_heats(4, 100))


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["replay", *args])
    return result.exit_code, result.output  # stdout and stderr as a terminal shows them


def assert_clean_failure(code: int, out: str, *needles: str) -> None:
    assert code not in (0, 130), out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in out, (n, out)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case", ["missing", "not_a_heat_folder", "empty_readings",
                                  "corrupt_readings", "no_readings", "missing_events"])
def test_bad_heat_folder_stops_with_one_line(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "heats"
    if case != "missing":
        write_heats(folder, synthetic_heats(2, 5))
    expect = {"missing": "not found", "not_a_heat_folder": "not a streamer-heats manifest",
              "empty_readings": "readings.parquet: file is empty",
              "corrupt_readings": "not a readable Parquet file",
              "no_readings": "holds no readings", "missing_events": "events.parquet: file not found"}
    if case == "not_a_heat_folder":
        (folder / "manifest.json").write_text('{"hello": 1}')
    elif case == "empty_readings":
        (folder / "readings.parquet").write_bytes(b"")
    elif case == "corrupt_readings":
        (folder / "readings.parquet").write_bytes(os.urandom(3000))
    elif case == "no_readings":
        t = pq.read_table(folder / "readings.parquet")
        pq.write_table(t.slice(0, 0), folder / "readings.parquet")
    elif case == "missing_events":
        (folder / "events.parquet").unlink()
    # an unused port: nothing may be sent anyway, the input is checked first
    code, out = run_cli(str(folder), "--bootstrap", f"127.0.0.1:{free_port()}",
                        "--connect-attempts", "1")
    assert_clean_failure(code, out, expect[case])
    assert len([ln for ln in out.strip().splitlines() if ln.strip()]) == 1, out


@pytest.mark.parametrize("content,needle", [
    (b"", "file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfd" * 20, "not a UTF-8 text file"),
    (b"ts,casting_speed\n", "no data rows"),
])
def test_bad_csv_stops_with_one_line(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "plant.csv"
    path.write_bytes(content)
    code, out = run_cli(str(path), "--strand", "C1-S1", "--bootstrap", "127.0.0.1:1")
    assert_clean_failure(code, out, needle)


def test_missing_csv_and_unknown_format(tmp_path: Path) -> None:
    code, out = run_cli(str(tmp_path / "nope.csv"), "--strand", "C1-S1")
    assert_clean_failure(code, out, "nope.csv: file not found")
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"x")
    code, out = run_cli(str(odd))
    assert_clean_failure(code, out, "cannot tell its format")
    code, out = run_cli()
    assert_clean_failure(code, out, "missing SOURCE")


def test_bad_options_are_usage_errors(heat_dir: Path) -> None:
    code, out = run_cli(str(heat_dir), "--speed", "-3")
    assert code == 2 and "must be > 0" in out
    code, out = run_cli(str(heat_dir), "--strand-map", "C1-S1")
    assert code == 2 and "KEY=VALUE" in out
    code, out = run_cli(str(heat_dir), "--strand", "C5-S5", "--bootstrap", "127.0.0.1:1")
    assert_clean_failure(code, out, "not in the source")


def test_unreachable_broker_is_retried_then_a_clear_error(heat_dir: Path) -> None:
    t = time.monotonic()
    code, out = run_cli(str(heat_dir), "--bootstrap", f"127.0.0.1:{free_port()}",
                        "--connect-attempts", "2", "--speed", "max")
    assert_clean_failure(code, out, "cannot reach a Kafka broker", "after 2 attempts",
                         "nothing was published")
    assert time.monotonic() - t < 10


@pytest.mark.broker
def test_cli_replay_to_the_end(heat_dir: Path, bootstrap: str, topic_name: str) -> None:
    code, out = run_cli(str(heat_dir), "--bootstrap", bootstrap, "--topic", topic_name,
                        "--speed", "max", "--create-topic", "--partitions", "2",
                        "--events-topic", topic_name + "-ev", "--limit", "250")
    assert code == 0, out
    assert re.search(r"done: 250 of 250 readings acknowledged \(250 sent, 0 failed\)", out), out
    assert "records/s" in out and "MB/s" in out
    msgs = asyncio.run(consume(bootstrap, [topic_name], 250))
    assert len(msgs) == 250


@pytest.mark.broker
def test_cli_missing_topic_without_create(heat_dir: Path, bootstrap: str,
                                          topic_name: str) -> None:
    code, out = run_cli(str(heat_dir), "--bootstrap", bootstrap, "--topic", topic_name)
    assert_clean_failure(code, out, "do not exist", "--create-topic", "nothing was published")


# ---------------------------------------------------------------------------- Ctrl-C
@pytest.mark.broker
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_reports_how_far_it_got(heat_dir: Path, bootstrap: str, topic_name: str,
                                          sig: signal.Signals) -> None:
    """400 readings over 100 s of event time at speed 25: about 4 s. Interrupt after ~1.5 s
    of sending; what the command reports must be exactly what a consumer then reads."""
    proc = subprocess.Popen(
        [*CLI, "replay", str(heat_dir), "--bootstrap", bootstrap, "--topic", topic_name,
         "--speed", "25", "--create-topic", "--partitions", "3", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # wait until records arrive, then let it run a little longer
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if asyncio.run(consume(bootstrap, [topic_name], 1, timeout_s=0.5)):
                break
            assert proc.poll() is None, proc.communicate()
        time.sleep(1.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err, err
    assert f"{sig.name}: stopping" in err
    m = re.search(r"interrupted: (\d+) of 400 readings acknowledged \((\d+) sent, 0 failed\)",
                  out)
    assert m, (out, err)
    acked, sent = int(m.group(1)), int(m.group(2))
    assert 0 < acked == sent < 400
    line = next(ln for ln in out.splitlines()
                if ln.startswith("last acknowledged reading per strand: "))
    reported = {s: (float(t), int(q)) for s, t, q in
                re.findall(r"(\S+) ts=([\d.e+]+) seq=(\d+)", line)}
    msgs = asyncio.run(consume(bootstrap, [topic_name], acked))
    assert len(msgs) == acked
    last: dict[str, tuple[float, int]] = {}
    for msg in msgs:
        doc = orjson.loads(msg.value)
        if doc["seq"] > last.get(doc["strand"], (0.0, -1))[1]:
            last[doc["strand"]] = (doc["ts"], doc["seq"])
    assert reported == last



@pytest.mark.broker
def test_simulate_replays_a_fresh_simulation(bootstrap: str, topic_name: str) -> None:
    pytest.importorskip("simulators.caster.generate")
    code, out = run_cli("--simulate", "--sim", "hours=0.25", "--sim", "strands_per_caster=1",
                        "--sim", "seed=3", "--limit", "120", "--speed", "max",
                        "--bootstrap", bootstrap, "--topic", topic_name, "--create-topic")
    assert code == 0, out
    assert "done: 120 of 120 readings acknowledged" in out
    msgs = asyncio.run(consume(bootstrap, [topic_name], 120))
    assert len(msgs) == 120 and {m.key for m in msgs} == {b"C1-S1"}
    code, out = run_cli("--simulate", "--sim", "bogus=1", "--bootstrap", bootstrap)
    assert_clean_failure(code, out, "invalid simulator config: bogus")
