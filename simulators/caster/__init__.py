"""The caster simulator: heats with labelled defects and hard negatives.

Public API::

    from simulators.caster import SimConfig, generate, load_config
    heats = generate(load_config("configs/sim/default.yaml"))          # training set
    held_out = generate(load_config("configs/sim/default.yaml", seed=1001))  # new seed
"""

from simulators.caster.config import (
    ALL_NUISANCE_KINDS,
    NUISANCE_KINDS,
    ConfigError,
    EventRates,
    NuisanceRates,
    SimConfig,
    load_config,
    make_config,
)
from simulators.caster.generate import generate

__all__ = [
    "ALL_NUISANCE_KINDS", "NUISANCE_KINDS", "ConfigError", "EventRates", "NuisanceRates",
    "SimConfig", "generate", "load_config", "make_config",
]
