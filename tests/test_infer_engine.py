"""The CPU inference engine flushes denormal floats and still gives the model's outputs."""

from __future__ import annotations

import numpy as np
import torch

from streamer.infer.engine import InferenceEngine
from streamer.model.lstm import SteelDefectLSTM, default_config


def test_cpu_engine_flushes_denormals_and_matches_the_model() -> None:
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39])
    assert (tiny * 1.0).item() != 0.0  # a denormal survives arithmetic by default
    torch.manual_seed(0)
    model = SteelDefectLSTM(default_config()).eval()
    # far outside any training range: every channel at 150 saturates the LSTM gates, whose
    # exp() then underflows to denormals (the slow path the flush avoids)
    x = (150 + np.random.default_rng(0).standard_normal((4, 120, 29))).astype(np.float32)
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(x))).numpy()
    engine = InferenceEngine(model, device="cpu")  # conftest restores denormals afterwards
    assert (tiny * 1.0).item() == 0.0
    got = engine.run(x, np.full(4, 120)).probs
    np.testing.assert_allclose(got, expected, atol=1e-6)
