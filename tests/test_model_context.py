"""A window longer than what the LSTMs read: architecture.steps, columns.steps and the column
encoder's slow baseline (columns.baseline). Against a numpy reference, with packing, and
through the daemon's inference engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamer.infer.engine import InferenceEngine
from streamer.model.columns import ColumnEncoder
from streamer.model.lstm import ModelConfigError, SteelDefectLSTM, default_config, read_steps
from streamer.model.steps import last_steps, to_window_positions
from tests.test_model_columns import CHANNELS, tc
from tests.test_model_columns import window as column_window


def window(T: int = 360, seed: int = 0) -> np.ndarray:
    return column_window(T, seed)


def context_config(window_len: int = 360, steps: int = 120, baseline: int = 60) -> dict:
    cfg = default_config()
    cfg["data"]["window"] = window_len
    cfg["architecture"]["steps"] = steps
    cfg["columns"].update(steps=steps, baseline=baseline)
    return cfg


def offsets(x: np.ndarray) -> np.ndarray:
    """[T, C, R]: each TC minus its row's mean over the columns."""
    g = np.stack([[x[:, tc(r, c)] for r in (1, 2, 3)] for c in range(1, 9)], 2)  # [R, T, C]
    g = g.transpose(1, 2, 0)
    return g - g.mean(1, keepdims=True)


def test_baseline_is_the_mean_offset_over_the_readings_before_the_read_part() -> None:
    enc = ColumnEncoder(CHANNELS, 8, steps=120, baseline=60)
    xs = np.stack([window(seed=s) for s in range(4)])
    lengths = [360, 300, 150, 100]  # 60, 60, 30 and no readings before the last 120
    base = enc.offset_baseline(torch.tensor(xs, dtype=torch.float32),
                               torch.tensor(lengths)).double().numpy()
    for i, n in enumerate(lengths):
        dev = offsets(xs[i, :n])
        before = max(0, n - 120)
        want = dev[:min(before, 60)].mean(0) if before else dev[0]
        np.testing.assert_allclose(base[i], want, atol=1e-4)


def test_a_recovering_dip_reads_as_a_return_and_a_sticker_as_a_rise() -> None:
    """The case the baseline is for: inside the last 120 s both are a one-column rise."""
    enc = ColumnEncoder(CHANNELS, 8, steps=120, baseline=60)
    dip = window(seed=1)
    # a near-crack: tc_r2_c4 falls 10 degC over 50 s from t=180, recovers at t=330-350
    prof = np.interp(np.arange(360), [0, 180, 230, 330, 350, 359], [0, 0, -10, -10, 0, 0])
    dip[:, tc(2, 4)] += prof
    stick = window(seed=1)
    stick[:, tc(2, 4)] += np.interp(np.arange(360), [0, 330, 350, 359], [0, 0, 10, 10])
    f = {}
    for name, x in (("dip", dip), ("sticker", stick)):
        xt = torch.tensor(x, dtype=torch.float32)[None]
        part, _, _ = last_steps(xt, None, 120)
        f[name] = enc.features(part, enc.offset_baseline(xt, None))[0].numpy()  # [120, C, 14]
    col, row = 3, 1  # column 4, row 2
    def rel_rise(g: np.ndarray) -> float:  # the TC's change since t0 against its row's
        return float(g[-1, col, row] - g[-1, col, 3 + row])

    assert rel_rise(f["dip"]) == pytest.approx(rel_rise(f["sticker"]), abs=0.4)  # alike
    lvl = 11 + row
    assert abs(f["dip"][-1, col, lvl]) < 0.4  # back to its usual offset
    assert f["sticker"][-1, col, lvl] > 1.6  # 10 degC above it (2 units)
    assert f["dip"][0, col, lvl] < -1.6  # the read part starts 10 degC below it


def test_baseline_input_ignores_a_constant_offset_of_a_thermocouple() -> None:
    """Training adds a per-TC constant per window (augment.tc_sd): the new input must not
    see it, so it cannot undo the augmentation's level-blindness."""
    enc = ColumnEncoder(CHANNELS, 8, steps=120, baseline=60)
    x = torch.tensor(window(seed=2), dtype=torch.float32)[None]
    y = x.clone()
    y[..., tc(1, 6)] += 7.0
    fx, fy = (enc.features(last_steps(v, None, 120)[0], enc.offset_baseline(v, None))
              for v in (x, y))
    torch.testing.assert_close(fx[..., 11:], fy[..., 11:], atol=1e-4, rtol=0)


def test_model_reads_the_last_steps_and_packs_exactly() -> None:
    torch.manual_seed(0)
    m = SteelDefectLSTM(context_config()).eval()
    assert read_steps(m.config) == 120 and m.columns.in_features == 14
    x = torch.tensor(np.stack([window(seed=s) for s in range(4)]), dtype=torch.float32)
    lengths = torch.tensor([360, 250, 130, 61])
    full = m(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(m(x[i:i + 1, :n]), full[i:i + 1], atol=1e-5, rtol=0)
    # readings between the baseline and the read part are read by nothing
    y = x.clone()
    y[:, 100:230] += 20.0
    torch.testing.assert_close(m(y), m(x), atol=1e-6, rtol=0)
    # the baseline readings reach the logits only through the column encoder
    z = x.clone()
    z[:, :60, tc(3, 2)] += 8.0
    assert not torch.allclose(m(z), m(x))
    out = m.get_layer_outputs(z)
    torch.testing.assert_close(out["lstm_out"], m.get_layer_outputs(x)["lstm_out"])


def test_attention_weights_sit_on_the_read_readings_of_the_window() -> None:
    torch.manual_seed(0)
    m = SteelDefectLSTM(context_config()).eval()
    x = torch.tensor(np.stack([window(seed=s) for s in range(3)]), dtype=torch.float32)
    lengths = torch.tensor([360, 200, 90])
    w = m.get_attention_weights(x, lengths)
    assert w.shape == (3, 360)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    for i, n in enumerate(lengths.tolist()):
        lo = max(0, n - 120)
        assert (w[i, :lo] == 0).all() and (w[i, n:] == 0).all() and (w[i, lo:n] > 0).all()


def test_engine_explains_with_window_positions() -> None:
    torch.manual_seed(0)
    m = SteelDefectLSTM(context_config()).eval()
    engine = InferenceEngine(m, device="cpu")
    x = np.stack([window(seed=s) for s in range(2)]).astype(np.float32)
    x[0, 300:, tc(2, 5)] += np.linspace(0, 15, 60)  # something to explain at the end
    res = engine.run(x, np.array([360, 150]))
    assert res.step_weights.shape == (2, 360)
    assert res.step_weights[0, :240].sum() == 0 and res.step_weights[1, :30].sum() == 0
    np.testing.assert_allclose(res.step_weights.sum(1), 1.0, atol=1e-5)
    assert res.channel_weights.shape == (2, len(CHANNELS))
    probs = torch.sigmoid(m(torch.from_numpy(x), torch.tensor([360, 150]))).detach().numpy()
    np.testing.assert_allclose(res.probs, probs, atol=1e-6)


def test_to_window_positions_is_identity_without_a_cut() -> None:
    w = torch.rand(2, 5)
    assert to_window_positions(w, None, 5) is w
    _, lengths, start = last_steps(torch.zeros(2, 8, 1), torch.tensor([8, 3]), 5)
    assert start.tolist() == [3, 0] and lengths.tolist() == [5, 3]
    placed = to_window_positions(torch.ones(2, 5), start, 8)
    assert placed.tolist() == [[0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]]


@pytest.mark.parametrize("change, field", [
    ({"columns": {"baseline": 60, "steps": 0}}, r"columns\.baseline needs columns\.steps"),
    ({"columns": {"baseline": 300, "steps": 120}}, r"columns\.steps \+ columns\.baseline"),
    ({"architecture": {"steps": 400}}, r"architecture\.steps \(400\) must be <= data\.window"),
    ({"columns": {"steps": 361}}, r"columns\.steps \(361\) must be <= data\.window"),
    ({"columns": {"baseline": -1}}, r"columns\.baseline"),
])
def test_config_errors_name_the_field(change: dict, field: str) -> None:
    cfg = context_config()
    for section, values in change.items():
        cfg[section].update(values)
    with pytest.raises(ModelConfigError, match=field):
        SteelDefectLSTM(cfg)
