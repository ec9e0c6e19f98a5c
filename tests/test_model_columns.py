"""Column encoder (streamer/model/columns.py): inputs against a numpy reference, column
symmetry, packing, freezing, config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamer.channels import ChannelLayout
from streamer.model.columns import ColumnEncoder
from streamer.model.lstm import ModelConfigError, SteelDefectLSTM, default_config

CHANNELS = list(ChannelLayout().channels)
TC = [i for i, c in enumerate(CHANNELS) if c.startswith("tc_")]


def window(T: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((T, len(CHANNELS)))
    x[:, TC] = 150 + rng.normal(0, 3, len(TC)) + rng.normal(0, 0.5, (T, len(TC)))
    x[:, CHANNELS.index("casting_speed")] = 1.2
    return x


def column_config(hidden: int = 8) -> dict:
    cfg = default_config()
    cfg["columns"] = {"enabled": True, "hidden_size": hidden}
    return cfg


def tc(r: int, c: int) -> int:
    return CHANNELS.index(f"tc_r{r}_c{c}")


def grid(x: np.ndarray) -> np.ndarray:
    """[T, F] readings -> [T, C, R] thermocouples."""
    g = np.stack([[x[:, tc(r, c)] for r in (1, 2, 3)] for c in range(1, 9)], 2)  # [R, T, C]
    return g.transpose(1, 2, 0)


def reference(x: np.ndarray) -> np.ndarray:
    """The docstring's table for every column, one reading at a time: [T, C, 11]."""
    T = len(x)
    g = grid(x)
    rel = g - g[0]
    row_rel = np.broadcast_to(rel.mean(1, keepdims=True), rel.shape)
    step = g[..., 1:] - g[..., :-1]
    inv = step - step[0]
    rate = np.stack([(rel[t] - rel[t - 5]) / 5 / 0.3 if t >= 5 else 0 * rel[t]
                     for t in range(T)])
    out = np.concatenate([rel / 5, row_rel / 5, inv / 5, rate], -1)
    return np.clip(out, -10, 10)


def test_inputs_equal_the_reference_and_show_a_rise_in_its_column_only() -> None:
    x = window()
    x[40:, tc(2, 5)] += np.minimum(np.arange(80) * 0.6, 12.0)  # a sticker-like rise, row 2
    x[90:, tc(1, 3)] += 200.0  # a wild spike: clipped
    enc = ColumnEncoder(CHANNELS, 8)
    f = enc.features(torch.tensor(x, dtype=torch.float32)[None])[0].double().numpy()
    np.testing.assert_allclose(f, reference(x), atol=2e-4)
    assert f.shape == (120, 8, 11)
    rel = f[100, :, :3] - f[100, :, 3:6]  # each TC's change against its row's
    assert rel[4, 1] > 1.5 and abs(rel[[0, 1, 3, 5, 6, 7], 1]).max() < 1  # column 5, row 2
    assert f[45, 4, 9] > 1.5  # row 2 of column 5: 0.6 degC/s = 2 units (rates at 8, 9, 10)
    assert np.abs(f).max() <= 10 and f[100, 2, 0] == 10


def test_rows_shorter_than_the_rate_look_back_do_not_depend_on_the_padding() -> None:
    enc = ColumnEncoder(CHANNELS, 8)
    x = torch.tensor(window(), dtype=torch.float32)[None]
    for n in (1, 3, 5, 6):
        torch.testing.assert_close(enc.features(x[:, :n]), enc.features(x)[:, :n])


def test_summary_is_the_same_whichever_column_a_defect_is_in() -> None:
    torch.manual_seed(0)
    enc = ColumnEncoder(CHANNELS, 8).eval()
    x = window(seed=1)
    x[40:, tc(1, 2)] += np.minimum(np.arange(80) * 0.5, 10.0)
    rolled = x.copy()
    for r in (1, 2, 3):
        for c in range(1, 9):
            rolled[:, tc(r, c)] = x[:, tc(r, (c + 2) % 8 + 1)]
    a, b = (enc(torch.tensor(v, dtype=torch.float32)[None]) for v in (x, rolled))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert a.shape == (1, 16)


def test_model_with_columns_packs_exactly_and_reports_the_summary() -> None:
    torch.manual_seed(0)
    m = SteelDefectLSTM(column_config()).eval()
    x = torch.tensor(np.stack([window(seed=s) for s in range(3)]), dtype=torch.float32)
    lengths = torch.tensor([120, 70, 61])
    full = m(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(m(x[i:i + 1, :n]), full[i:i + 1], atol=1e-5, rtol=0)
    out = m.get_layer_outputs(x, lengths)
    assert out["columns"].shape == (3, 16)
    assert out["head_input"].shape == (3, 64 + 16)
    # the head reads the column summary: changing only it changes the logits
    x2 = x.clone()
    x2[0, 60:, tc(1, 4)] += 15.0
    assert not torch.allclose(m(x2, lengths)[0], full[0])
    assert m.get_model_info()["parameters_by_module"]["columns"] == 4 * 8 * (11 + 8 + 2)


def test_steps_reads_the_last_readings_of_each_row() -> None:
    torch.manual_seed(0)
    enc = ColumnEncoder(CHANNELS, 8, steps=60).eval()
    whole = ColumnEncoder(CHANNELS, 8).eval()
    whole.load_state_dict(enc.state_dict())
    x = torch.tensor(np.stack([window(seed=s) for s in range(3)]), dtype=torch.float32)
    lengths = torch.tensor([120, 90, 41])
    got = enc(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        last = x[i:i + 1, max(0, n - 60):n]
        torch.testing.assert_close(got[i:i + 1], whole(last), atol=1e-6, rtol=0)
    torch.testing.assert_close(enc(x), whole(x[:, -60:]), atol=1e-6, rtol=0)
    cfg = column_config()
    cfg["columns"]["steps"] = 60
    m = SteelDefectLSTM(cfg).eval()
    full = m(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(m(x[i:i + 1, :n]), full[i:i + 1], atol=1e-5, rtol=0)


def test_freeze_lstm_freezes_the_column_lstm() -> None:
    m = SteelDefectLSTM(column_config())
    m.freeze_lstm()
    assert not any(p.requires_grad for p in m.columns.parameters())
    m.unfreeze()
    m.freeze_classifier()
    assert all(p.requires_grad for p in m.columns.parameters())


def test_config_needs_a_complete_grid_and_names_the_field() -> None:
    cfg = column_config()
    cfg["data"]["channels"] = [c for c in CHANNELS if c != "tc_r3_c8"]
    cfg["architecture"]["input_size"] = None
    with pytest.raises(ModelConfigError, match=r"columns\.enabled.*tc_r3_c8"):
        SteelDefectLSTM(cfg)
    cfg = column_config()
    cfg["columns"]["hidden_size"] = 2
    with pytest.raises(ModelConfigError, match=r"columns\.hidden_size"):
        SteelDefectLSTM(cfg)
    cfg = column_config()
    cfg["columns"]["steps"] = -1
    with pytest.raises(ModelConfigError, match=r"columns\.steps"):
        SteelDefectLSTM(cfg)
    cfg = default_config()
    del cfg["columns"]
    assert SteelDefectLSTM(cfg).columns is None  # off unless a config asks for it
    assert SteelDefectLSTM(default_config()).columns is not None  # the shipped default has it


def peak_reference(x: np.ndarray) -> np.ndarray:
    """The docstring's peak inputs, one reading at a time: [T, C, 5]."""
    g = grid(x)
    rel = g - g[0]
    held = np.stack([rel[max(0, t - 4):t + 1].min(0) for t in range(len(x))])
    peak = np.maximum.accumulate(held, axis=0)
    return np.clip(np.concatenate([peak / 5, (peak[..., 1:] - peak[..., :-1]) / 5], -1), -10, 10)


def test_peak_inputs_equal_the_reference_and_tell_a_growing_rise_from_a_fading_one() -> None:
    x = window()
    # column 2: a sticker-like rise, 6 degC in row 1, then 9 degC in row 2 twelve s later
    x[30:, tc(1, 2)] += np.minimum(np.arange(90) * 0.6, 6.0)
    x[42:, tc(2, 2)] += np.minimum(np.arange(78) * 0.6, 9.0)
    # column 6: a weak propagating near-sticker, 5 degC then 2.5 degC (fading)
    x[30:, tc(1, 6)] += np.minimum(np.arange(90) * 0.5, 5.0)
    x[45:, tc(2, 6)] += np.minimum(np.arange(75) * 0.5, 2.5)
    x[60:63, tc(3, 4)] += 60.0  # a 3 s sensor spike: no peak
    enc = ColumnEncoder(CHANNELS, 8, peaks=True)
    assert enc.in_features == 16
    f = enc.features(torch.tensor(x, dtype=torch.float32)[None])[0].double().numpy()
    np.testing.assert_allclose(f[..., :11], reference(x), atol=2e-4)  # the first 11 unchanged
    np.testing.assert_allclose(f[..., 11:], peak_reference(x), atol=2e-4)
    peak, step = f[..., 11:14] * 5, f[..., 14:] * 5  # degC
    assert peak[119, 1, 0] == pytest.approx(6.0, abs=1.5) and peak[119, 1, 1] > 7.5
    assert step[119, 1, 0] > 1.5 and step[119, 5, 0] < -1.5  # grows down / fades down
    assert peak[119, 3, 2] < 2.0  # the spike did not set a peak
    assert (np.diff(peak, axis=0) >= -1e-6).all()  # a peak never falls within a window


def test_peak_inputs_do_not_depend_on_the_padding_and_pack_exactly() -> None:
    enc = ColumnEncoder(CHANNELS, 8, peaks=True)
    x = torch.tensor(window(), dtype=torch.float32)[None]
    for n in (1, 3, 5, 6, 40):
        torch.testing.assert_close(enc.features(x[:, :n]), enc.features(x)[:, :n])
    torch.manual_seed(0)
    cfg = column_config()
    cfg["columns"]["peaks"] = True
    m = SteelDefectLSTM(cfg).eval()
    xs = torch.tensor(np.stack([window(seed=s) for s in range(3)]), dtype=torch.float32)
    lengths = torch.tensor([120, 70, 9])
    full = m(xs, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(m(xs[i:i + 1, :n]), full[i:i + 1], atol=1e-5, rtol=0)
    assert m.get_model_info()["parameters_by_module"]["columns"] == 4 * 8 * (16 + 8 + 2)


def test_peak_inputs_are_off_unless_asked_for() -> None:
    assert default_config()["columns"]["peaks"] is False
    assert SteelDefectLSTM(default_config()).columns.in_features == 11
    cfg = column_config()
    cfg["columns"]["peaks"] = "sometimes"
    with pytest.raises(ModelConfigError, match=r"columns\.peaks"):
        SteelDefectLSTM(cfg)
