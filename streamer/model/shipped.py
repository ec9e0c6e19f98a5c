"""Where the models shipped in the package lie (streamer/model/default/README.md).

Its own module so that commands find them without importing the daemon or torch."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# `model.shipped` -> file: the single model is the default; the ensemble (three runs averaged)
# has fewer false alarms for three times the inference work (docs/operations.md).
SHIPPED_MODELS = {"single": "model.pt", "ensemble": "ensemble.pt"}


def default_model_path(shipped: str = "single") -> Path:
    """A model shipped in the package."""
    return Path(str(resources.files("streamer.model").joinpath("default",
                                                               SHIPPED_MODELS[shipped])))
