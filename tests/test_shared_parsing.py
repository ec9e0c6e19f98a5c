"""Shared readers: one YAML-mapping reader for the daemon's and the simulator's config files,
one KEY=VALUE parser for the replay flags and the historian column map, and the demo's
latency accounting (what its summary says it measures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.caster.config import ConfigError as SimConfigError
from simulators.caster.config import load_config
from simulators.historian import HistorianError, parse_column_map
from simulators.keyvalue import parse_pairs
from streamer.config import ConfigError, load_settings
from streamer.demo import LATENCY_MEASURES, DemoState, format_summary
from streamer.yaml_file import read_yaml_mapping


class Oops(Exception):
    pass


def test_read_yaml_mapping_messages(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    with pytest.raises(Oops, match=r"^thing .*c\.yaml: not found$"):
        read_yaml_mapping(p, Oops, "thing")
    p.write_text("a: [1\n")
    with pytest.raises(Oops, match=r"^thing .*c\.yaml: not valid YAML \(") as info:
        read_yaml_mapping(p, Oops, "thing")
    assert "\n" not in str(info.value)
    p.write_text("- 1\n")
    with pytest.raises(Oops, match=r"c\.yaml: top level must be a mapping$"):
        read_yaml_mapping(p, Oops, "thing")
    with pytest.raises(Oops, match=r"c\.yaml: wants sections$"):
        read_yaml_mapping(p, Oops, "thing", not_mapping="wants sections")
    p.write_bytes(b"\xff\xfe: 1\n")
    with pytest.raises(Oops, match="cannot be read"):
        read_yaml_mapping(p, Oops, "thing")
    with pytest.raises(Oops, match="cannot be read"):
        read_yaml_mapping(tmp_path, Oops, "thing")  # a folder
    p.write_text("")
    assert read_yaml_mapping(p, Oops, "thing") == {}
    p.write_text("a: 1\n")
    assert read_yaml_mapping(str(p), Oops, "thing") == {"a": 1}


def test_daemon_and_simulator_configs_word_errors_alike(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    for load, err in ((lambda: load_settings(p), ConfigError), (lambda: load_config(p), SimConfigError)):
        p.unlink(missing_ok=True)
        with pytest.raises(err, match=r"^config file .*: not found$"):
            load()
        p.write_text("x: [1\n")
        with pytest.raises(err, match=r"^config file .*: not valid YAML \([^\n]*\)$"):
            load()
        p.write_text("- 1\n")
        with pytest.raises(err, match=r"^config file .*: .*must be a mapping of (sections|settings)$"):
            load()
        p.write_text("")
        load()  # an empty file is no settings, not an error


def test_parse_pairs() -> None:
    assert parse_pairs(" a = 1 ,, b=2", ValueError) == {"a": "1", "b": "2"}
    assert parse_pairs(["a=1", "b=x=y", "a=3"], ValueError) == {"a": "3", "b": "x=y"}
    for bad in ("a", "=1", "a= "):
        with pytest.raises(Oops, match=repr(bad.strip())):
            parse_pairs(bad, lambda part: Oops(repr(part)))
    with pytest.raises(HistorianError, match="column map entry 'ts' is not channel=Column"):
        parse_column_map("ts")


def test_demo_latency_is_record_time_to_receipt_with_stages() -> None:
    st = DemoState()
    doc = {"strand": "C1-S1", "heat": "H1", "level": "normal", "ts": 5.0, "events": [],
           "probabilities": {"sticker": 0.1, "crack": 0.0, "slag": 0.0},
           "timings": {"record_ts": 100.0, "received_ts": 100.01, "inferred_ts": 100.03}}
    st.on_alert(doc, now=100.05)
    s = st.summary()
    assert s["latency_p50_s"] == pytest.approx(0.05) and s["latency_n"] == 1
    assert s["latency_stages_p50_s"] == pytest.approx(
        {"to_daemon": 0.01, "batching_and_model": 0.02, "alert_to_subscriber": 0.02})
    text = format_summary(s)
    assert "p50 50 ms" in text and LATENCY_MEASURES in text and "batching + model 20 ms" in text
