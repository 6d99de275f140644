"""Schools and daycares: their state arrays and their ids.

Unit ids are the names that scenario files, ``units.parquet`` and the figures use:
``S003`` is school index 3 (lower schools first, then upper), ``D012`` daycare index 12.
This module is the one place that formats and parses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sim.model import SegregationModel

SCHOOL, DAYCARE = "school", "daycare"
KINDS = (SCHOOL, DAYCARE)
PREFIX = {SCHOOL: "S", DAYCARE: "D"}
LOWER, UPPER = 0, 1  # school levels: grades 1-6 and 7-9
LEVEL_NAMES = ("lower", "upper")
# The age convention, the one for every age in the model, its tables and its moments: a
# child's age is the calendar year minus its birth year ("age at the end of the year", as
# Helsinki's population statistics count it). A child is 0 in the year it is born (births
# come first in the year, so age 0 covers its first year of life), 1 the next year, and
# starts grade 1 at 7, as Finnish children start school in the year they turn seven.
LEVEL_AGES = ((7, 12), (13, 15))  # pupil ages of each level
ENTRY_AGE = (7, 13)  # grade 1 and grade 7


def unit_id(kind: str, index: int) -> str:
    """The id of unit ``index`` of ``kind`` (``"school"`` or ``"daycare"``), e.g. ``S003``."""
    return f"{PREFIX[kind]}{int(index):03d}"


def unit_ids(kind: str, indices: np.ndarray | range | list[int]) -> list[str]:
    """Ids of several units of one kind."""
    return [unit_id(kind, i) for i in indices]


def parse_unit_id(uid: object, kind: str, n_units: int) -> int | None:
    """Index of ``uid`` among ``n_units`` units of ``kind``, or ``None`` if it names none."""
    prefix = PREFIX[kind]
    if not (isinstance(uid, str) and uid[:1] == prefix and uid[1:].isdigit()):
        return None
    index = int(uid[1:])
    return index if index < n_units else None


def id_range(kind: str, n_units: int) -> str:
    """The allowed ids, for error messages: ``"a school id S000..S013"``."""
    return f"a {kind} id {unit_id(kind, 0)}..{unit_id(kind, max(n_units - 1, 0))}"


@dataclass
class Schools:
    """State of every school unit, one entry per school (lower units first)."""

    cell: np.ndarray
    level: np.ndarray
    emphasis: np.ndarray  # has an emphasised (aptitude-admitted) class
    capacity: np.ndarray  # seats now, incl. temporary places
    design_capacity: np.ndarray  # planned seats (levers set this)
    rep_outcome: np.ndarray
    rep_comp: np.ndarray
    rep_perceived: np.ndarray  # (language group, school)
    mean_outcome: np.ndarray
    resources: np.ndarray  # per-pupil resources, base funding = 1
    needs_funding: np.ndarray  # euros a year from needs-based levers
    turnover: np.ndarray
    open: np.ndarray  # closed schools take no new intake
    trust: np.ndarray  # engagement: added to the local families' perception
    optout: np.ndarray  # engagement: factor on local families' looking elsewhere

    @classmethod
    def create(cls, cell: np.ndarray, level: np.ndarray, emphasis: np.ndarray,
               turnover: float) -> Schools:
        """Schools at ``cell`` with base resources, no seats yet and no reputation."""
        n = len(cell)
        return cls(cell=cell, level=level, emphasis=emphasis,
                   capacity=np.zeros(n, dtype=np.int64),
                   design_capacity=np.zeros(n, dtype=np.int64), rep_outcome=np.zeros(n),
                   rep_comp=np.zeros(n), rep_perceived=np.zeros((2, n)),
                   mean_outcome=np.zeros(n), resources=np.ones(n), needs_funding=np.zeros(n),
                   turnover=np.full(n, turnover), open=np.ones(n, dtype=bool),
                   trust=np.zeros(n), optout=np.ones(n))

    def append(self, **values: object) -> int:
        """Add one school with the given values (others: as a new unit); returns its index."""
        for name, arr in vars(self).items():
            pad = np.full((*arr.shape[:-1], 1), values.get(name, 0), dtype=arr.dtype)
            setattr(self, name, np.concatenate([arr, pad], axis=-1))
        return len(self.cell) - 1


@dataclass
class Daycares:
    """State of every daycare unit."""

    cell: np.ndarray
    private: np.ndarray
    capacity: np.ndarray
    quality: np.ndarray
    rep_comp: np.ndarray
    rep_perceived: np.ndarray  # (language group, daycare)
    resources: np.ndarray
    needs_funding: np.ndarray
    trust: np.ndarray

    @classmethod
    def create(cls, cell: np.ndarray, private: np.ndarray, quality: np.ndarray) -> Daycares:
        """Daycares at ``cell`` with base resources and no seats yet."""
        n = len(cell)
        return cls(cell=cell, private=private, capacity=np.zeros(n, dtype=np.int64),
                   quality=quality, rep_comp=np.zeros(n), rep_perceived=np.zeros((2, n)),
                   resources=np.ones(n), needs_funding=np.zeros(n), trust=np.zeros(n))


# Units-table kind -> label kind of ``City.label`` (area kinds are the same).
LABEL_KIND = {"school_lower": "school", "school_upper": "school", "daycare_municipal": "daycare",
              "daycare_private": "daycare"}


def add_labels(df: pd.DataFrame, model: SegregationModel, index_col: str) -> pd.DataFrame:
    """Insert ``source_id`` and ``name`` columns after ``index_col``.

    They are the units' and areas' ids and names in the input data (cities read from files)
    or their synthetic labels (``City.label``); a catchment carries its school's.

    Args:
        df: A units or areas table with ``kind`` and ``index_col`` columns.
        model: The model that wrote it (for the schools of each catchment).
        index_col: ``index`` (units) or ``area_id`` (areas).

    Returns:
        A copy of ``df`` with the two columns.
    """
    ids, names = np.empty(len(df), dtype=object), np.empty(len(df), dtype=object)
    for kind, rows in df.groupby("kind", sort=False).indices.items():
        idx = df[index_col].to_numpy()[rows]
        if kind in ("catchment_lower", "catchment_upper"):  # k-th school of the level
            idx = model.level_ids(int(kind == "catchment_upper"))[idx]
            kind = "school"
        n = len(model.schools.cell) if kind == "school" else int(idx.max()) + 1
        kind_ids, kind_names = model.city.label(LABEL_KIND.get(kind, kind), n)
        ids[rows], names[rows] = kind_ids[idx], kind_names[idx]
    out = df.copy()
    pos = out.columns.get_loc(index_col) + 1
    out.insert(pos, "source_id", ids)
    out.insert(pos + 1, "name", names)
    return out
