"""Set-up phase: school and daycare seats from the initial demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.units import LEVEL_AGES

if TYPE_CHECKING:
    from sim.model import SegregationModel


def initial_capacities(model: SegregationModel) -> None:
    """Seats: the registers' where a city read from files gives them, else from demand.

    From demand, schools get ``school_capacity_slack`` times their catchment's pupils (at
    least 10); daycares ``daycare_capacity_slack`` times the children in early childhood
    education whose nearest daycare they are (at least 8).
    """
    cfg, f, ch = model.cfg, model.families, model.children
    home = f.cell[ch.family]
    for lev, (lo, hi) in enumerate(LEVEL_AGES):
        a = ch.active & (ch.age >= lo) & (ch.age <= hi)
        n = np.bincount(model.school_of_cell[lev, home[a]], minlength=len(model.schools.cell))
        sel = model.schools.level == lev
        cap = np.ceil(cfg.city.school_capacity_slack * np.maximum(n, 10))
        model.schools.design_capacity[sel] = cap[sel].astype(np.int64)
    _from_register(model.schools.design_capacity, model.city.school_capacity)
    model.schools.capacity[:] = model.schools.design_capacity
    a = ch.active & (ch.age >= 1) & (ch.age <= 6) & ch.ecec
    near = model.near_daycare[home[a], 0]
    n = np.bincount(near, minlength=len(model.daycares.cell))
    cap = np.ceil(cfg.city.daycare_capacity_slack * np.maximum(n, 8))
    model.daycares.capacity[:] = cap.astype(np.int64)
    _from_register(model.daycares.capacity, model.city.daycare_capacity)


def _from_register(seats: np.ndarray, register: np.ndarray | None) -> None:
    """Overwrite ``seats`` where the register gives a number (NaN: not given)."""
    if register is not None:
        known = np.isfinite(register)
        seats[known] = register[known].astype(np.int64)
