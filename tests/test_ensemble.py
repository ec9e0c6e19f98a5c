"""Ensembles (streamer/model/ensemble.py, checkpoint kind "ensemble", `streamer model
ensemble`): the mean (or the max) of the members' probabilities, every member checked on
load, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from streamer.cli import cli
from streamer.infer.engine import InferenceEngine
from streamer.model.checkpoint import (
    CheckpointError,
    ensemble_id_of,
    load_checkpoint,
    save_ensemble,
    update_metadata,
)
from streamer.model.ensemble import DefectEnsemble
from streamer.model.lstm import ModelConfigError
from tests.daemon_helpers import tiny_checkpoint


@pytest.fixture
def members(tmp_path: Path) -> list[Path]:
    return [tiny_checkpoint(tmp_path / f"m{s}.pt", window=30, seed=s) for s in range(3)]


def batch(n: int = 6, T: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = torch.tensor(150 + 5 * rng.standard_normal((n, T, 29)), dtype=torch.float32)
    return x, torch.tensor([T, T, 20, T, 12, T][:n])


def test_probability_is_the_mean_of_the_members(members: list[Path]) -> None:
    models = [load_checkpoint(p).model for p in members]
    ens = DefectEnsemble(models).eval()
    x, lengths = batch()
    want = torch.stack([m.predict_proba(x, lengths) for m in models]).mean(0)
    torch.testing.assert_close(ens.predict_proba(x, lengths), want, atol=1e-6, rtol=0)
    out = ens.get_layer_outputs(x, lengths)
    assert out["member_logits"].shape == (3, 6, 3)
    first = models[0].get_layer_outputs(x, lengths)
    torch.testing.assert_close(out["attention"], first["attention"])  # the first explains
    assert ens.get_model_info()["members"] == 3
    assert ens.get_model_info()["total_parameters"] == sum(
        m.get_model_info()["total_parameters"] for m in models)


def test_a_max_ensemble_takes_the_largest_member_probability(members: list[Path]) -> None:
    models = [load_checkpoint(p).model for p in members]
    x, lengths = batch()
    probs = torch.stack([m.predict_proba(x, lengths) for m in models])
    ens = DefectEnsemble(models, combine="max").eval()
    torch.testing.assert_close(ens.predict_proba(x, lengths), probs.amax(0), atol=1e-6, rtol=0)
    mean = DefectEnsemble(models).eval().predict_proba(x, lengths)
    assert (ens.predict_proba(x, lengths) - mean).abs().max() > 1e-3  # not the mean
    assert ens.get_model_info()["combine"] == "max"
    with pytest.raises(ModelConfigError, match="combine must be one of mean, max, got 'median'"):
        DefectEnsemble(models, combine="median")


def test_members_must_share_window_channels_and_outputs(tmp_path: Path,
                                                        members: list[Path]) -> None:
    a = load_checkpoint(members[0]).model
    other = load_checkpoint(tiny_checkpoint(tmp_path / "w.pt", window=40)).model
    with pytest.raises(ModelConfigError, match=r"member 1: data\.window"):
        DefectEnsemble([a, other])
    with pytest.raises(ModelConfigError, match="at least 2"):
        DefectEnsemble([a])


def test_file_round_trip_and_thresholds(tmp_path: Path, members: list[Path]) -> None:
    loaded = [load_checkpoint(p) for p in members]
    out = tmp_path / "ens.pt"
    mid = save_ensemble(out, loaded, metadata={"note": "test"})
    assert mid == ensemble_id_of([m.model_id for m in loaded])
    ens = load_checkpoint(out)
    assert ens.model_id == mid and isinstance(ens.model, DefectEnsemble)
    assert ens.window == 30 and ens.channels == loaded[0].channels
    x, lengths = batch()
    direct = DefectEnsemble([m.model for m in loaded]).eval()
    torch.testing.assert_close(ens.model(x, lengths), direct(x, lengths))
    assert update_metadata(out, {"operating_thresholds": {"alarm_by_type": {"sticker": 0.7}}}) \
        == mid
    assert load_checkpoint(out).metadata["operating_thresholds"]["alarm_by_type"] == {
        "sticker": 0.7}
    res = InferenceEngine(ens.model, device="cpu").run(x.numpy(), lengths.numpy())
    np.testing.assert_allclose(res.probs, direct.predict_proba(x, lengths).numpy(), atol=1e-6)
    assert res.step_weights.shape == (6, 30) and res.channel_weights.shape == (6, 29)


def test_max_ensemble_file_round_trip_and_its_own_id(tmp_path: Path,
                                                     members: list[Path]) -> None:
    """The combination is part of the id: the same members averaged are another model.
    Files written before ``combine`` existed hold no such key and are means."""
    loaded = [load_checkpoint(p) for p in members[:2]]
    ids = [m.model_id for m in loaded]
    mean_id = save_ensemble(tmp_path / "mean.pt", loaded)
    max_id = save_ensemble(tmp_path / "max.pt", loaded, combine="max")
    assert mean_id == ensemble_id_of(ids) and max_id == ensemble_id_of(ids, "max") != mean_id
    ens = load_checkpoint(tmp_path / "max.pt")
    assert ens.combine == "max" and ens.model.combine == "max" and ens.model_id == max_id
    assert ens.scored_ids == ids
    x, lengths = batch()
    direct = DefectEnsemble([m.model for m in loaded], combine="max").eval()
    torch.testing.assert_close(ens.model(x, lengths), direct(x, lengths))

    _resave(tmp_path / "mean.pt", lambda p: p.pop("combine"))  # as written before "max"
    old = load_checkpoint(tmp_path / "mean.pt")
    assert old.combine == "mean" and old.model_id == mean_id
    _resave(tmp_path / "max.pt", lambda p: p.__setitem__("combine", "mean"))
    with pytest.raises(CheckpointError, match="members' hash .* their combination"):
        load_checkpoint(tmp_path / "max.pt")
    _resave(tmp_path / "max.pt", lambda p: p.__setitem__("combine", "median"))
    with pytest.raises(CheckpointError, match="max.pt: ensemble combine must be one of"):
        load_checkpoint(tmp_path / "max.pt")
    with pytest.raises(CheckpointError, match="combine must be one of mean, max"):
        save_ensemble(tmp_path / "bad.pt", loaded, combine="median")
    assert not (tmp_path / "bad.pt").exists()


def _resave(path: Path, change: Callable[[dict], object]) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize("change, message", [
    (lambda p: p["members"][1]["state_dict"].__setitem__(
        "head.bias", p["members"][1]["state_dict"]["head.bias"] + 1),
     r"member 1: content hash .* != stored model id"),
    (lambda p: p["members"].reverse(),
     r"members' hash .* \(members or their combination changed, or members reordered\)"),
    (lambda p: p["members"].pop() and p["members"].pop(), "members is not a list of at least 2"),
    (lambda p: p["members"][2].pop("config"), "member 2: missing config"),
    (lambda p: p.pop("members"), "missing members"),
    (lambda p: p["members"][0]["input_stats"].__setitem__("mean", [0.0]),
     "member 0: input_stats disagree"),
])
def test_a_damaged_ensemble_is_refused_naming_the_part(tmp_path: Path, members: list[Path],
                                                       change, message: str) -> None:
    out = tmp_path / "ens.pt"
    save_ensemble(out, [load_checkpoint(p) for p in members])
    _resave(out, change)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(out)


def test_members_training_data_is_merged_into_the_metadata(tmp_path: Path) -> None:
    """So that the evaluation refuses every member's training seed and fits the baselines
    on their heats."""
    from streamer.evaluation.data import training_seeds
    from tests.daemon_helpers import CHANNELS, untrained_checkpoint

    for i, seeds in enumerate([(7,), (7, 9)]):
        untrained_checkpoint(tmp_path / f"u{i}.pt", CHANNELS, window=30, data_seeds=seeds)
    out = tmp_path / "e.pt"
    save_ensemble(out, [load_checkpoint(tmp_path / f"u{i}.pt") for i in range(2)])
    meta = load_checkpoint(out).metadata
    assert meta["data_seeds"] == [7, 9] and training_seeds(meta) == {7, 9}


def test_save_refuses_mismatched_or_nested_members(tmp_path: Path, members: list[Path]) -> None:
    a, b = (load_checkpoint(p) for p in members[:2])
    other = load_checkpoint(tiny_checkpoint(tmp_path / "w.pt", window=40))
    with pytest.raises(CheckpointError, match=r"member 1 .*: window differs"):
        save_ensemble(tmp_path / "x.pt", [a, other])
    save_ensemble(tmp_path / "e.pt", [a, b])
    with pytest.raises(CheckpointError, match="itself an ensemble"):
        save_ensemble(tmp_path / "y.pt", [a, load_checkpoint(tmp_path / "e.pt")])
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


def test_cli_builds_an_ensemble_and_info_shows_it(tmp_path: Path, members: list[Path]) -> None:
    out = tmp_path / "ens.pt"
    res = CliRunner().invoke(cli, ["model", "ensemble", "--out", str(out), *map(str, members)])
    assert res.exit_code == 0, res.output
    assert "ensemble" in res.output and out.exists()
    meta = load_checkpoint(out).metadata
    assert [m["path"] for m in meta["members"]] == [str(p) for p in members]
    assert meta["data_seeds"] == [] and meta["data"] == []  # tiny members record no data
    info = CliRunner().invoke(cli, ["model", "info", str(out)])
    assert info.exit_code == 0 and "members:     3" in info.output
    speed = CliRunner().invoke(cli, ["model", "speed", "--checkpoint", str(out), "--batch", "1,4",
                                     "--seconds", "0.1", "--threads", "1", "--device", "cpu"])
    assert speed.exit_code == 0, speed.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = CliRunner().invoke(cli, ["model", "ensemble", "--out", str(tmp_path / "e2.pt"),
                                   str(members[0]), str(bad)])
    assert res.exit_code != 0 and "bad.pt" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["model", "ensemble", "--combine", "max", "--out",
                                   str(tmp_path / "max.pt"), *map(str, members[:2])])
    assert res.exit_code == 0 and "max ensemble" in res.output, res.output
    made = load_checkpoint(tmp_path / "max.pt")
    assert made.combine == "max" and "--combine max" in made.metadata["command"]
    res = CliRunner().invoke(cli, ["model", "ensemble", "--combine", "median", "--out",
                                   str(tmp_path / "e3.pt"), *map(str, members[:2])])
    assert res.exit_code != 0 and "'median' is not one of 'mean', 'max'" in res.output


def test_the_shipped_ensemble_holds_the_shipped_model_and_its_own_thresholds() -> None:
    """`model.shipped: ensemble` finds it; its first member (whose attention explains its
    alerts) is the previous default single model, whose reports ship in docs/reports; it reads
    the same channels and window as today's single model; its thresholds were chosen for it,
    not copied."""
    import json

    from streamer.app import default_model_path
    from streamer.config import ConfigError, load_settings

    single, ens = (load_checkpoint(default_model_path(k)) for k in ("single", "ensemble"))
    assert isinstance(ens.model, DefectEnsemble) and len(ens.model.members) == 3
    assert ens.model_id == ensemble_id_of([m["model_id"] for m in ens.metadata["members"]])
    previous = Path(__file__).resolve().parents[1] / "docs" / "reports" / "315d1068299e"
    first = ens.metadata["members"][0]["model_id"]
    assert first == json.loads((previous / "thresholds.json").read_text())["model_id"]
    assert ens.channels == single.channels and ens.window == single.window
    chosen = ens.metadata["operating_thresholds"]
    assert chosen["model_id"] == ens.model_id and chosen["chosen_on"]["seed"] == 8001
    assert load_settings(None, {"model.shipped": "ensemble"}).model.shipped == "ensemble"
    with pytest.raises(ConfigError, match=r"model\.shipped"):
        load_settings(None, {"model.shipped": "triple"})
