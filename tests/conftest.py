"""Shared fixtures: tiny configs that run in well under a second."""

from __future__ import annotations

import pytest

from scenarios.base import Lever, build_levers
from sim.config import Config, load_config
from sim.model import SegregationModel

TINY = [
    "city.width=20",
    "city.height=16",
    "city.n_families=400",
    "city.n_districts=6",
    "city.n_lower_schools=4",
    "city.n_upper_schools=2",
    "city.n_daycares=6",
    "start=fresh",
    "behaviour=default",
    "years=4",
    "output.progress=false",
]


# The same city as plain values, for OmegaConf dot-lists: without the behaviour group choice,
# a structured config keeps the schema's behaviour, which is what behaviour=default selects.
TINY_VALUES = [ov for ov in TINY if not ov.startswith("behaviour=")]


def tiny_config(*overrides: str) -> Config:
    """A validated tiny config with extra Hydra overrides."""
    return load_config([*TINY, *overrides])


@pytest.fixture
def tiny() -> Config:
    """A tiny config (400 families, 4 years)."""
    return tiny_config()


def run_tiny(levers: list, *overrides: str, seed: int = 9, years: int = 6) -> SegregationModel:
    """Build and run a tiny model with the given levers; returns the finished model."""
    model = SegregationModel(tiny_config(f"seed={seed}", f"years={years}", *overrides),
                             levers=levers)
    model.run()
    return model


def lever(name: str, **kwargs: object) -> Lever:
    """Build one lever from its scenario-file spec."""
    (built,) = build_levers([{"lever": name, **kwargs}])
    return built
