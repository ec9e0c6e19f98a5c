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
