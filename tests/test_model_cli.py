"""``streamer model info`` / ``streamer model speed`` and the speed module (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from click.testing import CliRunner

from streamer.commands.model import model as model_cmd
from streamer.model.checkpoint import save_checkpoint
from streamer.model.lstm import SteelDefectLSTM, default_config, load_model_config
from streamer.model.speed import benchmark, format_table

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"


def test_command_module_does_not_import_torch() -> None:
    code = "import sys, streamer.model, streamer.commands.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_exports_resolve_lazily() -> None:
    import streamer.model as pkg

    for name in pkg.__all__:
        assert getattr(pkg, name) is not None


def test_info_on_config() -> None:
    result = CliRunner().invoke(model_cmd, ["info", str(CONFIGS / "standard.yaml")])
    assert result.exit_code == 0, result.output
    assert "54,081" in result.output and "unidirectional" in result.output


def test_info_on_checkpoint_as_json(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    model_id = save_checkpoint(path, SteelDefectLSTM(default_config()), metadata={"data_seed": 4})
    result = CliRunner().invoke(model_cmd, ["info", "--json", str(path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["model_id"] == model_id
    assert info["defect_types"] == ["sticker", "crack", "slag"]
    assert info["metadata"] == {"data_seed": 4}
    assert info["total_parameters"] == sum(
        p.numel() for p in SteelDefectLSTM(default_config()).parameters()
    )


def test_info_on_bad_checkpoint_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(model_cmd, ["info", str(path)])
    assert result.exit_code == 1
    assert "corrupt" in result.output and "Traceback" not in result.output


def test_speed_prints_a_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        model_cmd,
        [
            "speed",
            "--config",
            str(CONFIGS / "standard.yaml"),
            "--window",
            "16",
            "--batch",
            "1,3",
            "--seconds",
            "0.1",
            "--threads",
            str(torch.get_num_threads()),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "torch threads" in result.output and "device CPU" in result.output
    rows = [
        line.split() for line in result.output.splitlines() if line.strip().startswith(("1 ", "3 "))
    ]
    assert [r[0] for r in rows] == ["1", "3"] and all(r[1] == "16" for r in rows)


def test_speed_rejects_both_sources() -> None:
    cfg = str(CONFIGS / "standard.yaml")
    result = CliRunner().invoke(model_cmd, ["speed", "--config", cfg, "--checkpoint", cfg])
    assert result.exit_code == 2


def test_benchmark_reports_each_batch_size() -> None:
    model = SteelDefectLSTM(load_model_config(CONFIGS / "standard.yaml"))
    results = benchmark(model, window=8, batch_sizes=(1, 2), min_runs=3, min_seconds=0.0, warmup=1)
    assert [r.batch for r in results] == [1, 2]
    for r in results:
        assert r.runs >= 3 and 0 < r.median_ms <= r.p99_ms and r.windows_per_s > 0
    assert "windows/s" in format_table(results)
