"""Shared fixtures: tiny configs that run in well under a second."""

from __future__ import annotations

import pytest

from sim.config import Config, load_config

TINY = [
    "city.width=20",
    "city.height=16",
    "city.n_families=400",
    "city.n_districts=6",
    "city.n_lower_schools=4",
    "city.n_upper_schools=2",
    "city.n_daycares=6",
    "years=4",
    "output.progress=false",
]


def tiny_config(*overrides: str) -> Config:
    """A validated tiny config with extra Hydra overrides."""
    return load_config([*TINY, *overrides])


@pytest.fixture
def tiny() -> Config:
    """A tiny config (400 families, 4 years)."""
    return tiny_config()
