"""The extraction registry: a run's tables and the functions that turn them into moments.

An *extraction function* ``fn(outputs, years, **args) -> float`` reads the tables of one run
(``Outputs``) and returns a moment's simulated value; ``@extractor`` registers it in
``EXTRACTORS`` with the range its value can take, the arguments that name ``metrics``
columns and the presets it serves. ``calibration.moments`` (descriptive moments) and
``calibration.studies`` (published studies' estimators) register theirs here, and
``calibration.moments.load_targets`` checks each moment against this registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.config import PRESETS


@dataclass
class Outputs:
    """The tables of one run that extraction functions read."""

    metrics: pd.DataFrame
    units: pd.DataFrame
    areas: pd.DataFrame
    ages: pd.DataFrame

    @classmethod
    def from_model(cls, model: Any) -> Outputs:
        """The tables of a model that has run."""
        rec = model.recorder
        return cls(rec.metrics_frame(), rec.units_frame(), rec.areas_frame(), rec.ages_frame())

    @classmethod
    def from_dir(cls, run_dir: Path) -> Outputs:
        """The tables of a run folder written by ``sim.outputs.write_run``."""
        d = Path(run_dir)
        return cls(*(pd.read_parquet(d / f"{t}.parquet")
                     for t in ("metrics", "units", "areas", "ages")))


def in_years(df: pd.DataFrame, years: tuple[int, int]) -> pd.DataFrame:
    """The rows of ``df`` whose year lies in ``[first, last]``."""
    return df[(df["year"] >= years[0]) & (df["year"] <= years[1])]


def schools_in(out: Outputs, years: tuple[int, int]) -> pd.DataFrame:
    """The unit rows of the schools with pupils, in the years."""
    u = in_years(out.units, years)
    return u[u["kind"].str.startswith("school") & (u["enrolled"] > 0)]

@dataclass(frozen=True)
class Extractor:
    """An extraction function and what it needs.

    ``valid`` is the range of its value, ``metric_args`` the arguments that name ``metrics``
    columns, ``choices`` the allowed values of arguments that take one of a few.
    """

    fn: Callable[..., float]
    valid: tuple[float, float] = (0.0, 1.0)
    metric_args: tuple[str, ...] = ()
    presets: tuple[str, ...] = PRESETS
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = tuple(inspect.signature(self.fn).parameters)[2:]
        object.__setattr__(self, "params", names)


EXTRACTORS: dict[str, Extractor] = {}


def extractor(valid: tuple[float, float] = (0.0, 1.0), metric_args: tuple[str, ...] = (),
              presets: tuple[str, ...] = PRESETS,
              choices: dict[str, tuple[str, ...]] | None = None) -> Callable:
    """Register an extraction function ``fn(outputs, years, **args) -> float``."""
    def register(fn: Callable[..., float]) -> Callable[..., float]:
        EXTRACTORS[fn.__name__] = Extractor(fn, valid, metric_args, presets, choices or {})
        return fn
    return register
