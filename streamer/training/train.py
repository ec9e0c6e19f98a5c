"""The training loop: weighted window sampling, AdamW, early stopping, calibration, checkpoint.

:func:`train` does everything but reading the data and writing the file; :func:`run` (used
by ``streamer train``) adds both. docs/training.md explains every choice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamer.channels import DEFECT_TYPES
from streamer.training.data import (
    BACKGROUND,
    Augment,
    HARD_NEGATIVE,
    IGNORE,
    LOOK_ALIKE,
    NEAR_EVENT,
    Source,
    TrainSegment,
    WindowSampler,
    input_stats_from_segments,
    prepare_segments,
    relative_stats_from_segments,
    split_train_segments,
)

# ---------------------------------------------------------------------------------------------
# Config


class TrainConfigError(ValueError):
    """Invalid training config; the message names the field (``sampling.sticker``)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingConfig(_Section):
    """Share of each category among the windows drawn per epoch (renormalised to sum 1)."""

    sticker: float = Field(0.15, ge=0, description="windows ending inside a sticker event")
    crack: float = Field(0.10, ge=0)
    slag: float = Field(0.10, ge=0)
    near_event: float = Field(0.15, ge=0,
                              description="negatives just before onset / after critical")
    look_alike: float = Field(
        0.0, ge=0, description="negatives during/after a nuisance of a look_alike_kinds kind; "
        "0: those windows stay in hard_negative")
    hard_negative: float = Field(0.20, ge=0, description="negatives during/after a hard negative")
    background: float = Field(0.30, ge=0, description="all other negatives")
    near_before_s: float = Field(60.0, ge=0)
    near_after_s: float = Field(180.0, ge=0)
    hard_after_s: float = Field(120.0, ge=0)
    look_alike_kinds: list[str] = Field(
        default_factory=lambda: ["near_sticker", "near_crack"],
        description="nuisance kinds that mimic a defect's signature")
    severity_power: dict[Literal["sticker", "crack", "slag"], float] = Field(
        default_factory=dict, description="per defect type p: inside that type's events a "
        "window is drawn in proportion to severity ** -p (faint events more often; the "
        "type's share unchanged); none: every window of a category equally likely")

    @field_validator("severity_power")
    @classmethod
    def _powers(cls, v: dict[str, float]) -> dict[str, float]:
        for k, p in v.items():
            if not 0 <= p <= 4:
                raise ValueError(f"{k}: {p} is outside [0, 4]")
        return v

    @model_validator(mode="after")
    def _some(self) -> SamplingConfig:
        if sum(self.fractions().values()) <= 0:
            raise ValueError("the category shares must not all be 0")
        return self

    def fractions(self) -> dict[str, float]:
        return {"sticker": self.sticker, "crack": self.crack, "slag": self.slag,
                NEAR_EVENT: self.near_event, LOOK_ALIKE: self.look_alike,
                HARD_NEGATIVE: self.hard_negative, BACKGROUND: self.background}

    def split_kinds(self) -> list[str]:
        """The nuisance kinds drawn as LOOK_ALIKE: none while its share is 0, so that a
        recipe without the category draws exactly what it drew before the category existed."""
        return list(self.look_alike_kinds) if self.look_alike > 0 else []


class AugmentConfig(_Section):
    """Training-window augmentation (streamer.training.data.Augment); off = all zero."""

    tc_sd: float = Field(3.0, ge=0, description="per-thermocouple offset sd, degC")
    tc_common_sd: float = Field(5.0, ge=0, description="offset sd shared by all TCs, degC")
    process_sd: dict[str, float] = Field(
        default_factory=lambda: {"casting_speed": 0.05, "mould_level": 1.0, "superheat": 4.0,
                                 "water_flow": 150.0, "water_dt": 0.4})
    mirror: float = Field(0.5, ge=0, le=1, description="probability of mirroring TC columns")
    roll: float = Field(0.0, ge=0, le=1,
                        description="probability of shifting TC columns round by 1..C-1")
    start_spike: float = Field(0.0, ge=0, le=1,
                               description="probability of a TC spike on the first readings")
    spike_degc: tuple[float, float] = Field((30.0, 80.0), description="spike size range, degC")


class EarlyStoppingConfig(_Section):
    metric: Literal["mean_pr_auc", "val_loss"] = "mean_pr_auc"
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(1e-4, ge=0)
    keep: Literal["best", "last"] = Field(
        "best", description="best: the epoch with the best metric is kept, and training stops "
        "after `patience` epochs without improvement; last: every epoch runs and the final "
        "weights are kept (the metric is still logged). Tried because the best epoch on ~13 "
        "validation heats is a noisy pick; on two runs the last epoch was worse "
        "(docs/training.md, \"The last epoch's weights\")")


class TrainConfig(_Section):
    seed: int = Field(0, ge=0, description="weights, dropout, sampling and the heat split")
    epochs: int = Field(30, ge=1)
    max_minutes: float = Field(0.0, ge=0, description="wall-clock budget; 0 = none")
    batch_size: int = Field(128, ge=2)
    windows_per_epoch: int = Field(40_000, ge=2)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="keep an exponential moving average of the weights with "
        "this decay per step; validation, early stopping and the saved model use the average "
        "(null = the raw weights)")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of heats held out")
    min_fill: int = Field(60, ge=2, description="shortest window (daemon buffer.min_fill)")
    short_fraction: float = Field(0.2, ge=0, le=1, description="batches of length < window")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    augment: AugmentConfig | None = Field(default_factory=AugmentConfig)
    pos_weight: dict[str, float] | None = Field(
        None, description="BCEWithLogitsLoss pos_weight per type (on top of sampling)")
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    calibrate: bool = Field(True, description="Platt-scale each logit on the validation heats")
    evident_labels: list[Literal["sticker", "crack", "slag"]] = Field(
        default_factory=list, description="defect types whose windows count as positive only "
        "from when the signature is in the readings (streamer.training.data.evident_step); "
        "from onset until then they are left out of the loss and the validation metrics. "
        "Evaluation always labels from onset")
    val_stride: int = Field(2, ge=1, description="score every n-th validation window per epoch "
                            "(the final scoring of the best model uses every window)")
    members: int = Field(1, ge=1, le=8, description="train this many runs (seeds seed, seed+1, "
                         "...) on the same heats and save their average, an ensemble "
                         "(DefectEnsemble); max_minutes is for all of them together")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(1, ge=0, description="torch CPU threads; 0 = torch's default")


def _errors(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(config)"
        got = f" (got {e['input']!r})" if e["type"] not in ("value_error", "missing",
                                                            "extra_forbidden") else ""
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(parts)


def make_train_config(data: dict[str, Any] | None = None, **overrides: Any) -> TrainConfig:
    """Validate a mapping plus overrides (dotted keys allowed: ``early_stopping.patience``)."""
    merged: dict[str, Any] = dict(data or {})
    for key, val in overrides.items():
        if val is None:
            continue
        where = merged
        *parents, last = key.split(".")
        for p in parents:
            where = where.setdefault(p, {}) if isinstance(where.get(p, {}), dict) else {}
        where[last] = val
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise TrainConfigError(f"invalid train config: {_errors(exc)}") from None


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    data: Any = {}
    if path is not None:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except FileNotFoundError:
            raise TrainConfigError(f"train config {p}: not found") from None
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"train config {p}: not valid YAML "
                                   f"({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise TrainConfigError(f"train config {p}: top level must be a mapping")
    try:
        return make_train_config(data, **overrides)
    except TrainConfigError as exc:
        raise TrainConfigError(f"train config {path}: {exc}" if path else str(exc)) from None


# ---------------------------------------------------------------------------------------------
# Scoring validation heats


@dataclass
class Scored:
    """Every scored validation window: which segment, its end step, label, logits."""

    seg: np.ndarray
    end: np.ndarray
    y: np.ndarray  # [M, K]
    logits: np.ndarray  # [M, K]


def score_segments(model, segments: Sequence[TrainSegment],  # noqa: ANN001
                   window: int, min_fill: int,
                   stride: int = 1, batch: int = 512, device: Any = "cpu") -> Scored:
    """Logits of every window (ending at steps min_fill-1, +stride, ...) of every segment.

    Full windows run unpadded; the first, partial windows of a segment run padded with
    their lengths (the daemon's variable-length path)."""
    import torch

    seg_l, end_l, y_l, z_l = [], [], [], []
    model.eval()
    with torch.inference_mode():
        for i, s in enumerate(segments):
            ends = np.arange(min_fill - 1, len(s), stride)
            if len(ends) == 0:
                continue
            F = s.values.shape[1]
            part, full = ends[ends < window - 1], ends[ends >= window - 1]
            if len(part):
                x = np.zeros((len(part), window, F), dtype=np.float32)
                for b, e in enumerate(part):
                    x[b, :e + 1] = s.values[:e + 1]
                lens = torch.from_numpy((part + 1).astype(np.int64))
                z_l.append(model(torch.from_numpy(x).to(device), lens).float().cpu().numpy())
            if len(full):
                # a strided view [N, window, F] of the segment, no copy until batching
                view = np.lib.stride_tricks.sliding_window_view(s.values, window, axis=0)
                for b in range(0, len(full), batch):
                    e = full[b:b + batch]
                    x = np.ascontiguousarray(view[e - window + 1].transpose(0, 2, 1))
                    z_l.append(model(torch.from_numpy(x).to(device)).float().cpu().numpy())
            seg_l.append(np.full(len(ends), i))
            end_l.append(ends)
            y_l.append(s.labels[ends].astype(np.float32))
    K = segments[0].labels.shape[1] if segments else 0
    cat = (lambda a, shape: np.concatenate(a) if a else np.zeros(shape))  # noqa: E731
    return Scored(cat(seg_l, (0,)).astype(np.int64), cat(end_l, (0,)).astype(np.int64),
                  cat(y_l, (0, K)), cat(z_l, (0, K)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def window_metrics(y: np.ndarray, logits: np.ndarray, defect_types: Sequence[str]
                   ) -> dict[str, Any]:
    """ROC-AUC and PR-AUC (average precision) per type and for "any defect"; BCE loss."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, Any] = {"windows": int(len(y))}
    p = _sigmoid(logits)
    eps = 1e-7
    keep = y != IGNORE  # windows left out of the loss are left out of the metrics too
    yc = np.minimum(y, 1)
    bce = -(yc * np.log(np.clip(p, eps, 1)) + (1 - yc) * np.log(np.clip(1 - p, eps, 1)))
    out["loss"] = float(bce[keep].mean()) if keep.any() else None
    rocs, prs = [], []
    for k, t in enumerate(defect_types):
        yk, zk = y[keep[:, k], k], logits[keep[:, k], k]
        n_pos = int(yk.sum())
        m: dict[str, Any] = {"positives": n_pos}
        if 0 < n_pos < len(yk):
            m["roc_auc"] = float(roc_auc_score(yk, zk))
            m["pr_auc"] = float(average_precision_score(yk, zk))
            m["prevalence"] = n_pos / len(yk)
            rocs.append(m["roc_auc"])
            prs.append(m["pr_auc"])
        out[t] = m
    rows = keep.all(1) | (y == 1).any(1)
    any_y = (y[rows] == 1).any(1) if y.shape[1] else np.zeros(0)
    any_p = p[rows].max(1) if y.shape[1] else np.zeros(0)
    if 0 < any_y.sum() < len(any_y):
        out["any"] = {"positives": int(any_y.sum()),
                      "roc_auc": float(roc_auc_score(any_y, any_p)),
                      "pr_auc": float(average_precision_score(any_y, any_p))}
    out["mean_roc_auc"] = float(np.mean(rocs)) if rocs else None
    out["mean_pr_auc"] = float(np.mean(prs)) if prs else None
    return out


def event_metrics(scored: Scored, segments: Sequence[TrainSegment], sources: Sequence[Source],
                  defect_types: Sequence[str], stride: int = 1,
                  settings: Any = None) -> dict[str, Any] | None:
    """Alarms through the daemon's AlarmStates on every scored window, scored per event.

    Only meaningful with stride 1 (the daemon scores every reading). Each validation segment
    is its own alarm stream (as after a daemon restart); events overlapping it are judged;
    those whose critical time falls after its end are pending."""
    from streamer.alarm.levels import AlarmStates
    from streamer.config import AlertSettings
    from streamer.evaluation.events import Raise, TruthEvent, score_events

    if stride != 1 or len(scored.y) == 0:
        return None
    settings = settings or AlertSettings()
    probs = _sigmoid(scored.logits)
    raises, truths, until = [], [], {}
    where: dict[str, tuple[int, str]] = {}
    seconds = 0.0
    ev_tables: dict[int, list[dict]] = {i: s.heats.events.to_pylist()
                                        for i, s in enumerate(sources)}
    for i, seg in enumerate(segments):
        rows = np.flatnonzero(scored.seg == i)
        if len(rows) == 0:
            continue
        key = f"{seg.strand}#{i}"
        states = AlarmStates(settings, list(defect_types))
        ts = seg.ts[scored.end[rows]]
        for t, pr in zip(ts, probs[rows]):
            d = states.update(key, float(t), pr)
            for k, what in d.events:
                if what == "raised":
                    raises.append(Raise(key, defect_types[k], float(t)))
        t0, t1 = float(seg.ts[0]), float(seg.ts[-1])
        until[key] = t1
        seconds += t1 - t0 + 1.0
        where[key] = (seg.source, seg.strand.split(":", 1)[1] if ":" in seg.strand
                      and len(sources) > 1 else seg.strand)
        raw_strand = seg.strand.split(":", 1)[1] if ":" in seg.strand and len(sources) > 1 \
            else seg.strand
        for e in ev_tables[seg.source]:
            if e["strand"] == raw_strand and e["critical_ts"] >= t0 and e["onset_ts"] <= t1 \
                    and e["type"] in defect_types:
                truths.append(TruthEvent(f"{e['event_id']}#{i}", key, e["type"],
                                         e["onset_ts"], e["critical_ts"]))
    score = score_events(raises, truths, observed_until=until, strand_seconds=seconds,
                         defect_types=defect_types)
    out = score.as_dict()
    # false alarms by the hard negative in progress (onset <= t <= end + 60 s), else "none"
    kinds: dict[str, dict[str, int]] = {}
    nuis = {i: s.heats.nuisances.to_pylist() for i, s in enumerate(sources)}
    for r in getattr(score, "false_alarm_raises", None) or []:
        src, strand = where[r.strand]
        cands = [n for n in nuis[src] if n["strand"] == strand
                 and n["onset_ts"] <= r.ts <= n["critical_ts"] + 60.0]
        kind = max(cands, key=lambda n: n["onset_ts"])["type"] if cands else "none"
        kinds.setdefault(r.defect, {})
        kinds[r.defect][kind] = kinds[r.defect].get(kind, 0) + 1
    out["false_alarm_kinds"] = kinds
    return out


# ---------------------------------------------------------------------------------------------
# Calibration


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, c) minimising the BCE of sigmoid(a * logit + c) against y; (1, 0) if not fittable."""
    import torch

    if len(y) == 0 or y.sum() == 0 or y.sum() == len(y):
        return 1.0, 0.0
    z = torch.from_numpy(logits.astype(np.float64))
    t = torch.from_numpy(y.astype(np.float64))
    a = torch.ones((), dtype=torch.float64, requires_grad=True)
    c = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, c], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():  # noqa: ANN202
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a * z + c, t)
        loss.backward()
        return loss

    opt.step(closure)
    av, cv = float(a.detach()), float(c.detach())
    if not (math.isfinite(av) and math.isfinite(cv)) or av <= 0:
        return 1.0, 0.0
    return av, cv


def fold_calibration(model, scale: Sequence[float], shift: Sequence[float]) -> None:  # noqa: ANN001
    """logit_k -> scale_k * logit_k + shift_k, folded into the output layer (exact)."""
    import torch

    a = torch.tensor(scale, dtype=model.head.weight.dtype, device=model.head.weight.device)
    c = torch.tensor(shift, dtype=model.head.weight.dtype, device=model.head.weight.device)
    with torch.no_grad():
        model.head.weight.mul_(a[:, None])
        model.head.bias.mul_(a).add_(c)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainResult:
    model: Any
    channels: list[str]
    defect_types: list[str]
    window: int
    metadata: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _pick_device(requested: str):  # noqa: ANN202
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def _heat_split(train_segs: Sequence[TrainSegment], val_segs: Sequence[TrainSegment]
                ) -> dict[str, list[str]]:
    tr = sorted({h for s in train_segs for h in np.unique(s.heats)})
    va = sorted({h for s in val_segs for h in np.unique(s.heats)})
    return {"train_heats": tr, "val_heats": va}


def train(sources: Sequence[Source], model_config: dict[str, Any], cfg: TrainConfig, *,
          progress: bool = True, log: Callable[[str], None] = print,
          defect_types: Sequence[str] = DEFECT_TYPES) -> TrainResult:
    """Train a SteelDefectLSTM on the sources; return the best (calibrated) model + metadata.

    ``model_config`` may leave ``data.channels`` empty: the first source's channels are used.
    One run, whatever ``cfg.members`` says: :func:`run` trains the members.
    """
    import torch
    from tqdm import tqdm

    from streamer.model.lstm import SteelDefectLSTM, read_steps, validate_config

    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    mc = dict(model_config)
    if not (mc.get("data") or {}).get("channels"):
        channels = list(sources[0].heats.channels)
        mc["data"] = {**(mc.get("data") or {}), "channels": channels}
        mc["architecture"] = {**(mc.get("architecture") or {}), "input_size": len(channels)}
    mc = validate_config(mc)
    channels = list(mc["data"]["channels"])
    window = int(mc["data"]["window"])
    if mc["output"]["num_outputs"] != len(defect_types):
        raise ValueError(f"model config has {mc['output']['num_outputs']} outputs; training "
                         f"needs one per defect type {list(defect_types)}")
    if cfg.min_fill > window:
        raise TrainConfigError(f"invalid train config: min_fill: {cfg.min_fill} is longer than "
                               f"the model window {window}")

    s = cfg.sampling
    segments, read_stats = prepare_segments(
        list(sources), channels, defect_types, near_before_s=s.near_before_s,
        near_after_s=s.near_after_s, hard_after_s=s.hard_after_s, evident_types=cfg.evident_labels,
        look_alike_kinds=s.split_kinds())
    train_segs, val_segs = split_train_segments(segments, cfg.val_fraction, cfg.seed)
    if not train_segs or not val_segs:
        raise ValueError(f"too few heats to split ({len({h for g in segments for h in g.heats})} "
                         f"heats, val_fraction {cfg.val_fraction}): need heats on both sides")
    split = _heat_split(train_segs, val_segs)
    aug = None
    if cfg.augment is not None:
        a = cfg.augment
        aug = Augment(channels, tc_sd=a.tc_sd, tc_common_sd=a.tc_common_sd,
                      process_sd=a.process_sd, mirror=a.mirror, start_spike=a.start_spike,
                      spike_degc=a.spike_degc, roll=a.roll)
    sampler = WindowSampler(train_segs, defect_types, window, cfg.min_fill, s.fractions(),
                            cfg.short_fraction, aug)
    if s.look_alike > 0 and not sampler.counts[LOOK_ALIKE]:
        kinds = sorted({r["type"] for src in sources for r in src.heats.nuisances.to_pylist()})
        raise TrainConfigError(f"invalid train config: sampling.look_alike_kinds: no training "
                               f"window falls in a nuisance of {s.look_alike_kinds}; the data's "
                               f"nuisance kinds are {kinds}")
    log(f"data: {read_stats['readings']} readings ({read_stats['readings_dropped']} dropped by "
        f"the daemon's decoder rules), {len(split['train_heats'])} train / "
        f"{len(split['val_heats'])} validation heats, {len(sampler)} training windows")

    model = SteelDefectLSTM(mc)
    mean, std = input_stats_from_segments(train_segs)
    if mc["normalization"]["input_norm"]:
        model.set_input_stats(torch.from_numpy(mean), torch.from_numpy(std))
    rel_std = None
    if mc["normalization"].get("relative_input"):
        rel_std = relative_stats_from_segments(train_segs, read_steps(mc))
        model.set_relative_stats(torch.from_numpy(rel_std))
    model.to(device)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(cfg.windows_per_epoch / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    else:
        sched = None
    pw = None
    if cfg.pos_weight:
        unknown = set(cfg.pos_weight) - set(defect_types)
        if unknown:
            raise TrainConfigError("invalid train config: pos_weight: unknown types "
                                   f"{sorted(unknown)}")
        pw = torch.tensor([cfg.pos_weight.get(t, 1.0) for t in defect_types], device=device)
    bce = torch.nn.BCEWithLogitsLoss(pos_weight=pw, reduction="none")

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        keep = (y != IGNORE).to(logits.dtype)  # steps before an event is evident: no loss
        return (bce(logits, y.clamp(max=1.0)) * keep).sum() / keep.sum().clamp(min=1.0)

    # The average is what is validated and kept: one run's weights at one step carry that
    # step's noise, which shows as confident false alarms that differ from run to run.
    ema = None
    if cfg.ema_decay is not None:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.ema_decay),
            use_buffers=True)
    kept = model if ema is None else ema.module
    higher = cfg.early_stopping.metric == "mean_pr_auc"
    keep_last = cfg.early_stopping.keep == "last"
    best_val, best_epoch, bad_epochs = None, 0, 0
    kept_epoch, kept_state = 0, None  # the weights to save and the epoch they are from
    history: list[dict[str, Any]] = []
    stopped = "epochs"
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t_ep = time.perf_counter()
        losses = []
        bar = tqdm(sampler.epoch(cfg.windows_per_epoch, cfg.batch_size, rng), total=steps_per_epoch,
                   desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress,
                   leave=False)
        out_of_time = False
        for x, y in bar:
            xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            if len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
            if time.perf_counter() - t_start > budget_s:
                out_of_time = True
                break
        bar.close()
        train_s = time.perf_counter() - t_ep
        scored = score_segments(kept, val_segs, window, cfg.min_fill, cfg.val_stride,
                                device=device)
        vm = window_metrics(scored.y, scored.logits, defect_types)
        rec = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
               "batches": len(losses), "train_s": round(train_s, 1),
               "val_loss": vm["loss"], "val_mean_pr_auc": vm["mean_pr_auc"],
               "val_mean_roc_auc": vm["mean_roc_auc"],
               "val_pr_auc": {t: vm[t].get("pr_auc") for t in defect_types},
               "lr": opt.param_groups[0]["lr"],
               "elapsed_s": round(time.perf_counter() - t_start, 1)}
        history.append(rec)
        value = vm["mean_pr_auc"] if higher else vm["loss"]
        if value is None:
            value = -vm["loss"] if higher else vm["loss"]
        improved = best_val is None or (value > best_val + cfg.early_stopping.min_delta if higher
                                        else value < best_val - cfg.early_stopping.min_delta)
        log(f"epoch {epoch}: train loss {rec['train_loss']:.4f}, val loss {vm['loss']:.4f}, "
            f"val PR-AUC " + " ".join(f"{t} {vm[t].get('pr_auc', float('nan')):.3f}"
                                      for t in defect_types)
            + f" ({train_s:.0f} s){' *' if improved else ''}")
        if improved:
            best_val, best_epoch, bad_epochs = value, epoch, 0
        else:
            bad_epochs += 1
        if improved or keep_last:
            kept_epoch = epoch
            kept_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}
        if out_of_time:
            stopped = "max_minutes"
            break
        if not keep_last and bad_epochs >= cfg.early_stopping.patience:
            stopped = "early_stopping"
            break

    model.load_state_dict(kept_state)
    model.eval()
    scored = score_segments(model, val_segs, window, cfg.min_fill, 1, device=device)
    raw_metrics = window_metrics(scored.y, scored.logits, defect_types)
    calibration = None
    if cfg.calibrate:
        keep = scored.y != IGNORE
        ab = [fit_platt(scored.logits[keep[:, k], k], scored.y[keep[:, k], k])
              for k in range(len(defect_types))]
        fold_calibration(model, [a for a, _ in ab], [c for _, c in ab])
        calibration = {t: {"scale": a, "shift": c} for t, (a, c) in zip(defect_types, ab)}
        scored.logits = scored.logits * np.array([a for a, _ in ab]) + np.array([c for _, c in ab])
    val_metrics = window_metrics(scored.y, scored.logits, defect_types)
    val_events = event_metrics(scored, val_segs, sources, defect_types, 1)
    model.cpu()

    cfg_dump = cfg.model_dump(mode="json")
    meta: dict[str, Any] = {
        "data_seeds": sorted({src.seed for src in sources if src.seed is not None}),
        "data": [{"source": src.name, "seed": src.seed, "sim_config": src.sim_config,
                  "strands": len(src.heats.strands),
                  "readings": src.heats.readings.num_rows,
                  "events": src.heats.manifest.get("counts", {}).get("events")}
                 for src in sources],
        "readings": read_stats,
        "split": {"by": "heat", "val_fraction": cfg.val_fraction, "seed": cfg.seed, **split},
        "train_config": cfg_dump,
        "sampling": {"training_windows": len(sampler), "windows_by_category": sampler.counts,
                     "drawn_share": sampler.shares},
        "input_stats": {"fitted_on": "every reading of the training heats (the steps of "
                        "the training windows)",
                        "readings": int(sum(len(g) for g in train_segs)),
                        "relative_std": None if rel_std is None else "std of x_t - x_first "
                        "over training windows at evenly spaced starts"},
        "epochs_run": len(history), "best_epoch": best_epoch, "kept_epoch": kept_epoch,
        "stopped": stopped,
        "early_stopping": {"metric": cfg.early_stopping.metric, "best": best_val,
                           "keep": cfg.early_stopping.keep},
        "history": history,
        "calibration": calibration,
        "val_metrics_uncalibrated": raw_metrics,
        "val_metrics": val_metrics,
        "val_events": val_events,
        "wall_time_s": round(time.perf_counter() - t_start, 1),
        "device": str(device), "threads": torch.get_num_threads(),
        "torch_version": str(torch.__version__),
    }
    return TrainResult(model, channels, list(defect_types), window, meta, history)


def run(sources: Sequence[Source], model_config: dict[str, Any], cfg: TrainConfig, out: str | Path,
        *, command: str | None = None, progress: bool = True,
        log: Callable[[str], None] = print, extra_metadata: dict[str, Any] | None = None
        ) -> tuple[str, TrainResult]:
    """Train and write the checkpoint; returns (model_id, result).

    With ``cfg.members`` > 1 it trains that many runs one after the other, each with its own
    seed (weights, draws and heat split), and writes them as one ensemble checkpoint: runs of
    one recipe agree on the defects and differ in where they raise confident false alarms,
    which their average keeps down (docs/training.md). The result's metadata is the
    ensemble's: each member's full training metadata under ``members``."""
    from streamer.model.checkpoint import save_checkpoint

    if cfg.members == 1:
        res = train(sources, model_config, cfg, progress=progress, log=log)
        meta = {**res.metadata, "command": command, **(extra_metadata or {})}
        res.metadata = meta
        model_id = save_checkpoint(out, res.model, channels=res.channels,
                                   defect_types=tuple(res.defect_types), window=res.window,
                                   metadata=meta)
        return model_id, res
    return _run_members(sources, model_config, cfg, out, command=command, progress=progress,
                        log=log, extra_metadata=extra_metadata)


def _run_members(sources: Sequence[Source], model_config: dict[str, Any], cfg: TrainConfig,
                 out: str | Path, *, command: str | None, progress: bool,
                 log: Callable[[str], None], extra_metadata: dict[str, Any] | None
                 ) -> tuple[str, TrainResult]:
    import tempfile

    from streamer.model.checkpoint import load_checkpoint, save_checkpoint, save_ensemble

    t_start = time.perf_counter()
    budget_s = cfg.max_minutes * 60
    loaded, metas = [], []
    with tempfile.TemporaryDirectory(prefix="streamer-members-") as tmp:
        for k in range(cfg.members):
            guard = 0.0
            if budget_s:  # what is left, shared by the members still to train
                left = budget_s - (time.perf_counter() - t_start)
                guard = max(left / (cfg.members - k), 1.0) / 60
            member_cfg = cfg.model_copy(update={"seed": cfg.seed + k, "members": 1,
                                                "max_minutes": guard})
            log(f"member {k + 1}/{cfg.members}: seed {member_cfg.seed}")
            res = train(sources, model_config, member_cfg, progress=progress, log=log)
            path = Path(tmp) / f"member{k}.pt"
            save_checkpoint(path, res.model, channels=res.channels,
                            defect_types=tuple(res.defect_types), window=res.window,
                            metadata=res.metadata)
            loaded.append(load_checkpoint(path))
            metas.append({"model_id": loaded[-1].model_id, **res.metadata})
            log(f"member {k + 1}/{cfg.members}: model {loaded[-1].model_id}, "
                f"{res.metadata['wall_time_s']:.0f} s")
    meta = {"train_config": cfg.model_dump(mode="json"), "members": metas,
            "wall_time_s": round(time.perf_counter() - t_start, 1),
            "command": command, **(extra_metadata or {})}
    model_id = save_ensemble(out, loaded, metadata=meta)
    ens = load_checkpoint(out)
    return model_id, TrainResult(ens.model, ens.channels, ens.defect_types, ens.window,
                                 ens.metadata, [])
