"""Historian CSV import: mapping, time parsing, ordering, and errors that say what is wrong."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from simulators.cli import cli
from simulators.historian import (HistorianError, load_column_map, parse_column_map,
                                  read_historian_csv)
from streamer.channels import ChannelLayout

DATA = Path(__file__).parent / "data"
CSV = DATA / "historian_small.csv"
MAP = DATA / "historian_map.yaml"
SMALL = ChannelLayout(tc_rows=1, tc_cols=2)
CHANNELS = list(SMALL.channels)
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()


def write(tmp_path: Path, text: str, name: str = "plant.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def plain_csv(rows: list[list[object]], header: list[str] | None = None) -> str:
    header = header or ["ts", *CHANNELS]
    return "\n".join(",".join(str(x) for x in r) for r in [header, *rows]) + "\n"


def row(t: object, tc: object = 150.0) -> list[object]:
    return [t, 1.2, -1.0, 27.0, 3900, 7.0, tc, 151.0]


def test_mapped_csv_becomes_a_sorted_one_strand_heat_set() -> None:
    heats = read_historian_csv(CSV, strand="C1-S1", heat="H123",
                               column_map=load_column_map(MAP), layout=SMALL)
    assert heats.channels == CHANNELS and heats.strands == ["C1-S1"]
    ts, seq, values = heats.strand_arrays("C1-S1")
    np.testing.assert_array_equal(ts, T0 + np.arange(6))  # rows 3 and 4 were swapped
    np.testing.assert_array_equal(seq, np.arange(6))
    assert set(heats.readings.column("heat").to_pylist()) == {"H123"}
    assert values[2, 1] == np.float32(-0.9) and values[3, 1] == np.float32(-0.7)
    assert np.isnan(values[1, 6]) and np.isnan(values[4, 6])  # empty cell and "NaN"
    assert values[0, 5] == np.float32(151.2)


def test_inline_map_equals_yaml_map() -> None:
    spec = ("ts=Timestamp,casting_speed=CastSpeed,mould_level=MouldLevel,superheat=Superheat,"
            "water_flow=WaterFlow,water_dt=WaterDeltaT,tc_r1_c1=TC_1_1,tc_r1_c2=TC_1_2")
    assert parse_column_map(spec) == load_column_map(MAP)
    assert parse_column_map(["ts=A", "casting_speed=B,mould_level=C"]) == {
        "ts": "A", "casting_speed": "B", "mould_level": "C"}
    with pytest.raises(HistorianError, match="not channel=Column"):
        parse_column_map("ts")


def test_epoch_seconds_ms_and_naive_time_zones(tmp_path: Path) -> None:
    p = write(tmp_path, plain_csv([row(T0 + 1.5), row(T0)]))
    ts, seq, _ = read_historian_csv(p, strand="S1", layout=SMALL).strand_arrays("S1")
    assert list(ts) == [T0, T0 + 1.5] and list(seq) == [0, 1]
    p = write(tmp_path, plain_csv([row(int(T0 * 1000) + 250)]))
    ts, _, _ = read_historian_csv(p, strand="S1", layout=SMALL, ts_unit="ms").strand_arrays("S1")
    assert list(ts) == [T0 + 0.25]
    p = write(tmp_path, plain_csv([row("2025-01-01 01:00:00")]))
    ts, _, _ = read_historian_csv(p, strand="S1", layout=SMALL,
                                  timezone="Europe/Berlin").strand_arrays("S1")
    assert list(ts) == [T0]  # 01:00 in Berlin (UTC+1 in January) is 00:00 UTC
    p = write(tmp_path, plain_csv([row("2025-01-01T00:00:00.5+00:00")]))
    ts, _, _ = read_historian_csv(p, strand="S1", layout=SMALL).strand_arrays("S1")
    assert list(ts) == [T0 + 0.5]
    heats = read_historian_csv(p, strand="S1", layout=SMALL)
    assert heats.readings.column("heat").to_pylist() == ["plant"]  # default: file name


def test_unknown_and_missing_columns_list_expected_and_found(tmp_path: Path) -> None:
    header = ["ts", *CHANNELS[:-1], "Operator", "Comment"]  # tc_r1_c2 missing
    p = write(tmp_path, plain_csv([row(T0)[:-1] + ["ann", "ok"]], header))
    with pytest.raises(HistorianError) as info:
        read_historian_csv(p, strand="C1-S1", layout=SMALL)
    msg = str(info.value)
    assert "unknown columns ['Operator', 'Comment']" in msg
    assert "missing channels ['tc_r1_c2']" in msg
    assert f"the 7 channels {CHANNELS}" in msg and "found columns" in msg
    assert "\n" not in msg
    # ignoring the extras leaves only the missing channel
    with pytest.raises(HistorianError, match=r"missing channels \['tc_r1_c2'\]") as info:
        read_historian_csv(p, strand="C1-S1", layout=SMALL,
                           ignore_columns=["Operator", "Comment"])
    assert "unknown columns" not in str(info.value)


def test_missing_timestamp_and_mapped_column_absent(tmp_path: Path) -> None:
    p = write(tmp_path, plain_csv([row(T0)[1:]], CHANNELS))
    with pytest.raises(HistorianError, match=r"no timestamp column 'ts' \(map yours with ts="):
        read_historian_csv(p, strand="C1-S1", layout=SMALL)
    p = write(tmp_path, plain_csv([row(T0)]))
    with pytest.raises(HistorianError, match="mapped columns not in the file: {'casting_speed': "
                                             "'CastSpeed'}"):
        read_historian_csv(p, strand="C1-S1", layout=SMALL,
                           column_map={"casting_speed": "CastSpeed"})
    with pytest.raises(HistorianError, match="which are not channels"):
        read_historian_csv(p, strand="C1-S1", layout=SMALL, column_map={"speed": "X"})


def test_default_layout_expects_29_channels(tmp_path: Path) -> None:
    p = write(tmp_path, plain_csv([row(T0)]))
    with pytest.raises(HistorianError, match="missing channels") as info:
        read_historian_csv(p, strand="C1-S1")
    assert "the 29 channels" in str(info.value) and "3x8 thermocouples" in str(info.value)


@pytest.mark.parametrize("bad", ["abc", "1.2.3", "inf", "--5"])
def test_bad_value_names_line_and_column(tmp_path: Path, bad: str) -> None:
    p = write(tmp_path, plain_csv([row(T0), row(T0 + 1, bad), row(T0 + 2)]))
    with pytest.raises(HistorianError) as info:
        read_historian_csv(p, strand="C1-S1", layout=SMALL)
    assert str(info.value).endswith(f"plant.csv: line 3, column 'tc_r1_c1': {bad!r} is not a "
                                    "number")


def test_bad_value_in_mapped_column_names_both_names(tmp_path: Path) -> None:
    p = write(tmp_path, CSV.read_text().replace("1.22,-0.9", "fast,-0.9"))
    with pytest.raises(HistorianError,
                       match=r"line 5, column 'CastSpeed' \(casting_speed\): 'fast' is not"):
        read_historian_csv(p, strand="C1-S1", column_map=load_column_map(MAP), layout=SMALL)


@pytest.mark.parametrize("text,needle", [
    ("", "file is empty"),
    ("ts,casting_speed\n", "holds a header but no data rows"),
    ("ts,ts\n1,2\n", "duplicate column names ['ts']"),
    ("ts,casting_speed\n1,2,3\n", "line 2 has 3 fields, the header has 2"),
    (plain_csv([row("yesterday")]), "line 2, column 'ts' (ts): 'yesterday' is not an ISO 8601"),
])
def test_malformed_files(tmp_path: Path, text: str, needle: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(HistorianError) as info:
        read_historian_csv(p, strand="C1-S1", layout=SMALL)
    assert needle in str(info.value)


def test_bad_ids_and_missing_map_file(tmp_path: Path) -> None:
    with pytest.raises(HistorianError, match="strand id 'bad id!'"):
        read_historian_csv(CSV, strand="bad id!")
    with pytest.raises(HistorianError, match="column map .*nope.yaml: file not found"):
        load_column_map(tmp_path / "nope.yaml")
    bad = write(tmp_path, "- a\n- b\n", "map.yaml")
    with pytest.raises(HistorianError, match="expected a mapping"):
        load_column_map(bad)


def test_cli_errors_are_one_line_without_traceback() -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["replay", str(CSV), "--strand", "C1-S1", "--rows", "1",
                              "--cols", "2", "--bootstrap", "127.0.0.1:1"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "unknown columns ['Timestamp', 'CastSpeed'" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(cli, ["replay", str(CSV), "--rows", "1", "--cols", "2"])
    assert res.exit_code == 2 and "exactly one --strand" in res.output


@pytest.mark.broker
def test_cli_replays_a_mapped_csv(bootstrap: str, topic_name: str) -> None:
    from tests.test_replay import READING, consume

    res = CliRunner().invoke(cli, [
        "replay", str(CSV), "--strand", "C1-S1", "--heat", "H123", "--column-map", str(MAP),
        "--map", "tc_r1_c2=TC_1_2", "--rows", "1", "--cols", "2", "--bootstrap", bootstrap,
        "--topic", topic_name, "--create-topic", "--partitions", "1", "--speed", "max"])
    assert res.exit_code == 0, res.output
    assert "done: 6 of 6 readings acknowledged" in res.output
    msgs = asyncio.run(consume(bootstrap, [topic_name], 6))
    docs = [orjson.loads(m.value) for m in msgs]
    for d in docs:
        READING.validate(d)
    assert [d["seq"] for d in docs] == list(range(6))
    assert [d["ts"] for d in docs] == [T0 + k for k in range(6)]
    assert {m.key for m in msgs} == {b"C1-S1"} and {d["heat"] for d in docs} == {"H123"}
    assert docs[1]["values"]["tc_r1_c2"] is None and docs[2]["values"]["mould_level"] == -0.9
    assert list(docs[0]["values"]) == CHANNELS
