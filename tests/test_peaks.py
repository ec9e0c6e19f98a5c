"""The candidate-comparison script (streamer.evaluation.peaks) on a small simulated set."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.evaluation.peaks import main

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
