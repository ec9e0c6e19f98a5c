"""The candidate-comparison script (streamer.evaluation.peaks) on a small simulated set."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.evaluation.peaks import main, parse_thresholds

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "streamer" / "model" / "default" / "model.pt"


def test_peaks_reports_every_type_and_refuses_training_seeds(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["--seed", "8002", "--strands", "1", "--hours", "0.5", str(MODEL)]) == 0
    out = capsys.readouterr().out
    assert "8002" in out
    for typ in ("sticker", "crack", "slag"):
        assert f" {typ}: reached 0.8 in " in out
    assert main(["--seed", "11", "--strands", "1", "--hours", "0.2", str(MODEL)]) == 2
    for report_seed in ("9001", "9101", "9201"):  # held-out report seeds never pick a candidate
        assert main(["--seed", report_seed, "--strands", "1", "--hours", "0.2", str(MODEL)]) == 2
        assert "report seed" in capsys.readouterr().err


def test_peaks_per_type_thresholds_several_seeds_and_a_baseline(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each missed event is named with its seed and what it looks like, its peak under its
    type's threshold; a threshold of 0.01 misses nothing; the rules score the same heats."""
    monkeypatch.chdir(ROOT)
    args = ["--seed", "8002", "--seed", "8003", "--strands", "1", "--hours", "1.5", str(MODEL)]
    assert main([*args, "--threshold", "sticker=0.99,crack=0.01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("seed 8002+8003, thresholds sticker 0.99, crack 0.01, slag 0.8")
    line = next(x for x in out if x.startswith(" sticker: reached 0.99 in "))
    reached, n = (int(v) for v in line.rsplit(" ", 1)[1].split("/"))
    missed = [x for x in out if x.startswith("   missed: peak") and " rise " in x]
    assert n > reached and len(missed) == n - reached  # (stickers peak at 0.9-0.999 here)
    for x in missed:
        assert float(x.split("peak ")[1].split(",")[0]) < 0.99
        assert x.split("seed ")[1][:4] in ("8002", "8003") and "column" in x and "spread" in x
    crack = next(x for x in out if x.startswith(" crack: reached 0.01 in "))
    reached, n = (int(v) for v in crack.rsplit(" ", 1)[1].split("/"))
    assert reached == n > 0
    assert main([*args, "--system", "rules"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== rules baseline for ") and " sticker: reached 0.8 in " in out


def test_peaks_from_saved_scores_equal_peaks_from_scoring(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """Two seeds, so that the saved scores are split back per seed in the right order."""
    from streamer.evaluation.thresholds import main as chooser

    monkeypatch.chdir(ROOT)
    heats = ["--seed", "8002", "--seed", "8003", "--strands", "1", "--hours", "1"]
    assert chooser([str(MODEL), *heats, "--save-scores", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    args = [*heats, str(MODEL), "--threshold", "sticker=0.99,crack=0.5"]
    assert main(args) == 0
    scored = capsys.readouterr().out
    assert main([*args, "--scores", str(tmp_path / "m.npz")]) == 0
    assert capsys.readouterr().out == scored and "missed: peak" in scored
    assert main([*heats, str(MODEL), str(MODEL), "--scores", str(tmp_path / "m.npz")]) == 2
    assert "--scores: one model" in capsys.readouterr().err
    assert main([*heats[:-1], "2", str(MODEL), "--scores", str(tmp_path / "m.npz")]) == 2
    assert "hours 1.0 != this run's 2.0" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "want"), [
    ("0.7", {"sticker": 0.7, "crack": 0.7, "slag": 0.7}),
    ("sticker=0.84, slag=0.6", {"sticker": 0.84, "crack": 0.8, "slag": 0.6}),
])
def test_parse_thresholds(text: str, want: dict[str, float]) -> None:
    assert parse_thresholds(text, ["sticker", "crack", "slag"]) == want


@pytest.mark.parametrize(("text", "msg"), [
    ("1.5", r"^--threshold: must be a number in \(0, 1\), got 1\.5$"),
    ("sticker=0.5,breakout=0.5", "^--threshold breakout: not a defect type of the model"),
    ("sticker=x", r"^--threshold: expected P or TYPE=P,\.\.\., got 'sticker=x'$"),
    ("sticker", r"^--threshold: expected P or TYPE=P,\.\.\., got 'sticker'$"),
    ("crack=1", r"^--threshold crack: must be a number in \(0, 1\), got 1\.0$"),
])
def test_parse_thresholds_refuses(text: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_thresholds(text, ["sticker", "crack", "slag"])
