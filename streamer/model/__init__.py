"""The defect model: SteelDefectLSTM, ensembles of it, its config, checkpoints and the speed
benchmark.

Names are imported lazily so that ``import streamer.model`` does not pull in torch
(``from streamer.model import SteelDefectLSTM`` does).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SteelDefectLSTM": "lstm",
    "ModelConfig": "lstm",
    "ModelConfigError": "lstm",
    "validate_config": "lstm",
    "load_model_config": "lstm",
    "default_config": "lstm",
    "default_output_names": "lstm",
    "count_parameters": "lstm",
    "CheckpointError": "checkpoint",
    "LoadedModel": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_ensemble": "checkpoint",
    "DefectEnsemble": "ensemble",
    "FORMAT_VERSION": "checkpoint",
    "benchmark": "speed",
    "SpeedResult": "speed",
}

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "DefectEnsemble",
    "LoadedModel",
    "ModelConfig",
    "ModelConfigError",
    "SpeedResult",
    "SteelDefectLSTM",
    "benchmark",
    "count_parameters",
    "default_config",
    "default_output_names",
    "load_checkpoint",
    "load_model_config",
    "save_checkpoint",
    "save_ensemble",
    "validate_config",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
