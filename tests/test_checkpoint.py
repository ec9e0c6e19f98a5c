"""Checkpoints: round trip, model id, and every way a file can be wrong -> CheckpointError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from streamer.channels import DEFECT_TYPES, ChannelLayout
from streamer.model import checkpoint as ckpt_mod
from streamer.model.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    model_id_of,
    save_checkpoint,
)
from streamer.model.lstm import SteelDefectLSTM, default_config

CHANNELS = list(ChannelLayout().channels)


def trained_like_model(seed: int = 0) -> SteelDefectLSTM:
    """The default model with fitted input stats and non-trivial weights."""
    torch.manual_seed(seed)
    model = SteelDefectLSTM(default_config())
    model.set_input_stats(torch.linspace(-2, 2, 29), torch.linspace(0.5, 3, 29))
    return model.eval()


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, SteelDefectLSTM, str]:
    model = trained_like_model()
    path = tmp_path / "model.pt"
    model_id = save_checkpoint(
        path,
        model,
        channels=CHANNELS,
        defect_types=DEFECT_TYPES,
        window=120,
        metadata={"data_seed": 7, "metrics": {"auc": {"sticker": 0.91}}, "note": "test"},
    )
    return path, model, model_id


def rewrite(path: Path, change) -> Path:
    """Load the raw dict, apply change(payload), save it under a new name."""
    payload = torch.load(path, weights_only=True)
    change(payload)
    out = path.with_name("changed.pt")
    torch.save(payload, out)
    return out


def rehash(payload: dict) -> None:
    payload["model_id"] = model_id_of(
        payload["config"],
        payload["channels"],
        payload["defect_types"],
        payload["window"],
        payload["state_dict"],
    )


def test_round_trip_gives_identical_outputs_and_id(saved) -> None:
    path, model, model_id = saved
    loaded = load_checkpoint(path, expect_channels=CHANNELS)
    assert loaded.model_id == model_id and len(model_id) == 12
    assert not loaded.model.training
    assert loaded.channels == CHANNELS
    assert loaded.defect_types == list(DEFECT_TYPES)
    assert loaded.window == 120
    assert loaded.metadata == {
        "data_seed": 7,
        "metrics": {"auc": {"sticker": 0.91}},
        "note": "test",
    }
    assert loaded.config == model.config | {"data": {"window": 120, "channels": CHANNELS}}
    torch.testing.assert_close(loaded.model.input_mean, model.input_mean, rtol=0, atol=0)
    x = torch.randn(5, 120, 29)
    lengths = torch.tensor([120, 60, 1, 119, 30])
    torch.testing.assert_close(loaded.model(x, lengths), model(x, lengths), rtol=0, atol=0)
    # saving the loaded model again gives the same id (metadata is not part of it)
    again = save_checkpoint(path.with_name("again.pt"), loaded.model, metadata={"other": 1})
    assert again == model_id


def test_model_id_depends_on_weights_and_channels(saved, tmp_path: Path) -> None:
    _, model, model_id = saved
    other = trained_like_model(seed=1)
    assert save_checkpoint(tmp_path / "b.pt", other, channels=CHANNELS) != model_id
    model.set_input_stats(torch.zeros(29), torch.ones(29))
    assert save_checkpoint(tmp_path / "c.pt", model, channels=CHANNELS) != model_id


def test_single_output_defaults_to_defect_name(tmp_path: Path) -> None:
    cfg = default_config()
    cfg["output"]["num_outputs"] = 1
    save_checkpoint(tmp_path / "m.pt", SteelDefectLSTM(cfg))
    assert load_checkpoint(tmp_path / "m.pt").defect_types == ["defect"]


def test_write_is_atomic_and_leaves_no_temp_files(saved, monkeypatch) -> None:
    path, _, model_id = saved
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, trained_like_model(seed=3))
    assert path.read_bytes() == before  # old file untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]
    assert load_checkpoint(path).model_id == model_id


# -- damaged files --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("cut", [0, 1, 100, 0.5, -10])
def test_truncated_file(saved, cut) -> None:
    path = saved[0]
    raw = path.read_bytes()
    n = int(len(raw) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(raw) + cut)
    path.write_bytes(raw[:n])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_flipped_byte_inside_the_weights(saved) -> None:
    path, model, _ = saved
    raw = bytearray(path.read_bytes())
    # find the stored head.bias bytes and flip one
    needle = model.head.bias.detach().numpy().tobytes()
    at = bytes(raw).find(needle)
    assert at > 0
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt|content hash"):
        load_checkpoint(path)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format_version": FORMAT_VERSION, "obj": Path("/etc/passwd")}, path)
    with pytest.raises(CheckpointError, match="corrupt|not a streamer"):
        load_checkpoint(path)


def test_not_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a streamer checkpoint"):
        load_checkpoint(path)


# -- consistent but wrong -------------------------------------------------------------------


def test_tampered_weights_fail_the_hash(saved) -> None:
    path = rewrite(saved[0], lambda p: p["state_dict"]["head.bias"].add_(0.01))
    with pytest.raises(CheckpointError, match="content hash"):
        load_checkpoint(path)


def test_tampered_config_or_channels_fail_the_hash(saved) -> None:
    path = rewrite(saved[0], lambda p: p["config"]["classifier"].update(activation="tanh"))
    with pytest.raises(CheckpointError, match="content hash"):
        load_checkpoint(path)
    path = rewrite(saved[0], lambda p: p["channels"].reverse())
    with pytest.raises(CheckpointError, match="content hash"):
        load_checkpoint(path)


def test_wrong_format_version(saved) -> None:
    path = rewrite(saved[0], lambda p: p.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(path)


def test_missing_part(saved) -> None:
    path = rewrite(saved[0], lambda p: p.pop("defect_types"))
    with pytest.raises(CheckpointError, match="missing defect_types"):
        load_checkpoint(path)


def test_config_that_does_not_build(saved) -> None:
    def change(p):
        p["config"]["architecture"]["hidden_size"] = 8
        rehash(p)

    with pytest.raises(CheckpointError, match=r"does not build.*architecture\.hidden_size"):
        load_checkpoint(rewrite(saved[0], change))


def test_state_dict_mismatch(saved) -> None:
    def drop(p):
        del p["state_dict"]["head.bias"]
        rehash(p)

    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(rewrite(saved[0], drop))

    def wrong_shape(p):
        p["state_dict"]["head.bias"] = torch.zeros(5)
        rehash(p)

    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_checkpoint(rewrite(saved[0], wrong_shape))


def test_input_stats_must_agree_with_buffers(saved) -> None:
    def change(p):
        p["input_stats"]["mean"][0] += 1.0

    with pytest.raises(CheckpointError, match="input_stats"):
        load_checkpoint(rewrite(saved[0], change))


def test_expected_channels(saved) -> None:
    path = saved[0]
    with pytest.raises(CheckpointError, match="missing from checkpoint.*tc_r4_c1"):
        load_checkpoint(path, expect_channels=list(ChannelLayout(tc_rows=4).channels))
    swapped = CHANNELS[:]
    swapped[5], swapped[6] = swapped[6], swapped[5]
    with pytest.raises(CheckpointError, match="order.*position 5"):
        load_checkpoint(path, expect_channels=swapped)
    with pytest.raises(CheckpointError, match="channel list differs"):
        load_checkpoint(path, expect_channels=CHANNELS[:-1])


# -- bad arguments to save ------------------------------------------------------------------


def test_save_rejects_inconsistent_arguments(tmp_path: Path) -> None:
    model = trained_like_model()
    with pytest.raises(CheckpointError, match="data.channels"):
        save_checkpoint(tmp_path / "a.pt", model, channels=CHANNELS[::-1])
    cfg = default_config()
    cfg["data"]["channels"] = None
    cfg["normalization"]["signature_features"] = False  # needs the channels
    cfg["columns"]["enabled"] = False  # so does the column encoder
    bare = SteelDefectLSTM(cfg)
    with pytest.raises(CheckpointError, match="channels: required"):
        save_checkpoint(tmp_path / "a.pt", bare)
    with pytest.raises(CheckpointError, match="29 input features"):
        save_checkpoint(tmp_path / "a.pt", bare, channels=CHANNELS[:5])
    with pytest.raises(CheckpointError, match="defect_types"):
        save_checkpoint(tmp_path / "a.pt", model, defect_types=["sticker"])
    with pytest.raises(CheckpointError, match=r"metadata\.when"):
        save_checkpoint(tmp_path / "a.pt", model, metadata={"when": object()})
    assert list(tmp_path.iterdir()) == []
