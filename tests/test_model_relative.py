"""The relative input (x - x_first, scaled) of the default model."""

from __future__ import annotations

import pytest
import torch

from streamer.model.lstm import ModelConfigError, SteelDefectLSTM, default_config


def model(relative: bool = True) -> SteelDefectLSTM:
    torch.manual_seed(0)
    cfg = default_config()
    cfg["normalization"]["relative_input"] = relative
    cfg["normalization"]["signature_features"] = False  # tested in test_model_signatures.py
    return SteelDefectLSTM(cfg).eval()


def test_relative_channels_are_change_since_window_start() -> None:
    m = model()
    std = torch.linspace(1, 3, 29)
    m.set_relative_stats(std)
    x = torch.randn(2, 10, 29) * 5 + 150
    z = m.get_layer_outputs(x)["input"]
    assert z.shape == (2, 10, 58)
    torch.testing.assert_close(z[..., 29:], (x - x[:, :1]) / std)
    assert m.lstm.input_size == 58


def test_packing_still_equals_unpadded_and_shift_invariance_of_the_relative_half() -> None:
    m = model()
    x = torch.randn(1, 12, 29) + 150
    padded = torch.cat([x[:, :7], torch.zeros(1, 5, 29)], 1)
    torch.testing.assert_close(m(padded, torch.tensor([7])), m(x[:, :7]), atol=1e-5, rtol=0)
    rel = m.get_layer_outputs(x)["input"][..., 29:]
    rel_shifted = m.get_layer_outputs(x + 10)["input"][..., 29:]
    torch.testing.assert_close(rel, rel_shifted)


def test_relative_stats_validation() -> None:
    with pytest.raises(ModelConfigError):
        model(relative=False).set_relative_stats(torch.ones(29))
    with pytest.raises(ValueError):
        model().set_relative_stats(torch.zeros(29))
