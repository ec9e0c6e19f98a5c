"""Model checkpoints: one file that carries everything needed to run the model.

The file is ``torch.save`` of a plain dict (tensors and JSON-like values only, so it loads
with ``weights_only=True``: no pickled code runs on load)::

    format_version  int, FORMAT_VERSION
    model_id        short sha256 hex of config + channels + defect types + window + weights
    config          the full model config (every default filled in; data.window/channels set)
    channels        ordered channel names, one per input feature
    defect_types    names of the logits, in order
    window          steps per window
    input_stats     {"mean": [...], "std": [...]} z-score stats (copy of the buffers) or None
    metadata        training metadata: data_seed, metrics, anything JSON-like; not part
                    of model_id. Optional ``operating_thresholds``: per-type alarm
                    thresholds and how they were chosen (streamer.alarm.thresholds)
    state_dict      the weights and buffers

An ensemble file (``kind: "ensemble"``, :func:`save_ensemble`) has the same top-level
channels, defect_types, window and metadata, and instead of config / input_stats /
state_dict a list ``members``, each with its own model_id, config, input_stats and
state_dict, and ``combine`` ("mean" or "max": how their probabilities make the ensemble's;
a file without it, from before "max" existed, is a mean); its model_id is the hash of the
members' ids in order and, for "max", the combination (streamer.model.ensemble).

``load_checkpoint`` checks every part and raises :class:`CheckpointError` naming what is
wrong; it never returns a model with random weights. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import numbers
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from streamer.model.ensemble import DefectEnsemble, check_combine
from streamer.model.lstm import (
    ModelConfigError,
    SteelDefectLSTM,
    default_output_names,
    validate_config,
)

FORMAT_VERSION = 1
_KEYS = (
    "format_version",
    "model_id",
    "config",
    "channels",
    "defect_types",
    "window",
    "input_stats",
    "metadata",
    "state_dict",
)
_ENSEMBLE_KEYS = ("format_version", "kind", "model_id", "channels", "defect_types", "window",
                  "metadata", "members")
_MEMBER_KEYS = ("model_id", "config", "input_stats", "state_dict")


class CheckpointError(Exception):
    """A checkpoint cannot be written or used; the message says which part and why."""


@dataclass
class LoadedModel:
    model: SteelDefectLSTM | DefectEnsemble  # in eval mode
    config: dict[str, Any]  # an ensemble's: its first member's
    channels: list[str]
    defect_types: list[str]
    window: int
    metadata: dict[str, Any] = field(default_factory=dict)
    model_id: str = ""
    member_ids: list[str] = field(default_factory=list)  # an ensemble's members', in order
    combine: str = "mean"  # an ensemble's: how its members' probabilities make its own

    @property
    def scored_ids(self) -> list[str]:
        """The models whose scores make this one's: its members', or its own."""
        return list(self.member_ids) or [self.model_id]


def model_id_of(
    config: dict[str, Any],
    channels: list[str],
    defect_types: list[str],
    window: int,
    state_dict: dict[str, torch.Tensor],
) -> str:
    """Content hash (12 hex digits of sha256) of what determines the model's outputs."""
    h = hashlib.sha256()
    head = {"config": config, "channels": channels, "defect_types": defect_types, "window": window}
    h.update(json.dumps(head, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"\n{name}:{t.dtype}:{list(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:12]


def ensemble_id_of(member_ids: list[str], combine: str = "mean") -> str:
    """An ensemble's id: the members' content hashes, in order (the first explains), and
    the combination unless it is the mean (whose ids predate the choice)."""
    head = "ensemble:" if combine == "mean" else f"ensemble:{combine}:"
    return hashlib.sha256((head + ",".join(member_ids)).encode()).hexdigest()[:12]


def _plain(value: Any, where: str) -> Any:
    """value as JSON-like plain types (what weights_only loading accepts), or CheckpointError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{where}: keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # numpy scalar
        return _plain(value.item(), where)
    raise CheckpointError(f"{where}: {type(value).__name__} is not a plain JSON-like value")


def _weights(model: SteelDefectLSTM) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """(CPU copy of the state dict, the z-score stats as lists or None): what a file stores
    of one model."""
    state_dict = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    if "input_mean" not in state_dict:
        return state_dict, None
    return state_dict, {"mean": state_dict["input_mean"].tolist(),
                        "std": state_dict["input_std"].tolist()}


def save_checkpoint(
    path: str | Path,
    model: SteelDefectLSTM,
    *,
    channels: list[str] | tuple[str, ...] | None = None,
    defect_types: list[str] | tuple[str, ...] | None = None,
    window: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Write the model atomically to ``path``; return its model id.

    channels / window default to the config's ``data`` section; if both are given they must
    agree. defect_types defaults to the defect type names (3 outputs) or ("defect",) (1).
    """
    config = validate_config(model.config)
    data = config["data"]
    if channels is None:
        channels = data["channels"]
    if channels is None:
        raise CheckpointError("channels: required (the config's data.channels is not set)")
    channels = [str(c) for c in channels]
    if data["channels"] is not None and list(data["channels"]) != channels:
        raise CheckpointError("channels differ from the config's data.channels")
    if len(channels) != model.input_size:
        raise CheckpointError(
            f"channels: {len(channels)} names for {model.input_size} input features"
        )
    if len(set(channels)) != len(channels):
        raise CheckpointError("channels: duplicate names")
    window = int(data["window"] if window is None else window)
    if window < 2:
        raise CheckpointError(f"window: must be >= 2, got {window}")
    if defect_types is None:
        try:
            defect_types = default_output_names(model.num_outputs)
        except ValueError as exc:
            raise CheckpointError(f"defect_types: {exc}") from None
    defect_types = [str(d) for d in defect_types]
    if len(defect_types) != model.num_outputs:
        raise CheckpointError(
            f"defect_types: {len(defect_types)} names for {model.num_outputs} model outputs"
        )
    config["data"]["channels"] = channels
    config["data"]["window"] = window

    state_dict, input_stats = _weights(model)
    model_id = model_id_of(config, channels, defect_types, window, state_dict)
    payload = {
        "format_version": FORMAT_VERSION,
        "model_id": model_id,
        "config": config,
        "channels": channels,
        "defect_types": defect_types,
        "window": window,
        "input_stats": input_stats,
        "metadata": _plain(metadata or {}, "metadata"),
        "state_dict": state_dict,
    }

    _write_atomic(Path(path), payload)
    return model_id


def check_members(members: Sequence[LoadedModel]) -> None:
    """Raise CheckpointError unless ``members`` can make one ensemble: at least two single
    models sharing channels, defect types and window."""
    if len(members) < 2:
        raise CheckpointError(f"an ensemble needs at least 2 members, got {len(members)}")
    first = members[0]
    for i, m in enumerate(members):
        if isinstance(m.model, DefectEnsemble):
            raise CheckpointError(f"member {i} ({m.model_id}) is itself an ensemble")
        for name in ("channels", "defect_types", "window"):
            if getattr(m, name) != getattr(first, name):
                raise CheckpointError(f"member {i} ({m.model_id}): {name} differs from member "
                                      f"0's ({first.model_id})")


def save_ensemble(path: str | Path, members: list[LoadedModel],
                  metadata: dict[str, Any] | None = None, combine: str = "mean") -> str:
    """Write the loaded checkpoints ``members`` as one ensemble file; return its model id.

    They must share channels, defect types and window. Each member keeps its own id; their
    operating thresholds do not carry over (an ensemble's are chosen for it). The metadata
    gets the members' ``data_seeds`` and ``data`` (their training heats) merged. ``combine``:
    streamer.model.ensemble.COMBINE."""
    check_members(members)
    try:
        check_combine(combine)
    except ModelConfigError as exc:
        raise CheckpointError(str(exc)) from None
    first = members[0]
    parts = []
    for m in members:
        state, stats = _weights(m.model)
        parts.append({"model_id": m.model_id, "config": m.config, "input_stats": stats,
                      "state_dict": state})
    model_id = ensemble_id_of([m.model_id for m in members], combine)
    # the members' training data, so that the evaluation refuses their seeds and fits the
    # baselines on the same heats (streamer.evaluation.data.training_seeds, gbt_training)
    seeds = sorted({s for m in members for s in (m.metadata.get("data_seeds") or [])
                    if isinstance(s, int)})
    data: list[Any] = []
    for m in members:
        for src in m.metadata.get("data") or []:
            if src not in data:
                data.append(src)
    metadata = {"data_seeds": seeds, "data": data, **(metadata or {})}
    payload = {
        "format_version": FORMAT_VERSION,
        "kind": "ensemble",
        "model_id": model_id,
        "channels": list(first.channels),
        "defect_types": list(first.defect_types),
        "window": first.window,
        "metadata": _plain(metadata, "metadata"),
        "members": parts,
        "combine": combine,
    }
    _write_atomic(Path(path), payload)
    return model_id


def _write_atomic(path: Path, payload: dict[str, Any]) -> None:
    """torch.save to a temp file beside ``path``, fsync, rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_metadata(path: str | Path, updates: dict[str, Any]) -> str:
    """Set top-level metadata keys of an existing checkpoint in place; return its model id.

    Metadata is not part of the model id, so the id (and the outputs) stay the same: e.g. the
    operating thresholds chosen after training. The file is verified before and after."""
    path = Path(path)
    before = load_checkpoint(path)  # refuse to touch a damaged checkpoint
    payload = _read(path, "cpu")
    payload["metadata"] = {**payload["metadata"], **_plain(updates, "metadata")}
    _write_atomic(path, payload)
    after = load_checkpoint(path)
    if after.model_id != before.model_id:  # cannot happen unless model_id_of changes
        raise CheckpointError(f"checkpoint {path}: model id changed on a metadata update")
    return after.model_id


def _read(path: Path, map_location: Any) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: not found")
    raw = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        # truncated zip, random bytes, disallowed pickle globals, ...: all "cannot read"
        text = str(exc).strip()
        reason = text.splitlines()[0].split(". ")[0][:160] if text else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path}: corrupt, truncated or not a streamer checkpoint ({reason})"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"checkpoint {path}: not a streamer checkpoint (top level is not a dict)"
        )
    return payload


def load_checkpoint(
    path: str | Path,
    *,
    expect_channels: list[str] | tuple[str, ...] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedModel:
    """Load, verify and build the model (eval mode); CheckpointError on any problem."""
    path = Path(path)
    payload = _read(path, map_location)
    where = f"checkpoint {path}"

    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format version {version!r}, this streamer reads version {FORMAT_VERSION}"
        )
    ensemble = payload.get("kind") == "ensemble"
    missing = [k for k in (_ENSEMBLE_KEYS if ensemble else _KEYS) if k not in payload]
    if missing:
        raise CheckpointError(f"{where}: missing {', '.join(missing)}")
    channels, defect_types = payload["channels"], payload["defect_types"]
    window, stored_id = payload["window"], payload["model_id"]
    if not (isinstance(channels, list) and all(isinstance(c, str) for c in channels)):
        raise CheckpointError(f"{where}: channels is not a list of names")
    if not (isinstance(defect_types, list) and all(isinstance(d, str) for d in defect_types)):
        raise CheckpointError(f"{where}: defect_types is not a list of names")
    if not isinstance(window, int) or isinstance(window, bool):
        raise CheckpointError(f"{where}: window is not an integer")
    if not isinstance(payload["metadata"], dict):
        raise CheckpointError(f"{where}: metadata is not a mapping")
    if expect_channels is not None and list(expect_channels) != channels:
        raise CheckpointError(f"{where}: {_channel_diff(channels, list(expect_channels))}")

    member_ids: list[str] = []
    combine = "mean"
    if not ensemble:
        model = _build_member(where, payload, channels, defect_types, window)
        config = payload["config"]
    else:
        members = payload["members"]
        if not isinstance(members, list) or len(members) < 2:
            raise CheckpointError(f"{where}: members is not a list of at least 2 models")
        built = []
        for i, part in enumerate(members):
            lacking = ([] if not isinstance(part, dict)
                       else [k for k in _MEMBER_KEYS if k not in part])
            if not isinstance(part, dict) or lacking:
                raise CheckpointError(f"{where}: member {i}: missing {', '.join(lacking) or 'all'}")
            built.append(_build_member(f"{where}: member {i}", part, channels, defect_types,
                                       window))
        combine = payload.get("combine", "mean")
        try:
            check_combine(combine)
        except ModelConfigError as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        actual = ensemble_id_of([str(p["model_id"]) for p in members], combine)
        if actual != stored_id:
            raise CheckpointError(f"{where}: members' hash {actual} != stored model id "
                                  f"{stored_id!r} (members or their combination changed, or "
                                  f"members reordered)")
        try:
            model = DefectEnsemble(built, combine)
        except ModelConfigError as exc:
            raise CheckpointError(f"{where}: {exc}") from None
        config = members[0]["config"]
        member_ids = [str(p["model_id"]) for p in members]
    model.to(map_location).eval()
    return LoadedModel(
        model=model,
        config=config,
        channels=channels,
        defect_types=defect_types,
        window=window,
        metadata=payload["metadata"],
        model_id=stored_id,
        member_ids=member_ids,
        combine=combine,
    )


def _build_member(where: str, part: dict[str, Any], channels: list[str],
                  defect_types: list[str], window: int) -> SteelDefectLSTM:
    """One model from its config, weights and stats; every check that a single file gets."""
    config, state_dict, stored_id = part["config"], part["state_dict"], part["model_id"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: config is not a mapping")
    if not (
        isinstance(state_dict, dict)
        and all(isinstance(v, torch.Tensor) for v in state_dict.values())
    ):
        raise CheckpointError(f"{where}: state_dict is not a mapping of tensors")

    actual_id = model_id_of(config, channels, defect_types, window, state_dict)
    if actual_id != stored_id:
        raise CheckpointError(
            f"{where}: content hash {actual_id} != stored model id {stored_id!r} "
            "(weights or config were modified or damaged)"
        )
    try:
        model = SteelDefectLSTM(config)
    except ModelConfigError as exc:
        raise CheckpointError(f"{where}: config does not build a model: {exc}") from None
    if config["data"].get("channels") != channels or config["data"].get("window") != window:
        raise CheckpointError(f"{where}: config data section disagrees with channels/window")
    if len(defect_types) != model.num_outputs:
        raise CheckpointError(
            f"{where}: {len(defect_types)} defect types for {model.num_outputs} model outputs"
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: weights do not fit the config: {exc}") from None
    if part["input_stats"] is not None and "input_mean" in state_dict:
        stats = part["input_stats"]
        if (not isinstance(stats, dict)
                or not _close(stats.get("mean"), state_dict["input_mean"])
                or not _close(stats.get("std"), state_dict["input_std"])):
            raise CheckpointError(f"{where}: input_stats disagree with the model's buffers")
    return model


def _close(values: Any, tensor: torch.Tensor) -> bool:
    if not isinstance(values, list) or len(values) != tensor.numel():
        return False
    return all(
        math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) for a, b in zip(values, tensor.tolist())
    )


def _channel_diff(have: list[str], want: list[str]) -> str:
    if set(have) == set(want):
        i = next(i for i, (a, b) in enumerate(zip(have, want)) if a != b)
        return (
            f"channel order differs from the expected one: position {i} is {have[i]!r} in the "
            f"checkpoint, {want[i]!r} expected"
        )
    extra = [c for c in have if c not in want]
    lacking = [c for c in want if c not in have]
    return (
        f"channel list differs: checkpoint has {len(have)} channels, expected {len(want)}; "
        f"only in checkpoint: {extra}; missing from checkpoint: {lacking}"
    )
