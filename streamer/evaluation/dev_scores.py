"""Saved scores of development heats: score once per model, choose for any ensemble of them.

Scoring the development heats is the chooser's whole cost (14-16 minutes per model for
three seeds on two cores); sweeping thresholds over the scores takes seconds. An ensemble's
probability is the mean, or the largest, of its members' (:mod:`streamer.model.ensemble`), so
its scores are the mean (the maximum) of theirs, and an ensemble of M members needs M
scorings, not one per candidate ensemble. ``python -m streamer.evaluation.thresholds MODEL
--save-scores FILE`` writes one model's scores; ``--scores FILE`` (once per member, for an
ensemble ``MODEL``) reads them instead of scoring. What is checked before scores are used:

- the file's model id is the model's (an ensemble's own saved scores too), or one member's
  of an ensemble, each member exactly once (scores of another model, or a member left out,
  would choose thresholds for a model that is not the one they are written into);
- its heats are those of the run (seeds, strands per caster, hours, simulator config,
  min_fill) and every strand has the same name and number of windows;
- its defect types are the model's, in order.

The file is a NumPy ``.npz`` (no pickle): ``meta`` (JSON text) and one ``[windows, K]``
float32 array per strand, ``s0``, ``s1``, ... in the order of ``meta["strands"]``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "streamer-dev-scores/1"
HEATS_KEYS = ("seeds", "strands_per_caster", "hours", "sim_config", "min_fill")
META_KEYS = ("model_id", "defect_types", "strands", *HEATS_KEYS)


class ScoresError(ValueError):
    """A scores file cannot be used for this run; the message says which file and why."""


def save_scores(path: str | Path, scores: Sequence[np.ndarray], strands: Sequence[str], *,
                model_id: str, defect_types: Sequence[str], heats: Mapping[str, Any]) -> None:
    """Write one model's scores of development heats (``heats``: the :data:`HEATS_KEYS`)."""
    if len(scores) != len(strands):
        raise ValueError(f"{len(scores)} score arrays for {len(strands)} strands")
    meta = {"format": FORMAT, "model_id": model_id, "defect_types": list(defect_types),
            "strands": list(strands), **{k: heats[k] for k in HEATS_KEYS}}
    arrays = {f"s{i}": np.asarray(s, dtype=np.float32) for i, s in enumerate(scores)}
    with open(path, "wb") as f:  # np.savez would append .npz to a name without it
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)


def load_scores(path: str | Path) -> tuple[dict[str, Any], list[np.ndarray]]:
    """(meta, per-strand scores) of a file written by :func:`save_scores`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ScoresError(f"{path}: not a scores file ({FORMAT})")
            missing = [k for k in META_KEYS if k not in meta]
            if missing:
                raise ScoresError(f"{path}: not a scores file (no {', '.join(missing)})")
            scores = [z[f"s{i}"] for i in range(len(meta["strands"]))]
    except ScoresError:
        raise
    except FileNotFoundError:
        raise ScoresError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise ScoresError(f"{path}: not a readable scores file ({exc})") from None
    return meta, scores


def ensemble_scores(files: Sequence[str | Path], *, member_ids: Sequence[str],
                    defect_types: Sequence[str], heats: Mapping[str, Any],
                    strands: Sequence[str], windows: Sequence[int],
                    model_id: str | None = None, combine: str = "mean") -> list[np.ndarray]:
    """The ``combine`` (:func:`combined`) over ``files`` (one per member id, any order) of
    their per-strand scores, after the checks in the module docstring; one file of
    ``model_id`` itself (an ensemble's own saved scores) is taken as it is. Raises
    :class:`ScoresError`."""
    read = [(path, *load_scores(path)) for path in files]
    if model_id is not None and len(read) == 1 and read[0][1].get("model_id") == model_id:
        member_ids = [model_id]
    if len(files) != len(member_ids):
        raise ScoresError(f"{len(files)} --scores file(s) for a model of {len(member_ids)} "
                          f"member(s) ({', '.join(member_ids)}): give one per member")
    seen: dict[str, str | Path] = {}
    for path, meta, scores in read:
        mid = meta.get("model_id")
        if mid not in member_ids:
            raise ScoresError(f"{path}: scores of model {mid}, not of "
                              f"{' or '.join(member_ids)}")
        if mid in seen:
            raise ScoresError(f"{path}: model {mid} again (also {seen[mid]})")
        seen[mid] = path
        check_heats(path, meta, defect_types, heats)
        check_strands(path, meta, scores, strands, windows, len(defect_types))
    return combined([scores for _, _, scores in read], combine)


def check_heats(path: str | Path, meta: Mapping[str, Any], defect_types: Sequence[str],
                heats: Mapping[str, Any]) -> None:
    """ScoresError unless the file's defect types and heats (:data:`HEATS_KEYS`) are these."""
    if meta.get("defect_types") != list(defect_types):
        raise ScoresError(f"{path}: defect types {meta.get('defect_types')} != "
                          f"{list(defect_types)}")
    for key in HEATS_KEYS:
        if meta.get(key) != heats[key]:
            raise ScoresError(f"{path}: {key} {meta.get(key)!r} != this run's "
                              f"{heats[key]!r} (other heats)")


def check_strands(path: str | Path, meta: Mapping[str, Any], scores: Sequence[np.ndarray],
                  strands: Sequence[str], windows: Sequence[int], k: int) -> None:
    """ScoresError unless the file holds ``strands``, each with ``windows`` rows of ``k``."""
    if meta.get("strands") != list(strands):
        raise ScoresError(f"{path}: its strands are not this run's")
    for name, s, n in zip(strands, scores, windows):
        if s.shape != (n, k):
            raise ScoresError(f"{path}: {name}: scores of shape {s.shape}, expected ({n}, {k})")


def combined(members: Sequence[Sequence[np.ndarray]], combine: str = "mean"
             ) -> list[np.ndarray]:
    """Per strand, what an ensemble of ``members`` (each a list of per-strand scores) scores:
    the mean of their scores (float32, summed in float64) or, ``combine="max"``, the largest."""
    if combine == "max":
        return [np.max([m[i] for m in members], axis=0).astype(np.float32)
                for i in range(len(members[0]))]
    if combine != "mean":
        raise ValueError(f"combine must be mean or max, got {combine!r}")
    n = len(members)
    return [(np.sum([m[i].astype(np.float64) for m in members], axis=0) / n).astype(np.float32)
            for i in range(len(members[0]))]
