"""CUDA paths: skipped, not failed, where there is no GPU (run by scripts/gpu-check.sh)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from streamer.infer.engine import InferenceEngine
from tests.daemon_helpers import tiny_checkpoint

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    from streamer.model.checkpoint import load_checkpoint

    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("c") / "m.pt", window=120))


def _batch(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = (150 + 5 * rng.standard_normal((n, 120, 29))).astype(np.float32)
    lengths = np.full(n, 120, dtype=np.int64)
    lengths[:5] = [60, 70, 80, 90, 100]
    return x, lengths


def test_cuda_fp32_matches_cpu(loaded) -> None:
    x, lengths = _batch()
    cpu = InferenceEngine(loaded.model, device="cpu").run(x, lengths)
    gpu = InferenceEngine(loaded.model, device="cuda").run(x, lengths)
    np.testing.assert_allclose(gpu.probs, cpu.probs, atol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_is_close(loaded, precision: str) -> None:
    x, lengths = _batch()
    ref = InferenceEngine(loaded.model, device="cuda").run(x, lengths)
    low = InferenceEngine(loaded.model, device="cuda", precision=precision).run(x, lengths)
    assert low.probs.shape == ref.probs.shape
    np.testing.assert_allclose(low.probs, ref.probs, atol=3e-2)


def test_daemon_device_cuda_is_used(loaded, tmp_path: Path) -> None:
    eng = InferenceEngine(loaded.model, device="auto")
    assert eng.device.type == "cuda"
    assert next(eng.model.parameters()).is_cuda


def test_cuda_context_model_matches_cpu() -> None:
    """A model that reads the last steps of a longer window (configs/model/slow-baseline.yaml):
    the gathers and the baseline on the GPU give the CPU's probabilities and explanations."""
    from streamer.model.lstm import SteelDefectLSTM, load_model_config

    torch.manual_seed(0)
    root = Path(__file__).resolve().parents[1]
    model = SteelDefectLSTM(load_model_config(root / "configs/model/slow-baseline.yaml")).eval()
    rng = np.random.default_rng(1)
    x = (150 + 5 * rng.standard_normal((64, 360, 29))).astype(np.float32)
    lengths = np.full(64, 360, dtype=np.int64)
    lengths[:5] = [60, 121, 150, 200, 359]
    cpu = InferenceEngine(model, device="cpu").run(x, lengths)
    gpu = InferenceEngine(model, device="cuda").run(x, lengths)
    np.testing.assert_allclose(gpu.probs, cpu.probs, atol=1e-4)
    np.testing.assert_allclose(gpu.step_weights, cpu.step_weights, atol=1e-4)
    np.testing.assert_allclose(gpu.channel_weights, cpu.channel_weights, rtol=1e-3, atol=1e-4)


def test_training_on_cuda(tmp_path: Path) -> None:
    """`streamer train --device cuda` on a tiny simulated set: one epoch, finite loss, and the
    checkpoint it writes loads on the CPU."""
    from simulators.caster import generate, load_config
    from streamer.model.checkpoint import load_checkpoint
    from streamer.training.data import Source
    from streamer.training.train import make_train_config, run

    root = Path(__file__).resolve().parents[1]
    heats = generate(load_config(root / "configs/sim/small.yaml", hours=1.5))
    source = Source("small", heats, heats.manifest["config"]["seed"], heats.manifest["config"])
    mc = {"architecture": {"hidden_size": 32, "num_layers": 1},
          "normalization": {"input_norm": True, "layer_norm": True, "relative_input": True},
          "classifier": {"hidden_sizes": [8]}, "attention": {"enabled": True, "hidden_size": 8},
          "columns": {"enabled": True, "hidden_size": 4, "steps": 60, "baseline": 30},
          "output": {"num_outputs": 3}, "data": {"window": 90}}
    cfg = make_train_config({"seed": 0, "epochs": 1, "windows_per_epoch": 640, "batch_size": 64,
                             "min_fill": 30, "val_fraction": 0.34, "device": "cuda"})
    run([source], mc, cfg, tmp_path / "m.pt", progress=False, log=lambda m: None)
    loaded = load_checkpoint(tmp_path / "m.pt", map_location="cpu")
    assert loaded.metadata["device"].startswith("cuda")
    assert np.isfinite(loaded.metadata["history"][0]["train_loss"])
