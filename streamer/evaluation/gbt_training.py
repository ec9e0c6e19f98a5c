"""Which heats the boosted-tree baseline trains on, and fitting it.

One path for ``streamer evaluate`` and the threshold chooser
(``python -m streamer.evaluation.thresholds --system gbt``): thresholds chosen for the trees
on development heats only mean something if the report scores the very same trees, so both
pick the training heats by the same rule and fit with the same settings.

The training heats, first that applies:

1. ``data_dir``: a heat folder (``caster-sim generate``);
2. ``seed`` given: the held-out heats' simulator config with that seed;
3. the model's own simulated training heats, regenerated from the config ``streamer train``
   recorded in the checkpoint (``metadata.data[*].sim_config``), so that the trees learn
   from what the model learnt from;
4. the held-out config with the model's first training seed (else 0).

Never the held-out seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_STRIDE = 3
DEFAULT_MAX_WINDOWS = 60_000


class GbtSourceError(ValueError):
    """The trees' training heats cannot be had, or would leak the held-out heats."""


@dataclass
class GbtHeats:
    heats: Any  # simulators.heatfile.HeatSet
    seed: int | None
    source: dict[str, Any]


def recorded_sim_sources(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Simulator configs of the training data recorded by `streamer train` (metadata.data)."""
    out = []
    for src in metadata.get("data") or []:
        if isinstance(src, dict) and isinstance(src.get("sim_config"), dict) \
                and isinstance(src["sim_config"].get("seed"), int):
            out.append(src["sim_config"])
    return out


def manifest_seed(manifest: Mapping[str, Any]) -> int | None:
    """The simulator seed a heat folder's manifest records (None if it records none)."""
    seed = manifest.get("seed")
    if seed is None and isinstance(manifest.get("config"), dict):
        seed = manifest["config"].get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def gbt_training_heats(metadata: Mapping[str, Any], *, heldout_seed: int | None,
                       heldout_sim_config: Mapping[str, Any] | None,
                       data_dir: Path | None = None, seed: int | None = None) -> GbtHeats:
    """The trees' training heats by the rule of the module docstring.

    Raises GbtSourceError (a one-line reason) for a leak or heats that cannot be read."""
    from simulators.caster import generate, make_config
    from simulators.caster.config import ConfigError
    from simulators.heatfile import HeatFileError, read_heats
    from streamer.evaluation.data import training_seeds

    if data_dir is not None and seed is not None:
        raise GbtSourceError("give at most one of a GBT training heat folder and seed")
    try:
        if data_dir is not None:
            heats = read_heats(data_dir)
            out = GbtHeats(heats, manifest_seed(heats.manifest),
                           {"data": str(data_dir), "seed": manifest_seed(heats.manifest)})
        else:
            recorded = None
            if seed is None:
                for rec in recorded_sim_sources(metadata):
                    try:  # a config recorded by an older simulator may no longer validate
                        recorded = make_config(rec)
                        break
                    except ConfigError:
                        continue
            if recorded is not None and recorded.seed != heldout_seed:
                out = GbtHeats(generate(recorded), recorded.seed,
                               {"simulate": True, "seed": recorded.seed,
                                "config": "the checkpoint's recorded training sim_config"})
            else:
                seeds = sorted(training_seeds(dict(metadata)))
                g_seed = seed if seed is not None else (seeds[0] if seeds else 0)
                if g_seed == heldout_seed:
                    raise GbtSourceError(f"GBT training seed {g_seed} equals the held-out seed; "
                                         "pass --gbt-train-seed N with another seed")
                if heldout_sim_config is None:
                    raise GbtSourceError("the held-out heats carry no simulator config to "
                                         "simulate GBT training heats from; pass "
                                         "--gbt-train-data DIR")
                out = GbtHeats(generate(make_config(dict(heldout_sim_config), seed=g_seed)),
                               g_seed, {"simulate": True, "seed": g_seed,
                                        "config": "the held-out sim config with this seed"})
    except (HeatFileError, ConfigError) as exc:
        raise GbtSourceError(f"GBT training heats: {exc}") from exc
    if out.seed is not None and out.seed == heldout_seed:
        raise GbtSourceError(f"GBT training heats have the held-out seed {out.seed}: "
                             "use other heats")
    return out


def fit_gbt(loaded: Any, source: GbtHeats, min_fill: int, *, stride: int = DEFAULT_STRIDE,
            max_windows: int | None = DEFAULT_MAX_WINDOWS, threads: int | None = 1,
            progress: bool = False) -> Any:
    """A GbtBaseline for the model's channels and types, fitted on ``source``. Its window
    is the part of the model's window that the model's LSTM reads (architecture.steps): the
    trees see what the LSTM sees, not the model's baseline context.

    Raises GbtSourceError when the heats lack the model's channels or a class."""
    from streamer.evaluation.data import load_series
    from streamer.evaluation.gbt import GbtBaseline
    from streamer.model.lstm import read_steps

    heats = source.heats
    lacking = [c for c in loaded.channels if c not in heats.channels]
    if lacking:
        raise GbtSourceError(f"GBT training heats lack channels {lacking[:6]}")
    hz = float(heats.manifest.get("hz") or 1.0)
    series, _ = load_series(heats, loaded.channels, loaded.defect_types)
    try:
        gbt = GbtBaseline(list(loaded.defect_types), list(loaded.channels),
                          read_steps(loaded.config), hz,
                          threads=threads or None).fit(series, min_fill, stride, progress,
                                                       max_windows=max_windows or None)
    except ValueError as exc:
        raise GbtSourceError(f"GBT baseline: {exc}") from exc
    gbt.train_info["source"] = source.source
    return gbt


def training_fingerprint(train_info: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies a fitted tree set: its heats, windows, labels and parameters.

    Stored with thresholds chosen for the trees; ``streamer evaluate`` refuses to apply them
    to trees whose fingerprint differs."""
    keys = ("windows", "stride", "windows_available", "features", "positives", "params",
            "source")
    return {k: train_info.get(k) for k in keys}


def fingerprint_differences(recorded: Mapping[str, Any] | None,
                            train_info: Mapping[str, Any]) -> list[str]:
    """The fingerprint keys in which fitted trees (``train_info``) differ from a recorded
    fingerprint (as stored in JSON); [] when they are the same trees."""
    import json

    from streamer.json_file import json_default

    def as_json(d: Any) -> Any:  # tuples -> lists, numpy -> plain, as the record stores them
        return json.loads(json.dumps(d, default=json_default))

    want, have = as_json(recorded or {}), as_json(training_fingerprint(train_info))
    return sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
