"""Training: labels, heat split, sampling, input stats, determinism, CLI errors, checkpoint.

Everything runs on a tiny simulated set (configs/sim/small.yaml, 2 strands x 1.5 h) with a
tiny model (1 x 32 LSTM, 60-step windows), so the whole file takes well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from simulators.caster import generate, load_config
from simulators.heatfile import EVENT_SCHEMA, HeatSet, write_heats
from streamer.channels import DEFECT_TYPES
from streamer.model.checkpoint import load_checkpoint
from streamer.model.lstm import SteelDefectLSTM
from streamer.training.data import (
    HARD_NEGATIVE,
    IGNORE,
    IGNORED,
    LOOK_ALIKE,
    NEAR_EVENT,
    Augment,
    Source,
    TrainSegment,
    WindowSampler,
    categorise,
    category_names,
    evident_step,
    input_stats_from_segments,
    mark_unevident,
    prepare_segments,
    relative_stats_from_segments,
    severity_weights,
    split_train_segments,
)
from streamer.training.train import (
    TrainConfigError,
    fit_platt,
    fold_calibration,
    load_train_config,
    make_train_config,
    score_segments,
    train,
    window_metrics,
)
from streamer.training.windows import (
    Segment,
    label_steps,
    load_segments,
    split_by_heat,
    window_index,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "configs" / "sim" / "small.yaml"
WINDOW, MIN_FILL = 60, 30


def tiny_model_config() -> dict:
    return {"architecture": {"hidden_size": 32, "num_layers": 1},
            "normalization": {"input_norm": True, "layer_norm": True, "relative_input": True},
            "classifier": {"hidden_sizes": [8]},
            "attention": {"enabled": True, "hidden_size": 8},
            "output": {"num_outputs": 3}, "data": {"window": WINDOW}}


def tiny_train_config(**kw):
    base = {"seed": 0, "epochs": 2, "windows_per_epoch": 640, "batch_size": 64,
            "min_fill": MIN_FILL, "val_fraction": 0.34, "val_stride": 4, "threads": 1,
            "device": "cpu", "lr": 3e-3}
    return make_train_config({**base, **kw})


@pytest.fixture(scope="module")
def small_heats() -> HeatSet:
    return generate(load_config(SMALL, hours=1.5))


@pytest.fixture(scope="module")
def small_source(small_heats: HeatSet) -> Source:
    return Source("small", small_heats, small_heats.manifest["config"]["seed"],
                  small_heats.manifest["config"])


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory, small_heats: HeatSet) -> Path:
    return write_heats(tmp_path_factory.mktemp("heats") / "small", small_heats)


@pytest.fixture(scope="module")
def trained(small_source: Source):
    # uncalibrated, so that its loss is comparable with the untrained model's below
    return train([small_source], tiny_model_config(), tiny_train_config(calibrate=False),
                 progress=False, log=lambda m: None)


# --- labels ---------------------------------------------------------------------------------

def test_label_rule_edges() -> None:
    ts = np.arange(100.0, 121.0)  # 1 Hz
    y = label_steps(ts, {"sticker": [(105.0, 110.0)], "slag": [(114.5, 116.2)]})
    assert y.shape == (21, 3)
    on = {float(t) for t, v in zip(ts, y[:, 0]) if v}
    assert on == {105.0, 106.0, 107.0, 108.0, 109.0, 110.0}  # exactly onset and critical in
    assert y[ts == 104.0, 0] == 0 and y[ts == 111.0, 0] == 0  # just before / just after out
    assert {float(t) for t, v in zip(ts, y[:, 2]) if v} == {115.0, 116.0}  # between readings
    assert y[:, 1].sum() == 0


def test_labels_from_hand_made_events(small_heats: HeatSet) -> None:
    ts, _, _ = small_heats.strand_arrays("C1-S1")
    t0 = float(ts[500])
    rows = [("E1", "C1-S1", "h", "sticker", t0, t0 + 10.0),
            ("E2", "C1-S2", "h", "crack", t0, t0 + 30.0),
            ("E3", "C1-S1", "h", "slag", t0 + 40.5, t0 + 42.0)]
    table = pa.Table.from_pylist(
        [dict(zip(["event_id", "strand", "heat", "type", "onset_ts", "critical_ts"], r))
         | {"row": 1, "col": 1, "severity": 1.0, "detail": "{}"} for r in rows],
        schema=EVENT_SCHEMA)
    hs = HeatSet(small_heats.manifest, small_heats.readings, table)
    seg = {s.strand: s for s in load_segments(hs)}
    s1, s2 = seg["C1-S1"], seg["C1-S2"]
    i = int(np.searchsorted(s1.ts, t0))
    assert s1.ts[i] == t0
    assert s1.labels[i - 1].tolist() == [0, 0, 0]
    assert s1.labels[i].tolist() == [1, 0, 0]          # exactly onset
    assert s1.labels[i + 10].tolist() == [1, 0, 0]     # exactly critical
    assert s1.labels[i + 11].tolist() == [0, 0, 0]     # one reading after critical
    assert s1.labels[:, 1].sum() == 0                  # the crack is on the other strand
    assert s2.labels[:, 1].sum() == 31 and s2.labels[:, 0].sum() == 0
    # onset between two readings: the first reading after it; critical exactly on one
    assert np.flatnonzero(s1.labels[:, 2]).tolist() == [i + 41, i + 42]


def _series(n: int = 300) -> tuple[np.ndarray, np.ndarray, list[str]]:
    channels = ["casting_speed", "mould_level", "tc_r1_c1", "tc_r1_c2", "tc_r2_c1", "tc_r2_c2"]
    rng = np.random.default_rng(0)
    v = np.zeros((n, len(channels)))
    v[:, 0] = 1.2
    v[:, 1] = rng.normal(0, 1.0, n)
    v[:, 2:] = 150 + rng.normal(0, 0.3, (n, 4))
    return np.arange(n, dtype=float), v, channels


def test_evident_step_per_type() -> None:
    ts, v, ch = _series()
    v[100:, 3] += np.minimum(np.arange(200) * 0.5, 15)  # tc_r1_c2: +0.5 degC/s from t = 100
    sticker = {"type": "sticker", "row": 1, "col": 2}
    at = evident_step(v, ch, sticker, 100, 200)
    assert 110 <= at <= 114  # 6 degC at 0.5 degC/s (3-reading mean): 12-13 s after onset
    assert evident_step(v, ch, sticker, 100, 105) == 105  # never within the event
    v[150:, 1] += 25 * np.sin(np.arange(150) * 2 * np.pi / 20)  # level swing of 50 mm p-p
    at = evident_step(v, ch, {"type": "slag", "row": 0, "col": 0}, 150, 250)
    assert 151 <= at <= 160 and np.ptp(v[max(0, at - 59):at + 1, 1]) > 20
    assert np.ptp(v[max(0, at - 60):at, 1]) <= 20 + 1e-9 or at == 150
    _, w, _ = _series()
    w[200:, 4] -= np.minimum(np.arange(100) * 2.0, 12)  # tc_r2_c1 falls 2 degC/s to -12
    at = evident_step(w, ch, {"type": "crack", "row": 2, "col": 1}, 200, 260)
    assert 203 <= at <= 207


def test_unevident_steps_are_ignored_and_never_drawn() -> None:
    ts, v, ch = _series()
    v[100:, 3] += np.minimum(np.arange(200) * 0.5, 15)
    labels = label_steps(ts, {"sticker": [(100.0, 150.0)]})
    seg = TrainSegment("C1-S1", np.array(["h"] * len(ts), dtype=object), ts,
                       v.astype(np.float32), labels)
    ev = [{"type": "sticker", "row": 1, "col": 2, "onset_ts": 100.0, "critical_ts": 150.0}]
    marked = mark_unevident(seg, ev, ch, ("sticker", "crack", "slag"))
    first = int(np.flatnonzero(marked[:, 0] == 1)[0])
    assert 110 <= first <= 114
    assert (marked[100:first, 0] == IGNORE).all() and (marked[first:151, 0] == 1).all()
    assert marked[:100].sum() == 0 and marked[151:].sum() == 0
    seg.labels = marked
    cat = categorise(seg, [(100.0, 150.0)], [], near_before_s=60, near_after_s=60,
                     hard_after_s=60)
    names = category_names(("sticker", "crack", "slag"))
    assert {names[c] for c in cat[100:first]} == {IGNORED}
    assert {names[c] for c in cat[first:151]} == {"sticker"}
    sampler = WindowSampler([TrainSegment(seg.strand, seg.heats, ts, seg.values, marked,
                                          category=cat)],
                            ("sticker", "crack", "slag"), 60, 30, {"sticker": 1.0,
                                                                  "background": 1.0}, 0.0)
    assert sampler.shares[IGNORED] == 0 and sampler.p[
        np.isin(sampler.ends, np.arange(100, first))].sum() == 0


def test_ignored_windows_leave_metrics_and_loss_alone() -> None:
    y = np.array([[0, 0, 0], [1, 0, 0], [IGNORE, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    z = np.array([[-3, -3, -3], [2, -3, -3], [-9, -3, -3], [-3, 2, -3], [-3, -3, 2]],
                 np.float32)
    m = window_metrics(y, z, ("sticker", "crack", "slag"))
    assert m["sticker"]["positives"] == 1 and m["sticker"]["roc_auc"] == 1.0
    assert m["any"]["roc_auc"] == 1.0 and m["any"]["positives"] == 3
    z2 = z.copy()
    z2[2, 0] = 9.0  # whatever the model says on an ignored window
    assert window_metrics(y, z2, ("sticker", "crack", "slag")) == m


# --- split -----------------------------------------------------------------------------------

def test_split_by_heat_keeps_heats_and_windows_apart(small_source: Source) -> None:
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    tr, va = split_train_segments(segs, 0.34, seed=3)
    tr_heats = {h for s in tr for h in s.heats}
    va_heats = {h for s in va for h in s.heats}
    assert tr_heats and va_heats and not tr_heats & va_heats
    assert tr_heats | va_heats == set(np.unique(small_source.heats.readings.column("heat")))
    # every reading is in exactly one part, and the category follows its reading
    assert sum(len(s) for s in tr + va) == sum(len(s) for s in segs)
    full = {s.strand: s for s in segs}
    for part in tr + va:
        lo = int(np.searchsorted(full[part.strand].ts, part.ts[0]))
        assert np.array_equal(full[part.strand].category[lo:lo + len(part)], part.category)
    # a window never crosses the split: all readings of every window come from one side
    for side, heats in ((tr, tr_heats), (va, va_heats)):
        idx = window_index(side, MIN_FILL, stride=7)
        for si, end in idx:
            hs = side[si].heats[max(0, end - WINDOW + 1):end + 1]
            assert set(hs) <= heats
    # the segments of one strand on the two sides never overlap in time
    for s in va:
        for t in (x for x in tr if x.strand == s.strand):
            assert t.ts[-1] < s.ts[0] or s.ts[-1] < t.ts[0]


def test_split_is_by_heat_for_every_seed(small_heats: HeatSet) -> None:
    segs = load_segments(small_heats)
    seen = set()
    for seed in range(5):
        tr, va = split_by_heat(segs, 0.34, seed)
        va_heats = frozenset(h for s in va for h in s.heats)
        assert not va_heats & {h for s in tr for h in s.heats}
        seen.add(va_heats)
    assert len(seen) > 1  # the seed matters


# --- sampling --------------------------------------------------------------------------------

def test_sampler_shares_lengths_and_labels(small_source: Source) -> None:
    channels = small_source.heats.channels
    segs, _ = prepare_segments([small_source], channels)
    fr = {"sticker": 0.3, "crack": 0.2, "slag": 0.1, "near_event": 0.1, "hard_negative": 0.1,
          "background": 0.2}
    sm = WindowSampler(segs, DEFECT_TYPES, WINDOW, MIN_FILL, fr, short_fraction=0.5)
    rng = np.random.default_rng(0)
    lengths, ys = [], []
    for x, y in sm.epoch(6400, 64, rng):
        assert x.shape[0] == y.shape[0] and x.shape[2] == len(channels)
        assert MIN_FILL <= x.shape[1] <= WINDOW
        lengths.append(x.shape[1])
        ys.append(y)
    y = np.concatenate(ys)
    assert abs(y[:, 0].mean() - 0.3) < 0.04 and abs(y[:, 1].mean() - 0.2) < 0.04
    assert sum(n < WINDOW for n in lengths) > 20 and sum(n == WINDOW for n in lengths) > 20
    # a drawn window is the readings before its end step, with that step's label
    si, ends = np.array([0, 1]), np.array([500, 900])
    x, y = sm.gather(si, ends, 40)
    np.testing.assert_array_equal(x[1], segs[1].values[861:901])
    np.testing.assert_array_equal(y[0], segs[0].labels[500])


def test_severity_weights_draw_faint_events_more_often() -> None:
    """Inside a weighted type's events a window is drawn in proportion to severity ** -p;
    the category's share and every other category are untouched."""
    ts = np.arange(1000, dtype=np.float64)
    spans = [(200.0, 249.0), (600.0, 649.0)]  # two stickers of 50 windows each
    labels = label_steps(ts, {"sticker": spans, "crack": [(800.0, 849.0)]})
    seg = Segment("C1-S1", np.array(["h"] * 1000, dtype=object), ts,
                  np.zeros((1000, 2), np.float32), labels)
    events = [{"type": "sticker", "strand": "C1-S1", "onset_ts": 200.0, "critical_ts": 249.0,
               "severity": 6.0},
              {"type": "sticker", "strand": "C1-S1", "onset_ts": 600.0, "critical_ts": 649.0,
               "severity": 12.0},
              {"type": "crack", "strand": "C1-S1", "onset_ts": 800.0, "critical_ts": 849.0,
               "severity": 10.0}]
    w = severity_weights(seg, events, {"sticker": 2.0})
    assert w is not None
    np.testing.assert_allclose(w[200:250], 6.0 ** -2)
    np.testing.assert_allclose(w[600:650], 12.0 ** -2)
    assert (w[:200] == 1).all() and (w[800:850] == 1).all()  # cracks are not weighted
    assert severity_weights(seg, events, {"sticker": 0.0}) is None
    with pytest.raises(ValueError, match="severity_power: event sticker on C1-S1"):
        severity_weights(seg, [{**events[0], "severity": 0.0}], {"sticker": 1.0})

    cat = categorise(seg, [*spans, (800.0, 849.0)], [], near_before_s=10, near_after_s=10,
                     hard_after_s=10)
    fr = {"sticker": 0.4, "crack": 0.2, "background": 0.4}
    kw = {"category": cat}
    plain = WindowSampler([TrainSegment(seg.strand, seg.heats, ts, seg.values, labels, **kw)],
                          DEFECT_TYPES, 60, 60, fr, 0.0)
    heavy = WindowSampler([TrainSegment(seg.strand, seg.heats, ts, seg.values, labels, **kw,
                                        weight=w)], DEFECT_TYPES, 60, 60, fr, 0.0)

    def mass(sm: WindowSampler, lo: int, hi: int) -> float:
        return float(sm.p[(sm.ends >= lo) & (sm.ends < hi)].sum())

    assert mass(plain, 200, 250) == pytest.approx(0.2)  # half the sticker share each
    assert mass(heavy, 200, 250) == pytest.approx(0.4 * 4 / 5)  # 6 degC: 4x a 12 degC one
    assert mass(heavy, 600, 650) == pytest.approx(0.4 / 5)
    for lo, hi in ((0, 200), (250, 600), (650, 1000)):  # everything else as before
        assert mass(heavy, lo, hi) == pytest.approx(mass(plain, lo, hi))
    # all weights equal: the very same draw probabilities as no weights
    flat = WindowSampler([TrainSegment(seg.strand, seg.heats, ts, seg.values, labels, **kw,
                                       weight=np.ones(1000))], DEFECT_TYPES, 60, 60, fr, 0.0)
    np.testing.assert_array_equal(flat.p, plain.p)


def test_severity_weights_follow_the_split(small_source: Source) -> None:
    """prepare_segments weights the configured type's events; the heat split keeps each
    reading's weight; an unknown type is an error."""
    channels = small_source.heats.channels
    segs, _ = prepare_segments([small_source], channels, severity_power={"sticker": 1.0})
    stickers = [e for e in small_source.heats.events.to_pylist() if e["type"] == "sticker"]
    assert stickers
    for e in stickers:
        seg = next(s for s in segs if s.strand == e["strand"])
        m = (seg.ts >= e["onset_ts"]) & (seg.ts <= e["critical_ts"])
        np.testing.assert_allclose(seg.weight[m], 1.0 / e["severity"])
    tr, va = split_train_segments(segs, 0.34, seed=3)
    for part in (*tr, *va):
        full = next(s for s in segs if s.strand == part.strand)
        lo = int(np.searchsorted(full.ts, part.ts[0]))
        np.testing.assert_array_equal(part.weight, full.weight[lo:lo + len(part)])
    plain, _ = prepare_segments([small_source], channels)
    assert all(s.weight is None for s in plain)
    with pytest.raises(ValueError, match="severity_power: unknown defect types"):
        prepare_segments([small_source], channels, severity_power={"breakout": 1.0})


def test_look_alike_steps_are_their_own_category() -> None:
    """During a look-alike or up to hard_after_s after it; an event's surroundings and the
    event itself still win, and other nuisances stay hard negatives."""
    ts = np.arange(1000, dtype=np.float64)
    labels = label_steps(ts, {"sticker": [(800.0, 830.0)]})
    seg = Segment("C1-S1", np.array(["h"] * 1000, dtype=object), ts,
                  np.zeros((1000, 2), np.float32), labels)
    names = category_names(DEFECT_TYPES)
    kw = {"near_before_s": 60, "near_after_s": 60, "hard_after_s": 20}
    nuis = [(100.0, 150.0), (300.0, 350.0), (700.0, 760.0)]
    cat = [names[c] for c in categorise(seg, [(800.0, 830.0)], nuis, **kw,
                                        look_alikes=[(300.0, 350.0), (700.0, 760.0)])]
    assert set(cat[100:171]) == {HARD_NEGATIVE} and cat[171] == "background"
    assert set(cat[300:371]) == {LOOK_ALIKE} and cat[299] == cat[371] == "background"
    assert set(cat[700:740]) == {LOOK_ALIKE} and set(cat[740:800]) == {NEAR_EVENT}
    assert set(cat[800:831]) == {"sticker"}
    without = [names[c] for c in categorise(seg, [(800.0, 830.0)], nuis, **kw)]
    assert LOOK_ALIKE not in without and set(without[300:371]) == {HARD_NEGATIVE}


def test_look_alike_kinds_pick_the_nuisances(small_source: Source) -> None:
    """Only hard-negative steps move, and only those during (or 120 s after) a near-crack."""
    channels = small_source.heats.channels
    plain, _ = prepare_segments([small_source], channels)
    split, _ = prepare_segments([small_source], channels, look_alike_kinds=["near_crack"])
    names = category_names(DEFECT_TYPES)
    la, hard = names.index(LOOK_ALIKE), names.index(HARD_NEGATIVE)
    assert not any((s.category == la).any() for s in plain)
    nuis = small_source.heats.nuisances.to_pylist()
    moved_total = 0
    for p, s in zip(plain, split, strict=True):
        moved = s.category != p.category
        assert (p.category[moved] == hard).all() and (s.category[moved] == la).all()
        inside = np.zeros(len(s), dtype=bool)
        for r in nuis:
            if r["strand"] == s.strand and r["type"] == "near_crack":
                inside |= (s.ts >= r["onset_ts"]) & (s.ts <= r["critical_ts"] + 120.0)
        assert (inside[moved]).all()
        assert not (inside & (p.category == hard) & ~moved).any()  # every such step moved
        moved_total += int(moved.sum())
    assert moved_total > 100


def test_look_alike_share_zero_draws_as_before(small_source: Source) -> None:
    """A recipe without the category (share 0) keeps its look-alikes in hard_negative, so it
    draws exactly the windows it drew before the category existed; a share > 0 draws more."""
    cfg0 = tiny_train_config(epochs=1)
    assert cfg0.sampling.look_alike == 0 and cfg0.sampling.split_kinds() == []
    cfg1 = tiny_train_config(epochs=1, sampling={"look_alike": 0.3})
    assert cfg1.sampling.split_kinds() == ["near_sticker", "near_crack"]
    channels = small_source.heats.channels
    before, _ = prepare_segments([small_source], channels)
    after, _ = prepare_segments([small_source], channels,
                                look_alike_kinds=cfg0.sampling.split_kinds())
    a = WindowSampler(before, DEFECT_TYPES, WINDOW, MIN_FILL, cfg0.sampling.fractions(), 0.2)
    b = WindowSampler(after, DEFECT_TYPES, WINDOW, MIN_FILL, cfg0.sampling.fractions(), 0.2)
    np.testing.assert_array_equal(a.p, b.p)
    split, _ = prepare_segments([small_source], channels,
                                look_alike_kinds=cfg1.sampling.split_kinds())
    c = WindowSampler(split, DEFECT_TYPES, WINDOW, MIN_FILL, cfg1.sampling.fractions(), 0.2)
    la = np.concatenate([s.category[MIN_FILL - 1:] for s in split]) == \
        category_names(DEFECT_TYPES).index(LOOK_ALIKE)
    assert c.shares[LOOK_ALIKE] > 0.2 and c.p[la].sum() == pytest.approx(c.shares[LOOK_ALIKE])
    assert c.p[la].sum() > 2 * a.p[la].sum()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "train").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_train_configs_load(path: Path) -> None:
    cfg = load_train_config(path)
    assert cfg.epochs >= 1 and sum(cfg.sampling.fractions().values()) == pytest.approx(1.0)


def test_look_alike_kinds_absent_from_the_data_name_the_field(small_source: Source) -> None:
    cfg = tiny_train_config(epochs=1, sampling={"look_alike": 0.2,
                                                "look_alike_kinds": ["near_crak"]})
    with pytest.raises(TrainConfigError, match=r"sampling\.look_alike_kinds: .*near_crak.*"
                                               r"near_crack"):
        train([small_source], tiny_model_config(), cfg, progress=False, log=lambda m: None)


def test_a_window_early_in_its_segment_does_not_cut_its_batch(small_source: Source) -> None:
    """It is held back and batched at the end of the epoch with the other such windows, by
    length; every other batch keeps its full length, and no drawn window is lost."""
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    sm = WindowSampler(segs, DEFECT_TYPES, WINDOW, MIN_FILL, {"background": 1.0},
                       short_fraction=0.0)
    shapes = [x.shape[:2] for x, _ in sm.epoch(6400, 64, np.random.default_rng(1))]
    assert sum(b for b, _ in shapes) == 6400
    full = [b for b, n in shapes if n == WINDOW]
    short = [(b, n) for b, n in shapes if n < WINDOW]
    assert short and all(MIN_FILL <= n for _, n in short)
    assert shapes[-len(short):] == short  # the held-back windows come last
    assert sum(full) > 0.9 * 6400 and len(full) >= 6400 // 64 - 1
    # the old rule cut every batch holding such a window: here most batches would have been
    rng = np.random.default_rng(1)
    draws = rng.choice(len(sm.p), size=6400, replace=True, p=sm.p)
    cut = sum((sm.ends[draws[b:b + 64]] + 1 < WINDOW).any() for b in range(0, 6400, 64))
    assert cut > len(short)


def test_min_fill_equal_to_the_window_draws_only_full_windows(small_source: Source) -> None:
    """No length lies in [min_fill, window) then: short batches are skipped, not an error
    (numpy's 'low >= high' before)."""
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    sm = WindowSampler(segs, DEFECT_TYPES, WINDOW, WINDOW, {"background": 1.0},
                       short_fraction=0.5)
    shapes = [x.shape for x, _ in sm.epoch(640, 64, np.random.default_rng(0))]
    assert sum(s[0] for s in shapes) == 640 and all(s[1] == WINDOW for s in shapes)


def test_augment_shifts_and_mirrors(small_source: Source) -> None:
    channels = small_source.heats.channels  # 3 x 6 thermocouples
    aug = Augment(channels, tc_sd=0.0, tc_common_sd=0.0, process_sd={}, mirror=1.0)
    x = np.random.default_rng(0).standard_normal((2, 5, len(channels))).astype(np.float32)
    y = x.copy()
    aug(y, np.random.default_rng(0))
    ix = {c: i for i, c in enumerate(channels)}
    np.testing.assert_array_equal(y[..., ix["tc_r2_c1"]], x[..., ix["tc_r2_c6"]])
    np.testing.assert_array_equal(y[..., ix["tc_r3_c4"]], x[..., ix["tc_r3_c3"]])
    np.testing.assert_array_equal(y[..., ix["casting_speed"]], x[..., ix["casting_speed"]])
    aug = Augment(channels, tc_sd=2.0, tc_common_sd=0.0, process_sd={"superheat": 1.0}, mirror=0.0)
    y = x.copy()
    aug(y, np.random.default_rng(0))
    d = y - x
    assert np.allclose(d, d[:, :1, :])  # a constant per window and channel
    assert np.all(d[..., ix["casting_speed"]] == 0) and np.all(d[..., ix["superheat"]] != 0)
    # start spikes: one TC, only the first 1-3 readings, 30-80 degC
    aug = Augment(channels, tc_sd=0.0, tc_common_sd=0.0, process_sd={}, mirror=0.0,
                  start_spike=1.0, spike_degc=(30.0, 80.0))
    x = np.zeros((50, 5, len(channels)), dtype=np.float32)
    aug(x, np.random.default_rng(0))
    tc = np.array([c.startswith("tc_") for c in channels])
    assert np.all(x[..., ~tc] == 0) and np.all(x[:, 3:] == 0)
    hit = (x != 0).any(1)  # [B, F]
    assert np.all(hit.sum(1) == 1)
    assert np.all((x[:, 0][hit] >= 30) & (x[:, 0][hit] <= 80))


def test_augment_rolls_columns(small_source: Source) -> None:
    channels = small_source.heats.channels  # 3 x 6 thermocouples
    ix = {c: i for i, c in enumerate(channels)}
    aug = Augment(channels, tc_sd=0.0, tc_common_sd=0.0, process_sd={}, mirror=0.0, roll=1.0)
    x = np.random.default_rng(1).standard_normal((200, 4, len(channels))).astype(np.float32)
    y = x.copy()
    aug(y, np.random.default_rng(0))
    shifts = set()
    for b in range(len(x)):
        # every row of a window is shifted round by the same k in 1..5, process tags stay
        k = next(k for k in range(1, 6)
                 if np.array_equal(y[b, :, ix["tc_r1_c1"]], x[b, :, ix[f"tc_r1_c{1 + k}"]]))
        for r in (1, 2, 3):
            for c in range(1, 7):
                src = f"tc_r{r}_c{(c - 1 + k) % 6 + 1}"
                np.testing.assert_array_equal(y[b, :, ix[f"tc_r{r}_c{c}"]], x[b, :, ix[src]])
        np.testing.assert_array_equal(y[b, :, ix["mould_level"]], x[b, :, ix["mould_level"]])
        shifts.add(k)
    assert shifts == {1, 2, 3, 4, 5}
    y = x.copy()
    Augment(channels, tc_sd=0.0, tc_common_sd=0.0, process_sd={}, mirror=0.0, roll=0.0)(
        y, np.random.default_rng(0))
    np.testing.assert_array_equal(y, x)


# --- training --------------------------------------------------------------------------------

def _loss_on(model: SteelDefectLSTM, segs, seed: int = 5) -> float:
    """BCE on 512 training windows drawn like the trainer draws them (default shares)."""
    from streamer.training.train import SamplingConfig

    sm = WindowSampler(segs, DEFECT_TYPES, WINDOW, MIN_FILL, SamplingConfig().fractions(), 0.0)
    x, y = next(sm.epoch(512, 512, np.random.default_rng(seed)))
    model.eval()
    with torch.no_grad():
        return float(torch.nn.functional.binary_cross_entropy_with_logits(
            model(torch.from_numpy(x)), torch.from_numpy(y)))


def test_training_lowers_the_loss(small_source: Source, trained) -> None:
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    tr, _ = split_train_segments(segs, 0.34, 0)
    torch.manual_seed(0)
    untrained = SteelDefectLSTM(trained.model.config)
    mean, std = input_stats_from_segments(tr)
    untrained.set_input_stats(torch.from_numpy(mean), torch.from_numpy(std))
    before, after = _loss_on(untrained, tr), _loss_on(trained.model, tr)
    assert after < 0.8 * before, (before, after)
    h = trained.history
    assert len(h) == 2 and h[1]["train_loss"] < h[0]["train_loss"]


def test_training_with_evident_labels(small_source: Source) -> None:
    cfg = tiny_train_config(epochs=1, evident_labels=["sticker", "slag"])
    res = train([small_source], tiny_model_config(), cfg, progress=False, log=lambda m: None)
    meta = res.metadata
    assert meta["train_config"]["evident_labels"] == ["sticker", "slag"]
    assert np.isfinite(meta["history"][0]["train_loss"])
    with pytest.raises(ValueError, match="unknown defect types"):
        prepare_segments([small_source], small_source.heats.channels, evident_types=["breakout"])
    with pytest.raises(TrainConfigError, match=r"evident_labels\.0"):  # before any data is read
        make_train_config({"evident_labels": ["slagg"]})


def test_training_a_model_with_context_reads_the_last_steps(small_source: Source) -> None:
    """A window longer than the LSTMs read (architecture.steps, columns.baseline): the
    relative input's scale is the change over the read part, not over the whole window."""
    mc = tiny_model_config()
    mc["data"]["window"] = 90
    mc["architecture"]["steps"] = WINDOW
    mc["columns"] = {"enabled": True, "hidden_size": 4, "steps": WINDOW, "baseline": 30}
    res = train([small_source], mc, tiny_train_config(epochs=1), progress=False,
                log=lambda m: None)
    assert np.isfinite(res.metadata["history"][0]["train_loss"])
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    tr, _ = split_train_segments(segs, 0.34, 0)
    want = relative_stats_from_segments(tr, WINDOW)
    np.testing.assert_allclose(res.model.relative_std.numpy(), want, rtol=1e-6)
    assert not np.allclose(want, relative_stats_from_segments(tr, 90), rtol=0.02)


def record_steps(monkeypatch: pytest.MonkeyPatch) -> list[list[torch.Tensor]]:
    """Every AdamW step's weights from now on, in order, appended to the returned list."""
    steps: list[list[torch.Tensor]] = []
    step = torch.optim.AdamW.step

    def recording_step(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        out = step(self, *a, **kw)
        steps.append([p.detach().clone() for g in self.param_groups for p in g["params"]])
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    return steps


def test_ema_keeps_the_average_of_the_weights(small_source: Source,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``ema_decay`` the saved model is the moving average of every step's weights (the
    first step's weights, then d * avg + (1 - d) * new), not the last step's weights."""
    steps = record_steps(monkeypatch)
    d = 0.8
    res = train([small_source], tiny_model_config(),
                tiny_train_config(epochs=1, calibrate=False, ema_decay=d),
                progress=False, log=lambda m: None)
    assert len(steps) >= 10 and res.metadata["train_config"]["ema_decay"] == d
    avg = steps[0]
    for new in steps[1:]:
        avg = [d * a + (1 - d) * n for a, n in zip(avg, new)]
    got = list(res.model.parameters())
    assert len(got) == len(avg)
    for g, a, last in zip(got, avg, steps[-1]):
        torch.testing.assert_close(g.detach(), a, rtol=1e-5, atol=1e-6)
    assert not all(torch.allclose(g.detach(), last) for g, last in zip(got, steps[-1]))
    with pytest.raises(TrainConfigError, match="ema_decay"):
        make_train_config({"ema_decay": 1.0})


def test_keep_last_runs_every_epoch_and_keeps_the_final_weights(
        small_source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """``early_stopping.keep: last``: patience never stops the run, and the saved weights are
    the last step's, whichever epoch scored best; ``best`` (the default) stops and restores."""
    steps = record_steps(monkeypatch)
    # min_delta 1 is more than any PR-AUC can improve: only epoch 1 counts as the best
    stop = {"patience": 1, "min_delta": 1.0}
    res = train([small_source], tiny_model_config(),
                tiny_train_config(epochs=3, calibrate=False,
                                  early_stopping={**stop, "keep": "last"}),
                progress=False, log=lambda m: None)
    m = res.metadata
    assert (m["epochs_run"], m["best_epoch"], m["kept_epoch"]) == (3, 1, 3)
    assert m["stopped"] == "epochs" and m["early_stopping"]["keep"] == "last"
    for g, last in zip(res.model.parameters(), steps[-1]):
        torch.testing.assert_close(g.detach(), last)
    per_epoch = len(steps) // 3

    steps.clear()
    res = train([small_source], tiny_model_config(),
                tiny_train_config(epochs=3, calibrate=False, early_stopping=stop),
                progress=False, log=lambda m: None)
    m = res.metadata
    assert (m["epochs_run"], m["best_epoch"], m["kept_epoch"]) == (2, 1, 1)
    assert m["stopped"] == "early_stopping" and m["early_stopping"]["keep"] == "best"
    assert len(steps) == 2 * per_epoch
    for g, first in zip(res.model.parameters(), steps[per_epoch - 1]):
        torch.testing.assert_close(g.detach(), first)
    with pytest.raises(TrainConfigError, match="early_stopping.keep"):
        make_train_config({"early_stopping": {"keep": "first"}})


def test_input_stats_come_from_training_heats_only(small_source: Source, trained) -> None:
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    tr, va = split_train_segments(segs, 0.34, 0)
    mean_tr, std_tr = input_stats_from_segments(tr)
    mean_all, _ = input_stats_from_segments(segs)
    m = trained.model
    np.testing.assert_allclose(m.input_mean.numpy(), mean_tr, rtol=1e-5)
    np.testing.assert_allclose(m.input_std.numpy(), std_tr, rtol=1e-5)
    assert not np.allclose(mean_tr, mean_all, rtol=1e-4)  # the validation heats differ
    # the scale of the relative input (x - x_first) too
    rel_tr = relative_stats_from_segments(tr, WINDOW)
    np.testing.assert_allclose(m.relative_std.numpy(), rel_tr, rtol=1e-5)
    assert not np.allclose(rel_tr, relative_stats_from_segments(segs, WINDOW), rtol=1e-3)
    split = trained.metadata["split"]
    assert set(split["train_heats"]) == {h for s in tr for h in s.heats}
    assert set(split["val_heats"]) == {h for s in va for h in s.heats}


def test_same_seed_same_weights(small_source: Source, trained) -> None:
    cfg = tiny_train_config(epochs=1)
    a = train([small_source], tiny_model_config(), cfg, progress=False, log=lambda m: None)
    b = train([small_source], tiny_model_config(), cfg, progress=False, log=lambda m: None)
    c = train([small_source], tiny_model_config(), tiny_train_config(epochs=1, seed=1),
              progress=False, log=lambda m: None)
    sa, sb, sc = (r.model.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_validation_scoring_matches_single_windows(small_source: Source, trained) -> None:
    segs, _ = prepare_segments([small_source], small_source.heats.channels)
    seg = segs[0]
    sc = score_segments(trained.model, [seg], WINDOW, MIN_FILL, stride=1)
    assert sc.end[0] == MIN_FILL - 1 and len(sc.end) == len(seg) - MIN_FILL + 1
    with torch.no_grad():
        for e in (MIN_FILL - 1, WINDOW - 2, WINDOW - 1, 1234):
            x = torch.from_numpy(seg.values[max(0, e - WINDOW + 1):e + 1][None])
            want = trained.model(x).numpy()[0]
            got = sc.logits[np.flatnonzero(sc.end == e)[0]]
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_relative_stats_are_the_spread_of_change_since_window_start() -> None:
    from streamer.training.windows import Segment

    rng = np.random.default_rng(0)
    v = np.cumsum(rng.standard_normal((500, 3)), 0).astype(np.float32)
    v[:, 2] = 7.0  # constant channel -> 1
    seg = Segment("s", np.array(["h"] * 500, dtype=object), np.arange(500.0), v,
                  np.zeros((500, 3), np.uint8))
    got = relative_stats_from_segments([seg], 10, n_starts=10_000)  # every start
    d = np.concatenate([v[s:s + 10] - v[s] for s in range(491)])
    np.testing.assert_allclose(got[:2], d[:, :2].std(0), rtol=1e-4)
    assert got[2] == 1.0


def test_platt_scaling_folds_into_the_head() -> None:
    torch.manual_seed(0)
    model = SteelDefectLSTM({**tiny_model_config(), "data": {"window": 10, "channels": ["a", "b"]}})
    model.eval()
    x = torch.randn(16, 10, 2)
    before = model(x).detach().numpy()
    fold_calibration(model, [2.0, 0.5, 1.0], [-1.0, 0.25, 0.0])
    after = model(x).detach().numpy()
    np.testing.assert_allclose(after, before * [2.0, 0.5, 1.0] + [-1.0, 0.25, 0.0], atol=1e-5)
    rng = np.random.default_rng(0)
    z = rng.standard_normal(4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(3 * z - 1)))).astype(float)
    a, c = fit_platt(z, y)
    assert abs(a - 3) < 0.4 and abs(c + 1) < 0.3


# --- CLI and checkpoint -----------------------------------------------------------------------

def _cli(args: list[str]):
    from streamer.cli import cli

    return CliRunner().invoke(cli, ["train", *args])


def test_cli_trains_and_checkpoint_carries_metadata(small_dir: Path, tmp_path: Path) -> None:
    mc = tmp_path / "tiny.yaml"
    import yaml

    mc.write_text(yaml.safe_dump({**tiny_model_config(), "data": {
        "window": WINDOW, "channels": generate(load_config(SMALL, hours=0.1)).channels}}))
    tc = tmp_path / "train.yaml"
    tc.write_text(yaml.safe_dump({"windows_per_epoch": 256, "batch_size": 64,
                                  "min_fill": MIN_FILL, "val_fraction": 0.34, "val_stride": 4,
                                  "device": "cpu"}))
    out, report = tmp_path / "m.pt", tmp_path / "report.json"
    r = _cli(["--data", str(small_dir), "--model-config", str(mc), "--config", str(tc),
              "--epochs", "1", "--seed", "4", "--out", str(out), "--report", str(report), "-q"])
    assert r.exit_code == 0, r.output
    assert "val sticker" in r.output
    lm = load_checkpoint(out)
    md = lm.metadata
    assert md["data_seeds"] == [7]  # configs/sim/small.yaml
    assert md["split"]["by"] == "heat" and md["split"]["val_heats"]
    assert not set(md["split"]["val_heats"]) & set(md["split"]["train_heats"])
    assert md["train_config"]["seed"] == 4 and md["epochs_run"] == 1
    assert set(md["val_metrics"]) >= {"sticker", "crack", "slag", "loss"}
    assert md["data"][0]["sim_config"]["tc_cols"] == 6
    assert md["torch_version"] == torch.__version__ and md["wall_time_s"] > 0
    assert lm.window == WINDOW and tuple(lm.defect_types) == DEFECT_TYPES
    assert json.loads(report.read_text())["best_epoch"] == 1


def test_members_train_one_ensemble_of_seeded_runs(small_source: Source, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``members: 2`` gives an ensemble whose members are exactly the one-run trainings with
    seeds s and s + 1, and shares max_minutes between them."""
    import streamer.training.train as train_mod
    from streamer.model.ensemble import DefectEnsemble
    from streamer.training.train import run

    seen: list[tuple[int, float]] = []
    real = train_mod.train

    def recording(sources, mc, cfg, **kw):  # noqa: ANN001, ANN003, ANN202
        seen.append((cfg.seed, cfg.max_minutes))
        return real(sources, mc, cfg, **kw)

    monkeypatch.setattr(train_mod, "train", recording)
    cfg = tiny_train_config(epochs=1, seed=3, members=2, max_minutes=10)
    model_id, _ = run([small_source], tiny_model_config(), cfg, tmp_path / "e.pt",
                      progress=False, log=lambda m: None, command="cmd")
    assert [s for s, _ in seen] == [3, 4]
    assert 4.9 < seen[0][1] <= 5.0 and 5.0 <= seen[1][1] < 10.0  # half, then what is left
    lm = load_checkpoint(tmp_path / "e.pt")
    assert lm.model_id == model_id and isinstance(lm.model, DefectEnsemble)
    md = lm.metadata
    assert md["command"] == "cmd" and md["train_config"]["members"] == 2
    assert [m["split"]["seed"] for m in md["members"]] == [3, 4]
    assert md["data_seeds"] == [7]
    monkeypatch.setattr(train_mod, "train", real)
    for k, seed in enumerate((3, 4)):
        alone = real([small_source], tiny_model_config(), tiny_train_config(epochs=1, seed=seed),
                     progress=False, log=lambda m: None)
        want, got = alone.model.state_dict(), lm.model.members[k].state_dict()
        assert all(torch.equal(want[n], got[n]) for n in want), k


def test_cli_members_write_an_ensemble(small_dir: Path, tmp_path: Path) -> None:
    mc = tmp_path / "tiny.yaml"
    import yaml

    mc.write_text(yaml.safe_dump({**tiny_model_config(), "data": {
        "window": WINDOW, "channels": generate(load_config(SMALL, hours=0.1)).channels}}))
    out = tmp_path / "e.pt"
    r = _cli(["--data", str(small_dir), "--model-config", str(mc), "--epochs", "1",
              "--windows-per-epoch", "128", "--members", "2", "--threads", "1",
              "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    lm = load_checkpoint(out)
    assert f"ensemble {lm.model_id} of 2 runs" in r.output
    assert r.output.count("val sticker") == 4  # ROC/PR and events, per member
    r = _cli(["--data", str(small_dir), "--members", "0", "--out", str(out)])
    assert r.exit_code != 0 and "members" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("make", ["missing", "file", "corrupt"])
def test_cli_bad_data_dir(tmp_path: Path, small_dir: Path, make: str) -> None:
    d = tmp_path / "data"
    if make == "file":
        d.write_text("x")
    elif make == "corrupt":
        d.mkdir()
        for f in small_dir.iterdir():
            (d / f.name).write_bytes(f.read_bytes())
        (d / "readings.parquet").write_bytes(b"not parquet")
    r = _cli(["--data", str(d), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot read training data:"), r.output
    assert not (tmp_path / "m.pt").exists()


def test_cli_bad_config_names_the_field(tmp_path: Path, small_dir: Path) -> None:
    tc = tmp_path / "train.yaml"
    tc.write_text("sampling:\n  sticker: -1\n")
    r = _cli(["--data", str(small_dir), "--config", str(tc), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "sampling.sticker" in r.output
    tc.write_text("augment:\n  roll: 1.5\n")  # a probability
    r = _cli(["--data", str(small_dir), "--config", str(tc), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "augment.roll" in r.output, r.output
    tc.write_text("sampling:\n  severity_power: {sticker: 5}\n")
    r = _cli(["--data", str(small_dir), "--config", str(tc), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "sampling.severity_power" in r.output, r.output
    tc.write_text("sampling:\n  severity_power: {breakout: 1}\n")
    r = _cli(["--data", str(small_dir), "--config", str(tc), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "sampling.severity_power.breakout" in r.output, r.output
    tc.write_text("epoch: 3\n")
    r = _cli(["--data", str(small_dir), "--config", str(tc), "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "epoch" in r.output and "Extra inputs" in r.output
    r = _cli(["--data", str(small_dir), "--lr", "-1", "--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "lr" in r.output
    r = _cli(["--out", str(tmp_path / "m.pt")])
    assert r.exit_code == 2 and "--data" in r.output


def test_cli_channel_mismatch_is_one_line(small_dir: Path, tmp_path: Path) -> None:
    r = _cli(["--data", str(small_dir), "--out", str(tmp_path / "m.pt"), "--epochs", "1"])
    assert r.exit_code == 1 and "lacks the model's channels" in r.output, r.output


def test_command_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, streamer.commands.train; "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
