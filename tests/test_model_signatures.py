"""Signature channels (streamer/model/signatures.py) against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamer.channels import ChannelLayout
from streamer.infer.engine import InferenceEngine
from streamer.model.lstm import ModelConfigError, SteelDefectLSTM, default_config
from streamer.model.signatures import SignatureFeatures, feature_names, source_channels

CHANNELS = list(ChannelLayout().channels)
TC = [i for i, c in enumerate(CHANNELS) if c.startswith("tc_")]
LEVEL, SPEED = CHANNELS.index("mould_level"), CHANNELS.index("casting_speed")


def window(T: int = 150, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((T, len(CHANNELS)))
    x[:, TC] = 150 + rng.normal(0, 3, len(TC)) + rng.normal(0, 0.5, (T, len(TC)))
    x[:, LEVEL] = rng.normal(0, 1.5, T)
    x[:, SPEED] = 1.2 + np.cumsum(rng.normal(0, 0.002, T))
    return x


def reference(x: np.ndarray) -> np.ndarray:
    """The docstring's table, one reading at a time."""
    T = len(x)

    def mean_last(a: np.ndarray, t: int, k: int) -> np.ndarray:
        return a[max(0, t - k + 1) : t + 1].mean(0)

    sm = np.stack([mean_last(x[:, TC], t, 3) for t in range(T)])
    rate = np.stack([(sm[t] - sm[max(0, t - 5)]) / 5 for t in range(T)])
    common = rate.mean(1, keepdims=True)
    drop = np.stack([mean_last(sm, t, 65) - sm[t] for t in range(T)])
    drop = drop - drop.mean(1, keepdims=True)
    grid = sm.reshape(T, 3, 8)
    inv = (grid[:, 1:] - grid[:, :-1]).reshape(T, -1)
    inv = inv - np.stack([mean_last(inv, t, 65) for t in range(T)])
    lv, sp = x[:, LEVEL], x[:, SPEED]
    sw60 = np.array([np.ptp(lv[max(0, t - 59) : t + 1]) for t in range(T)])
    sw30 = np.array([np.ptp(lv[max(0, t - 29) : t + 1]) for t in range(T)])
    dsp = np.array([sp[t] - sp[max(0, t - 60)] for t in range(T)])
    out = np.concatenate([(rate - common) / 0.3, drop / 8, inv / 1.0, sw60[:, None] / 20,
                          sw30[:, None] / 20, dsp[:, None] / 0.2, common / 0.3], axis=1)
    return np.clip(out, -10, 10)


def signature_config() -> dict:
    """The default before the column encoder, with signature channels (as measured)."""
    cfg = default_config()
    cfg["normalization"]["signature_features"] = True
    cfg["columns"]["enabled"] = False
    return cfg


def features(x: np.ndarray) -> np.ndarray:
    f = SignatureFeatures(CHANNELS)
    return f(torch.tensor(x, dtype=torch.float32)[None])[0].double().numpy()


def test_every_channel_equals_the_reference() -> None:
    x = window()
    got, want = features(x), reference(x)
    assert got.shape == want.shape == (len(x), len(feature_names(CHANNELS)))
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert len(source_channels(CHANNELS)) == got.shape[1]


def test_a_sticker_rise_shows_on_its_own_thermocouple() -> None:
    x = window(seed=1)
    tc = CHANNELS.index("tc_r1_c4")
    x[100:, tc] += np.arange(50) * 1.0  # 1 degC/s from t = 100
    f = features(x)
    rise = f[:, feature_names(CHANNELS).index("rise:tc_r1_c4")]
    assert rise[:95].max() < 1.5  # noise stays under the rule's 0.3 degC/s
    assert rise[110:].min() > 2.5  # ~ (1 - 1/24) / 0.3
    others = [i for i, n in enumerate(feature_names(CHANNELS))
              if n.startswith("rise:") and n != "rise:tc_r1_c4"]
    assert np.abs(f[110:, others]).max() < 1.5
    inv = f[:, feature_names(CHANNELS).index("inversion:tc_r2_c4")]
    assert inv[140:].max() < -5  # the upper TC got hotter than the one below


def test_level_swing_speed_change_and_clipping() -> None:
    x = window(seed=2)
    x[80:90, LEVEL] += np.linspace(0, 25, 10)
    x[90:, LEVEL] += 25
    x[60, CHANNELS.index("tc_r3_c8")] += 500  # a spike
    f = features(x)
    names = feature_names(CHANNELS)
    assert f[95, names.index("level_swing_60s")] == pytest.approx(1.25, abs=0.2)
    assert f[70, names.index("level_swing_60s")] < 0.6
    assert np.abs(f).max() <= 10
    x2 = window(seed=2)
    x2[50:, SPEED] += 0.3
    assert features(x2)[80, names.index("speed_change_60s")] == pytest.approx(1.5, abs=0.2)


def test_causal_and_packing_equals_unpadded() -> None:
    x = window(seed=3)
    a = features(x)
    y = x.copy()
    y[100:] += 40
    np.testing.assert_allclose(features(y)[:100], a[:100], atol=1e-4)
    torch.manual_seed(0)
    m = SteelDefectLSTM(signature_config()).eval()
    xt = torch.tensor(x[:120], dtype=torch.float32)[None]
    padded = torch.cat([xt[:, :70], torch.zeros(1, 50, len(CHANNELS))], 1)
    torch.testing.assert_close(m(padded, torch.tensor([70])), m(xt[:, :70]), atol=1e-5, rtol=0)


def test_config_needs_a_complete_grid() -> None:
    cfg = signature_config()
    cfg["data"]["channels"] = [c for c in CHANNELS if c != "tc_r2_c5"]
    cfg["architecture"]["input_size"] = None
    with pytest.raises(ModelConfigError, match="signature_features.*tc_r2_c5"):
        SteelDefectLSTM(cfg)
    cfg = signature_config()
    cfg["data"]["channels"] = None
    with pytest.raises(ModelConfigError, match="signature_features"):
        SteelDefectLSTM(cfg)


def test_model_inputs_and_explanations_fold_to_reading_channels() -> None:
    torch.manual_seed(0)
    m = SteelDefectLSTM(signature_config())
    assert m.lstm.input_size == 2 * 29 + 68
    assert sum(p.numel() for p in m.parameters()) == 86_851
    engine = InferenceEngine(m, device="cpu")
    x = np.stack([window(120, s) for s in range(3)]).astype(np.float32)
    x[1, :, CHANNELS.index("tc_r1_c2")] += np.linspace(0, 60, 120)
    res = engine.run(x, np.array([120, 120, 90]))
    assert res.channel_weights.shape == (3, 29)
    assert res.channel_weights[1].argmax() == CHANNELS.index("tc_r1_c2")
    # the default (relative input only) folds the same way
    plain = InferenceEngine(SteelDefectLSTM(default_config()), device="cpu")
    assert plain.model.lstm.input_size == 58
    assert plain.run(x, np.array([120, 120, 90])).channel_weights.shape == (3, 29)
