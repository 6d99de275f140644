"""Hot per-agent state as numpy arrays in slot pools.

A pool holds one array per attribute, an ``active`` mask (in the city) and an ``away`` mask
(outside the city, slot kept for a return: ``sim.phases.migration``). Agents occupy slots;
freed slots are reused lowest-first, so slot assignment is deterministic. Mesa agents
(``agents/``) are thin views that keep their slot; kernels read and write the arrays in bulk.
"""

from __future__ import annotations

import numpy as np


class Pool:
    """Growable set of parallel arrays with an ``active`` mask.

    Args:
        fields: Attribute name -> (dtype, fill value for free slots).
        capacity: Initial number of slots.

    """

    def __init__(self, fields: dict[str, tuple[type, float]], capacity: int) -> None:
        self._fields = fields
        self.active = np.zeros(capacity, dtype=bool)
        self.away = np.zeros(capacity, dtype=bool)
        for name, (dtype, fill) in fields.items():
            setattr(self, name, np.full(capacity, fill, dtype=dtype))

    @property
    def capacity(self) -> int:
        """Number of slots."""
        return len(self.active)

    @property
    def n_active(self) -> int:
        """Number of occupied slots."""
        return int(self.active.sum())

    def _grow(self, need: int) -> None:
        new_cap = max(need, 2 * self.capacity)
        extra = new_cap - self.capacity
        self.active = np.concatenate([self.active, np.zeros(extra, dtype=bool)])
        self.away = np.concatenate([self.away, np.zeros(extra, dtype=bool)])
        for name, (dtype, fill) in self._fields.items():
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full(extra, fill, dtype=dtype)]))

    def alloc(self, n: int) -> np.ndarray:
        """Occupy ``n`` free slots (lowest first) and return their indices.

        A slot is free when it is neither active nor held for an agent that is away.
        """
        free = np.flatnonzero(~(self.active | self.away))
        if len(free) < n:
            self._grow(self.capacity + n - len(free))
            free = np.flatnonzero(~(self.active | self.away))
        slots = free[:n]
        self.active[slots] = True
        return slots

    def send_away(self, slots: np.ndarray) -> None:
        """Take slots out of the city but keep them, and their attributes, for a return."""
        self.active[slots] = False
        self.away[slots] = True

    def bring_back(self, slots: np.ndarray) -> None:
        """Put slots that were away back into the city."""
        self.away[slots] = False
        self.active[slots] = True

    def free(self, slots: np.ndarray) -> None:
        """Release slots and reset their attributes to the fill values."""
        self.active[slots] = False
        self.away[slots] = False
        for name, (_, fill) in self._fields.items():
            getattr(self, name)[slots] = fill


FAMILY_FIELDS: dict[str, tuple[type, float]] = {
    "ses": (np.int64, -1),  # 0 low, 1 middle, 2 high status
    "lang": (np.int64, -1),  # 0 native, 1 foreign-language
    "cell": (np.int64, -1),  # home cell, -1 while not housed
    "tenure": (np.int64, -1),  # 0 social rental, 1 private rental, 2 owner-occupied
    "parent_age": (np.int64, 0),
    "info": (np.float64, 0.0),  # information about school choice, in [0, 1]
    "arrived": (np.int64, -1),  # year of arrival (0 = initial population)
    "return_year": (np.int64, -1),  # while away: the year the family comes back
    "uid": (np.int64, -1),  # Mesa unique_id of the family's agent (kept while away)
    "low_edu": (np.bool_, False),  # a guardian without post-basic education (TP indicator)
    "unemployed": (np.bool_, False),  # an unemployed guardian (TP indicator)
}

CHILD_FIELDS: dict[str, tuple[type, float]] = {
    "family": (np.int64, -1),
    "age": (np.int64, -1),
    "school": (np.int64, -1),  # global school index: lower schools first, then upper
    "daycare": (np.int64, -1),
    "outcome": (np.float64, 0.0),  # achievement in school-year equivalents vs grade norm
    "aptitude": (np.float64, 0.0),  # for emphasised-class admission
    "ecec": (np.bool_, False),  # takes part in early childhood education (wants a place)
    "born_here": (np.bool_, False),  # born in the city during the run (cohort accounts)
    "moved": (np.bool_, False),  # has moved within the city (first moves, cohort accounts)
    "left": (np.bool_, False),  # has left the city at least once (cohort accounts)
}


def new_families(capacity: int) -> Pool:
    """Empty family pool."""
    return Pool(FAMILY_FIELDS, capacity)


def new_children(capacity: int) -> Pool:
    """Empty child pool."""
    return Pool(CHILD_FIELDS, capacity)
