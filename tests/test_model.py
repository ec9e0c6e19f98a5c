"""SteelDefectLSTM: shapes, padding, bidirectional read-out, attention, norms, freezing, config."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from streamer.channels import DEFECT_TYPES, ChannelLayout
from streamer.model.lstm import (
    ModelConfigError,
    SteelDefectLSTM,
    default_config,
    load_model_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
VARIANTS = ("standard", "bidirectional", "deep", "default")


def variant(name: str) -> dict:
    return load_model_config(CONFIGS / f"{name}.yaml")


def small(**sections) -> dict:
    """A small config (input 6), sections overridden by keyword."""
    cfg = {
        "architecture": {
            "input_size": 6,
            "hidden_size": 32,
            "num_layers": 2,
            "bidirectional": True,
        },
        "classifier": {"hidden_sizes": [16]},
        "output": {"num_outputs": 3},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def built(cfg: dict, seed: int = 0) -> SteelDefectLSTM:
    torch.manual_seed(seed)
    return SteelDefectLSTM(cfg).eval()


def padded_batch(lengths: list[int], features: int, seed: int = 1) -> torch.Tensor:
    """[B, max(lengths), F] with large garbage in the padding, so leaks would show."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), features, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = 1e3 * torch.randn(max(lengths) - n, features, generator=g)
    return x


# -- parameter counts (spec table) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("standard", 54_081), ("bidirectional", 140_619), ("deep", 1_344_139)],
)
def test_spec_variant_parameter_counts_are_exact(name: str, expected: int) -> None:
    info = SteelDefectLSTM(variant(name)).get_model_info()
    assert info["total_parameters"] == expected
    assert info["trainable_parameters"] == expected


def test_standard_parameter_arithmetic() -> None:
    parts = SteelDefectLSTM(variant("standard")).get_model_info()["parameters_by_module"]
    assert parts["lstm"] == 18_176 + 33_280
    assert parts["classifier"] + parts["head"] == 2_625


def test_model_size_mb_matches_spec_table() -> None:
    assert SteelDefectLSTM(variant("standard")).get_model_info()["size_mb"] == pytest.approx(
        0.21, abs=0.005
    )
    assert SteelDefectLSTM(variant("deep")).get_model_info()["size_mb"] == pytest.approx(
        5.13, abs=0.01
    )


# -- shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("num_outputs", [1, 3])
def test_output_shapes(name: str, num_outputs: int) -> None:
    cfg = variant(name)
    cfg["output"]["num_outputs"] = num_outputs
    model = built(cfg)
    F = cfg["architecture"]["input_size"]
    x = torch.randn(4, 25, F)
    assert model(x).shape == (4, num_outputs)
    assert model(x, torch.tensor([25, 3, 10, 1])).shape == (4, num_outputs)
    p = model.predict_proba(x)
    assert p.shape == (4, num_outputs) and ((p > 0) & (p < 1)).all()
    assert torch.allclose(p, torch.sigmoid(model(x)))


def test_default_config_file_matches_code_and_channel_layout() -> None:
    cfg = variant("default")
    assert cfg == default_config()
    assert cfg["data"]["channels"] == list(ChannelLayout().channels)
    assert cfg["architecture"]["input_size"] == 29
    assert cfg["output"]["num_outputs"] == len(DEFECT_TYPES)
    assert cfg["attention"]["enabled"] and cfg["normalization"]["input_norm"]


def test_bad_input_shapes_are_rejected() -> None:
    model = built(small())
    with pytest.raises(ValueError, match="6"):
        model(torch.randn(2, 10, 5))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 6), torch.tensor([10, 11]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 6), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="lengths"):
        model(torch.randn(2, 10, 6), torch.tensor([10]))


# -- padding and packing --------------------------------------------------------------------


PADDING_CONFIGS = {
    "uni": small(architecture={"bidirectional": False}),
    "bi": small(),
    "bi+attention": small(attention={"enabled": True}),
    "all-norms+attention": small(
        attention={"enabled": True},
        normalization={
            "input_norm": True,
            "input_batch_norm": True,
            "layer_norm": True,
            "batch_norm": True,
        },
    ),
    "default": default_config(),
}


@pytest.mark.parametrize("name", PADDING_CONFIGS)
def test_padded_batch_equals_each_sequence_unpadded(name: str) -> None:
    model = built(copy.deepcopy(PADDING_CONFIGS[name]))
    cfg = model.config
    # make the norm layers non-trivial so a padding leak through them would show
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    if cfg["normalization"]["input_norm"]:
        F = cfg["architecture"]["input_size"]
        model.set_input_stats(torch.linspace(-1, 1, F), torch.linspace(0.5, 2, F))
    lengths = [17, 5, 1, 12]
    F = cfg["architecture"]["input_size"]
    x = padded_batch(lengths, F)
    batched = model(x, torch.tensor(lengths))
    for i, n in enumerate(lengths):
        alone = model(x[i : i + 1, :n])
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)


def test_full_lengths_take_the_unpacked_path_and_agree() -> None:
    model = built(small(attention={"enabled": True}))
    x = torch.randn(3, 9, 6)
    torch.testing.assert_close(model(x, torch.tensor([9, 9, 9])), model(x))


# -- bidirectional read-out -----------------------------------------------------------------


def test_bidirectional_summary_is_forward_last_valid_and_backward_at_t0() -> None:
    model = built(small())  # bidirectional, 2 layers, no attention: the head sees the summary
    H = model.hidden_size
    lengths = [11, 4, 7]
    x = padded_batch(lengths, 6)
    got = model.get_layer_outputs(x, torch.tensor(lengths))
    with torch.no_grad():
        for i, n in enumerate(lengths):
            out, _ = model.lstm(x[i : i + 1, :n], model.init_hidden(1))  # same nn.LSTM, unpadded
            manual = torch.cat([out[0, n - 1, :H], out[0, 0, H:]])
            naive = torch.cat([out[0, n - 1, :H], out[0, n - 1, H:]])  # backward after 1 step
            torch.testing.assert_close(got["summary"][i], manual, rtol=1e-5, atol=1e-6)
            assert not torch.allclose(got["summary"][i], naive, atol=1e-3)
            z = manual
            for layer in model.classifier:
                z = torch.relu(layer(z))
            torch.testing.assert_close(got["logits"][i], model.head(z), rtol=1e-5, atol=1e-6)


def test_bidirectional_summary_without_lengths() -> None:
    model = built(small())
    H = model.hidden_size
    x = torch.randn(2, 8, 6)
    summary = model.get_layer_outputs(x)["summary"]
    with torch.no_grad():
        out, _ = model.lstm(x)
    torch.testing.assert_close(summary, torch.cat([out[:, -1, :H], out[:, 0, H:]], dim=1))


def test_hidden_state_starts_at_zero() -> None:
    model = built(small())
    h0, c0 = model.init_hidden(5)
    assert h0.shape == (4, 5, 32) and not h0.any() and not c0.any()


# -- attention ------------------------------------------------------------------------------


def test_attention_weights_sum_to_one_and_are_zero_on_padding() -> None:
    model = built(small(attention={"enabled": True}))
    lengths = [10, 3, 1, 7]
    x = padded_batch(lengths, 6)
    w = model.get_attention_weights(x, torch.tensor(lengths))
    assert w.shape == (4, 10)
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    for i, n in enumerate(lengths):
        assert (w[i, n:] == 0).all()
        assert (w[i, :n] > 0).all()
    assert w[2, 0] == 1.0


def test_attention_pooling_is_what_the_head_sees() -> None:
    model = built(small(attention={"enabled": True}))
    x, lengths = padded_batch([8, 5], 6), torch.tensor([8, 5])
    outs = model.get_layer_outputs(x, lengths)
    pooled = (outs["attention"].unsqueeze(-1) * outs["lstm_out"]).sum(1)
    torch.testing.assert_close(outs["pooled"], pooled)
    assert not torch.allclose(outs["pooled"], outs["summary"])
    before = model(x, lengths)
    with torch.no_grad():
        # a different, sharper scorer: the weight moves to other steps
        model.attn_score.weight.copy_(10 * torch.randn(model.attn_score.weight.shape))
    after = model.get_layer_outputs(x, lengths)
    assert (after["attention"] - outs["attention"]).abs().max() > 0.1
    assert (after["logits"] - before).abs().max() > 1e-3


def test_attention_off_has_no_scorer() -> None:
    model = built(small())
    assert model.attn_proj is None and not any("attn" in k for k in model.state_dict())
    with pytest.raises(ModelConfigError, match="attention.enabled"):
        model.get_attention_weights(torch.randn(1, 4, 6))


# -- normalisation --------------------------------------------------------------------------


ALL_NORMS = {"input_norm": True, "input_batch_norm": True, "layer_norm": True, "batch_norm": True}


def test_norms_off_are_absent() -> None:
    model = built(small())
    assert model.input_bn is None and model.post_ln is None and model.post_bn is None
    keys = set(model.state_dict())
    assert not any(k.startswith(("input_", "post_")) for k in keys)
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(model.get_layer_outputs(x)["input"], x)


def test_norms_on_exist_and_normalise() -> None:
    model = built(small(normalization=ALL_NORMS))
    assert isinstance(model.input_bn, torch.nn.BatchNorm1d) and model.input_bn.num_features == 6
    assert isinstance(model.post_ln, torch.nn.LayerNorm) and isinstance(
        model.post_bn, torch.nn.BatchNorm1d
    )
    assert {"input_mean", "input_std"} <= set(model.state_dict())

    # z-score with the stored stats (eval: input batch-norm is identity with fresh running stats)
    mean, std = torch.arange(6.0), torch.full((6,), 4.0)
    model.set_input_stats(mean, std)
    x = torch.randn(3, 7, 6) * 4 + mean
    bn = model.input_bn
    expect = (x - mean) / std / torch.sqrt(torch.ones(6) + bn.eps)
    torch.testing.assert_close(model.get_layer_outputs(x)["input"], expect)

    # train mode: batch statistics over the valid steps only
    model.train()
    x = padded_batch([9, 4, 6], 6) * 5 + 3
    lengths = torch.tensor([9, 4, 6])
    outs = model.get_layer_outputs(x, lengths)
    mask = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    valid = outs["input"][mask]
    torch.testing.assert_close(valid.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.var(0, unbiased=False), torch.ones(6), atol=1e-3, rtol=0)
    assert (outs["input"][~mask] == 0).all()
    # pooled: layer norm per row, then batch norm per feature
    z = outs["head_input"]
    torch.testing.assert_close(z.mean(0), torch.zeros(z.shape[1]), atol=1e-5, rtol=0)
    ln = model.post_ln(outs["pooled"])
    torch.testing.assert_close(ln.mean(1), torch.zeros(3), atol=1e-5, rtol=0)


def test_set_input_stats_checks() -> None:
    with pytest.raises(ModelConfigError, match="normalization.input_norm"):
        built(small()).set_input_stats(torch.zeros(6), torch.ones(6))
    model = built(small(normalization={"input_norm": True}))
    with pytest.raises(ValueError, match="6"):
        model.set_input_stats(torch.zeros(5), torch.ones(5))
    with pytest.raises(ValueError, match="> 0"):
        model.set_input_stats(torch.zeros(6), torch.zeros(6))


def test_fit_input_stats_ignores_padding() -> None:
    x = padded_batch([5, 3], 6)
    mean, std = SteelDefectLSTM.fit_input_stats(x, torch.tensor([5, 3]))
    valid = torch.cat([x[0, :5], x[1, :3]])
    torch.testing.assert_close(mean, valid.mean(0))
    torch.testing.assert_close(std, valid.std(0, unbiased=False))


# -- freezing -------------------------------------------------------------------------------


def _grads(model: SteelDefectLSTM) -> tuple[bool, bool]:
    model.zero_grad(set_to_none=True)
    model.train()
    model(torch.randn(4, 6, 6)).sum().backward()
    lstm = any(p.grad is not None for p in model.lstm.parameters())
    head = any(p.grad is not None for p in model.head.parameters())
    return lstm, head


def test_freezing_stops_gradients() -> None:
    model = built(small(attention={"enabled": True}, normalization=ALL_NORMS))
    assert _grads(model) == (True, True)
    model.freeze_lstm()
    assert _grads(model) == (False, True)
    assert all(not p.requires_grad for p in model.attn_proj.parameters())
    assert all(not p.requires_grad for p in model.input_bn.parameters())
    info = model.get_model_info()
    assert info["trainable_parameters"] < info["total_parameters"]
    model.unfreeze()
    model.freeze_classifier()
    assert _grads(model) == (True, False)
    assert all(not p.requires_grad for p in model.classifier.parameters())
    model.unfreeze()
    assert _grads(model) == (True, True)
    assert (
        model.get_model_info()["trainable_parameters"] == model.get_model_info()["total_parameters"]
    )


# -- determinism ----------------------------------------------------------------------------


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    model = built(small(architecture={"dropout": 0.5}, classifier={"dropout": 0.5}))
    x = torch.randn(4, 12, 6)
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    assert not torch.equal(model(x), model(x))


# -- config validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"architecture": {"input_size": 6, "hidden_size": 16}}, "architecture.hidden_size"),
        ({"architecture": {"input_size": 6, "hidden_size": 512}}, "architecture.hidden_size"),
        ({"architecture": {"input_size": 6, "num_layers": 5}}, "architecture.num_layers"),
        ({"architecture": {"input_size": 6, "dropout": 1.5}}, "architecture.dropout"),
        ({"architecture": {"input_size": 6, "hiden_size": 64}}, "architecture.hiden_size"),
        (
            {"architecture": {"input_size": 6}, "classifier": {"activation": "gelu"}},
            "classifier.activation",
        ),
        ({"architecture": {"input_size": 6}, "classifier": {"hidden_sizes": [8, 0]}}, "classifier"),
        ({"architecture": {"input_size": 6}, "output": {"num_outputs": 0}}, "output.num_outputs"),
        (
            {"architecture": {"input_size": 6}, "normalization": {"batchnorm": True}},
            "normalization.batchnorm",
        ),
        ({"architecture": {}}, "architecture.input_size"),
        ({"architecture": {"input_size": 3}, "data": {"channels": ["a", "b"]}}, "data.channels"),
    ],
)
def test_config_errors_name_the_field(patch: dict, field: str) -> None:
    with pytest.raises(ModelConfigError, match=field.replace(".", r"\.")):
        SteelDefectLSTM(patch)


def test_input_size_can_come_from_channels() -> None:
    model = SteelDefectLSTM({"data": {"channels": ["a", "b", "c"]}})
    assert model.input_size == 3
    assert model.config["architecture"]["input_size"] == 3


def test_load_model_config_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("architecture: {input_size: 5, num_layers: 9}\n")
    with pytest.raises(ModelConfigError, match=r"bad\.yaml.*architecture\.num_layers"):
        load_model_config(bad)
    with pytest.raises(ModelConfigError, match="not found"):
        load_model_config(tmp_path / "missing.yaml")
