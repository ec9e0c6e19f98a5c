"""Saved development scores: the file, its checks, ensembles judged from their members' scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamer.evaluation.dev_scores import (
    ScoresError,
    combined,
    ensemble_scores,
    load_scores,
    save_scores,
)
from tests.daemon_helpers import untrained_checkpoint

SMALL = str(Path(__file__).resolve().parents[1] / "configs" / "sim" / "small.yaml")
TYPES = ["sticker", "crack", "slag"]
HEATS = {"seeds": [8001], "strands_per_caster": 1, "hours": 1.0, "sim_config": SMALL,
         "min_fill": 60}


def _scores(seed: int, lengths: tuple[int, ...] = (5, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((n, 3), dtype=np.float32) for n in lengths]


def test_scores_file_round_trip_and_mean(tmp_path: Path) -> None:
    a, b = _scores(1), _scores(2)
    for name, s, mid in (("a", a, "aaaa"), ("b", b, "bbbb")):
        save_scores(tmp_path / f"{name}.npz", s, ["c1/s1", "c2/s1"], model_id=mid,
                    defect_types=TYPES, heats=HEATS)
    meta, back = load_scores(tmp_path / "a.npz")
    assert meta["model_id"] == "aaaa" and meta["strands"] == ["c1/s1", "c2/s1"]
    assert all(np.array_equal(x, y) for x, y in zip(a, back))
    got = ensemble_scores([tmp_path / "b.npz", tmp_path / "a.npz"], member_ids=["aaaa", "bbbb"],
                          defect_types=TYPES, heats=HEATS, strands=["c1/s1", "c2/s1"],
                          windows=[5, 3])
    for g, x, y in zip(got, a, b):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, (x.astype(np.float64) + y) / 2, rtol=0, atol=1e-7)
    assert [x.shape for x in combined([a])] == [(5, 3), (3, 3)]
    got = ensemble_scores([tmp_path / "a.npz", tmp_path / "b.npz"], member_ids=["aaaa", "bbbb"],
                          defect_types=TYPES, heats=HEATS, strands=["c1/s1", "c2/s1"],
                          windows=[5, 3], combine="max")
    for g, x, y in zip(got, a, b):
        assert g.dtype == np.float32 and np.array_equal(g, np.maximum(x, y))
    with pytest.raises(ValueError, match="combine must be mean or max, got 'median'"):
        combined([a, b], "median")


def test_scores_that_are_not_the_models_or_not_these_heats_are_refused(tmp_path: Path) -> None:
    a = _scores(1)
    save_scores(tmp_path / "a.npz", a, ["x", "y"], model_id="aaaa", defect_types=TYPES,
                heats=HEATS)
    good = {"member_ids": ["aaaa"], "defect_types": TYPES, "heats": HEATS,
            "strands": ["x", "y"], "windows": [5, 3]}
    f = [tmp_path / "a.npz"]

    def refused(files: list[Path], match: str, **over: object) -> None:
        with pytest.raises(ScoresError, match=match):
            ensemble_scores(files, **{**good, **over})  # type: ignore[arg-type]

    refused(f, "scores of model aaaa, not of bbbb", member_ids=["bbbb"])
    refused(f, "1 --scores file", member_ids=["aaaa", "bbbb"])
    refused(f + f, "model aaaa again", member_ids=["aaaa", "bbbb"])
    refused(f, "hours 1.0 != this run's 2.0", heats={**HEATS, "hours": 2.0})
    refused(f, "seeds", heats={**HEATS, "seeds": [8002]})
    refused(f, "defect types", defect_types=["sticker", "crack"])
    refused(f, "strands are not this run's", strands=["x", "z"])
    refused(f, r"y: scores of shape \(3, 3\), expected \(4, 3\)", windows=[5, 4])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    refused([tmp_path / "junk.npz"], "not a readable scores file")
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "x"})))
    refused([tmp_path / "other.npz"], "not a scores file")
    np.savez(tmp_path / "partial.npz", meta=np.array(json.dumps(
        {"format": "streamer-dev-scores/1", "model_id": "aaaa", "strands": []})))
    refused([tmp_path / "partial.npz"],
            r"not a scores file \(no defect_types, seeds, strands_per_caster, hours, sim_config, "
            r"min_fill\)")
    refused([tmp_path / "missing.npz"], "no such file")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three untrained small models (configs/sim/small.yaml's channels), other weights each."""
    from streamer.channels import ChannelLayout

    d = tmp_path_factory.mktemp("runs")
    paths = [d / f"{n}.pt" for n in "abc"]
    for i, p in enumerate(paths):
        untrained_checkpoint(p, list(ChannelLayout(3, 6).channels), seed=i)
    return paths


def _chooser(model: Path, *extra: str) -> list[str]:
    return [str(model), "--seed", "8001", "--sim-config", SMALL, "--strands", "1", "--hours",
            "1", "--grid", "0.3:0.7:0.05", "--threads", "1", *extra]


def test_ensemble_scores_are_the_mean_or_max_of_its_members_scores(runs: list[Path],
                                                                   tmp_path: Path) -> None:
    """What lets the chooser judge an ensemble from its members' saved scores."""
    from simulators.caster import generate
    from simulators.caster.config import load_config
    from streamer.evaluation.data import load_series
    from streamer.evaluation.report import model_scores
    from streamer.model.checkpoint import load_checkpoint, save_ensemble

    members = [load_checkpoint(p) for p in runs[:2]]
    save_ensemble(tmp_path / "ens.pt", members)
    save_ensemble(tmp_path / "max.pt", members, combine="max")
    ens = load_checkpoint(tmp_path / "ens.pt")
    assert ens.scored_ids == [m.model_id for m in members] and members[0].scored_ids == [
        members[0].model_id]
    heats = generate(load_config(SMALL), seed=8001, strands_per_caster=1, hours=0.3)
    series, _ = load_series(heats, ens.channels, ens.defect_types)
    direct = model_scores(ens, series, 60, progress=False)
    each = [model_scores(m, series, 60, progress=False) for m in members]
    for d, m, o in zip(direct, combined(each), each[0]):
        np.testing.assert_allclose(d, m, rtol=0, atol=2e-6)
        assert np.abs(d - o).max() > 1e-3  # the second member moves it
    largest = model_scores(load_checkpoint(tmp_path / "max.pt"), series, 60, progress=False)
    for d, m, o in zip(largest, combined(each, "max"), direct):
        np.testing.assert_allclose(d, m, rtol=0, atol=2e-6)
        assert np.abs(d - o).max() > 1e-3  # not the mean


def test_chooser_reads_saved_scores_for_the_model_and_for_an_ensemble(
        runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.thresholds import main
    from streamer.model.checkpoint import load_checkpoint, save_ensemble

    a, b = runs[0], runs[1]
    for p in (a, b):
        assert main(_chooser(p, "--save-scores", str(tmp_path / f"{p.stem}.npz"), "--json",
                             str(tmp_path / f"{p.stem}.json"))) == 0
    capsys.readouterr()
    assert main(_chooser(a, "--scores", str(tmp_path / "a.npz"), "--json",
                         str(tmp_path / "a2.json"))) == 0
    scored, read = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "a2.json"))
    assert read["per_type"] == scored["per_type"]
    assert read["alarm_by_type"] == scored["alarm_by_type"]

    save_ensemble(tmp_path / "ens.pt", [load_checkpoint(a), load_checkpoint(b)])
    ens = str(tmp_path / "ens.pt")
    assert main(_chooser(Path(ens), "--json", str(tmp_path / "e1.json"))) == 0
    assert main(_chooser(Path(ens), "--scores", str(tmp_path / "b.npz"), "--scores",
                         str(tmp_path / "a.npz"), "--json", str(tmp_path / "e2.json"))) == 0
    direct, mean = (json.loads((tmp_path / n).read_text()) for n in ("e1.json", "e2.json"))
    assert mean["alarm_by_type"] == direct["alarm_by_type"]
    assert mean["per_type"] == direct["per_type"]
    # an ensemble's own saved scores serve it as well
    assert main(_chooser(Path(ens), "--save-scores", str(tmp_path / "ens.npz"))) == 0
    assert main(_chooser(Path(ens), "--scores", str(tmp_path / "ens.npz"), "--json",
                         str(tmp_path / "e3.json"))) == 0
    assert json.loads((tmp_path / "e3.json").read_text())["per_type"] == direct["per_type"]
    capsys.readouterr()

    assert main(_chooser(Path(ens), "--scores", str(tmp_path / "a.npz"))) == 2
    assert "1 --scores file(s) for a model of 2 member(s)" in capsys.readouterr().err
    assert main(_chooser(runs[2], "--scores", str(tmp_path / "a.npz"))) == 2
    assert "scores of model" in capsys.readouterr().err
    other = _chooser(a, "--scores", str(tmp_path / "a.npz"))
    other[other.index("--hours") + 1] = "0.5"
    assert main(other) == 2
    assert "hours 1.0 != this run's 0.5" in capsys.readouterr().err
    assert main(_chooser(a, "--system", "rules", "--json", "x.json", "--scores", "a.npz")) == 2
    assert "--scores and --save-scores are for --system model" in capsys.readouterr().err
    assert main(_chooser(a, "--scores", "a.npz", "--save-scores", "b.npz")) == 2
    assert "give one of them" in capsys.readouterr().err


def test_ensemble_choice_judges_every_ensemble_as_the_chooser_would(
        runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.ensemble_choice import main
    from streamer.evaluation.thresholds import main as chooser

    args = []
    for p in runs:
        assert chooser(_chooser(p, "--save-scores", str(tmp_path / f"{p.stem}.npz"))) == 0
        args += ["--run", str(p), str(tmp_path / f"{p.stem}.npz")]
    capsys.readouterr()
    out_json = tmp_path / "all.json"
    assert main([*args, "--sizes", "2,3", "--grid", "0.3:0.7:0.05",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    rec = json.loads(out_json.read_text())
    assert sorted(r["label"] for r in rec["ensembles"]) == ["A+B", "A+B+C", "A+C", "B+C"]
    assert all(r["passes"] for r in rec["ensembles"])  # no gate
    key = [(sum(r["false_alarms"].values()), *(-r["caught"][t] for t in TYPES),
            len(r["members"])) for r in rec["ensembles"]]
    assert key == sorted(key) and rec["chosen"] == rec["ensembles"][0]["members"]
    assert f"chosen: {rec['ensembles'][0]['label']}" in out

    # (that its rows are the chooser's numbers: the test below, on a trained model)
    assert main([*args, "--sizes", "2", "--grid", "0.3:0.7:0.05", "--combine", "max"]) == 0
    assert "== 3 max ensembles of 3 runs" in capsys.readouterr().out

    # a gate nobody meets
    assert main([*args, "--grid", "0.3:0.7:0.05", "--need", "sticker=999"]) == 0
    assert "chosen: none passes the gate" in capsys.readouterr().out


def test_ensemble_choice_rows_are_the_choosers_numbers_for_mean_and_max(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped model and an untrained one of its channels: ensemble_choice's row for
    the pair is what the chooser finds for that ensemble built and scored directly, for
    either combination, and the two combinations differ. A trained member makes events
    caught and thresholds other than the reference possible, so the comparison can fail."""
    from streamer.app import default_model_path
    from streamer.evaluation.ensemble_choice import main
    from streamer.evaluation.thresholds import main as chooser
    from streamer.model.checkpoint import load_checkpoint, save_ensemble
    from tests.daemon_helpers import CHANNELS

    trained = default_model_path("single")
    other = tmp_path / "u.pt"
    untrained_checkpoint(other, CHANNELS, seed=3)

    def dev(model: Path, *extra: str) -> list[str]:
        return [str(model), "--seed", "8001", "--strands", "1", "--hours", "1.5", "--grid",
                "0.5:0.98:0.04", "--threads", "1", "--total-budget", "100", *extra]

    for p, name in ((trained, "a"), (other, "b")):
        assert chooser(dev(p, "--save-scores", str(tmp_path / f"{name}.npz"))) == 0
    members = [load_checkpoint(trained), load_checkpoint(other)]
    rows = {}
    for combine in ("mean", "max"):
        capsys.readouterr()
        assert main(["--run", str(trained), str(tmp_path / "a.npz"), "--run", str(other),
                     str(tmp_path / "b.npz"), "--grid", "0.5:0.98:0.04", "--total-budget",
                     "100", "--combine", combine, "--json", str(tmp_path / "c.json")]) == 0
        (row,) = json.loads((tmp_path / "c.json").read_text())["ensembles"]
        ens = tmp_path / f"{combine}.pt"
        save_ensemble(ens, members, combine=combine)
        assert chooser(dev(ens, "--json", str(tmp_path / "d.json"))) == 0
        direct = json.loads((tmp_path / "d.json").read_text())
        assert direct["alarm_by_type"] == row["thresholds"]
        for t in TYPES:
            assert direct["per_type"][t]["chosen"]["caught"] == row["caught"][t]
            assert direct["per_type"][t]["chosen"]["false_alarms"] == row["false_alarms"][t]
        assert sum(row["caught"].values()) > 0
        rows[combine] = row
    assert (rows["mean"]["thresholds"], rows["mean"]["caught"], rows["mean"]["false_alarms"]) \
        != (rows["max"]["thresholds"], rows["max"]["caught"], rows["max"]["false_alarms"])


def test_ensemble_choice_refuses_mismatched_runs(runs: list[Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from streamer.evaluation.ensemble_choice import main
    from streamer.evaluation.thresholds import main as chooser

    a, b = runs[0], runs[1]
    assert chooser(_chooser(a, "--save-scores", str(tmp_path / "a.npz"))) == 0
    assert chooser(_chooser(b, "--save-scores", str(tmp_path / "b.npz"), "--min-fill",
                            "50")) == 0
    capsys.readouterr()
    assert main(["--run", str(a), str(tmp_path / "a.npz"), "--run", str(b),
                 str(tmp_path / "a.npz")]) == 2
    assert "not of" in capsys.readouterr().err
    assert main(["--run", str(a), str(tmp_path / "a.npz"), "--run", str(b),
                 str(tmp_path / "b.npz")]) == 2
    assert "min_fill 50 != " in capsys.readouterr().err
    assert main(["--run", str(a), str(tmp_path / "a.npz")]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert main(["--run", str(a), str(tmp_path / "a.npz"), "--run", str(b),
                 str(tmp_path / "a.npz"), "--sizes", "3"]) == 2
    assert "--sizes: each size must be 1..2" in capsys.readouterr().err
    assert main(["--run", str(a), str(tmp_path / "a.npz"), "--run", str(a),
                 str(tmp_path / "a.npz")]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert chooser(_chooser(b, "--save-scores", str(tmp_path / "b.npz"))) == 0
    ok = ["--run", str(a), str(tmp_path / "a.npz"), "--run", str(b), str(tmp_path / "b.npz")]
    assert main([*ok, "--need", "sticker=1.5"]) == 2
    assert "--need sticker: expected a whole number >= 0, got 1.5" in capsys.readouterr().err
    assert main([*ok, "--need", "stikcer=1"]) == 2
    assert "--need stikcer: not a defect type" in capsys.readouterr().err
