"""Leavers who come back: the families that leave the city and return some years later.

About one in six families with children that leave Helsinki come back, typically when a
child is 5-6 years old, about to start school (``leavers_returning_share``, targets.csv).
A leaving family's return is decided when it leaves, from a yearly hazard over the years
ahead: ``sigmoid(return_logit + return_school_start * [a child aged 5-6 that year])``,
while it still has a child under 16. Drawing the whole path at once from the family's own
counter-based uniforms gives the same distribution as a draw every year, keeps nobody else's
numbers in play (common random numbers) and leaves only the returners to be kept: their
family and child slots stay reserved (``Pool.away``), so a returning child is the same
child, with its birth, moves and leaving on record (cohort accounts), and the family's Mesa
agent comes back with its ``unique_id`` (``families.uid``). Returners choose a dwelling by
the same choice model as arrivals, before the year's new families.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.phases import housing, population
from sim.rng import counter_uniform

if TYPE_CHECKING:
    from sim.model import SegregationModel

HORIZON = 16  # years ahead a return can happen in: a newborn's last childhood year is 15
SCHOOL_START = (5, 6)  # child ages of the raised return hazard (pre-primary, school start)
# "Does not come back": no year, not -1, since burn-in years are negative and a family
# leaving in year -30 may come back in year -28.
NO_RETURN = np.iinfo(np.int64).min


def return_years(model: SegregationModel, leave: np.ndarray) -> np.ndarray:
    """Year each leaving family comes back (``NO_RETURN``: it does not), for slots ``leave``."""
    dem = model.cfg.behaviour.demography
    ch = model.children
    n = len(leave)
    ahead = np.arange(1, HORIZON)  # years after leaving
    pos = np.full(model.families.capacity, -1, dtype=np.int64)
    pos[leave] = np.arange(n)
    kids = np.flatnonzero(model.children_of(leave))
    row = pos[ch.family[kids]]
    future = ch.age[kids, None] + ahead[None, :]  # each child's age in the years ahead
    school = np.zeros((n, len(ahead)), dtype=bool)
    has_child = np.zeros((n, len(ahead)), dtype=bool)
    np.logical_or.at(school, row, (future >= SCHOOL_START[0]) & (future <= SCHOOL_START[1]))
    np.logical_or.at(has_child, row, future <= 15)
    p = housing.sigmoid(dem.return_logit + dem.return_school_start * school) * has_child
    u = counter_uniform(model.streams.key("returns", model.year), leave, ahead)
    back = u < p
    first = np.argmax(back, axis=1)
    return np.where(back.any(axis=1), model.year + ahead[first], NO_RETURN)


def leave_city(model: SegregationModel, leave: np.ndarray) -> None:
    """Families ``leave`` leave the city; those that will come back keep their slots."""
    f, ch = model.families, model.children
    when = return_years(model, leave)
    comes_back = when != NO_RETURN
    away = leave[comes_back]
    population.remove_families(model, leave[~comes_back])
    model.recorder.book_exit(away)
    kids = np.flatnonzero(model.children_of(away))
    ch.school[kids], ch.daycare[kids] = -1, -1
    ch.left[kids] = True
    ch.send_away(kids)
    model.remove_family_agents(away)
    f.return_year[away] = when[comes_back]
    f.cell[away], f.tenure[away] = -1, -1
    f.send_away(away)


def age_away(model: SegregationModel) -> None:
    """Children away turn 16 and leave the child model; families away with none left go."""
    f, ch = model.families, model.children
    ch.free(np.flatnonzero(ch.away & (ch.age >= 16)))
    n_kids = np.bincount(ch.family[ch.away], minlength=f.capacity)
    f.free(np.flatnonzero(f.away & (n_kids == 0)))


def come_back(model: SegregationModel) -> tuple[np.ndarray, np.ndarray]:
    """Bring back the families due this year, unhoused: their slots and house-hunting keys.

    They keep their attributes and Mesa ids; the year's housing places them first
    (``phases.demography``), by the same dwelling choice as arrivals.
    """
    f, ch = model.families, model.children
    due = np.flatnonzero(f.away & (f.return_year == model.year))
    ch.bring_back(np.flatnonzero(model.children_of(due, among=ch.away)))
    f.bring_back(due)
    f.return_year[due] = -1
    f.arrived[due] = model.year  # like arrivals, they do not move again this year
    keys = counter_uniform(model.streams.key("return_order", model.year), due,
                           np.zeros(1, dtype=np.int64))[:, 0]
    return due, keys
