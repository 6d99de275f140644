"""The lever surface: the only operations through which policy levers change the model.

``Lever`` is the protocol the model calls (``scenarios.base.Lever`` implements it);
``LeverSurface`` is the set of operations a lever may use, inherited by
``SegregationModel``. Each operation checks its arguments, says what it changes and keeps
the dependent state consistent (catchment maps, agents, seat counts, resources), so a lever
never writes the model's arrays itself. Levers may read any state.

| operation | changes |
|---|---|
| ``set_funding`` | a source's needs-based euros per unit, and the units' resources |
| ``set_trust`` | trust (perceived-reputation bonus) and opt-out factor of units |
| ``inform_families`` | families' information about school choice |
| ``set_catchments`` | a level's catchment map |
| ``share_catchment`` | a group of schools admitting from their joint catchment |
| ``open_school`` / ``close_school`` / ``resize_school`` | the school network |
| ``rebuild_catchments`` | a level's catchments, as nearest-open-school areas |
| ``add_dwellings`` / ``improve_cells`` | the housing stock, amenity and prices |
| ``book_cost`` | the cost ledger that the metrics read (``policy_cost_eur``) |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy.spatial import cKDTree

from agents import School
from sim.units import KINDS, LEVEL_NAMES, SCHOOL, Daycares, Schools

if TYPE_CHECKING:
    from sim.model import SegregationModel


class Lever(Protocol):
    """What the model calls on a policy lever.

    ``bind`` runs once, on the built model before year 1: the lever checks its targets
    against the city and raises ``ValueError`` if they do not fit. ``apply`` runs at the
    levers point of every year; ``finalize`` at the end. ``label`` names the lever in the
    cost ledger (the model makes labels unique); ``results`` reports what it did.
    """

    label: str

    def bind(self, model: SegregationModel) -> None:
        """Check the lever against the model and prepare it."""

    def apply(self, model: SegregationModel) -> None:
        """Act at the levers point of the current year."""

    def finalize(self, model: SegregationModel) -> None:
        """Finish at the end of the run."""

    def results(self) -> dict[str, Any]:
        """What the lever did, for the run summary."""


def _bad(op: str, key: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{op}: {key}={value!r} is not allowed; expected {allowed}")


class LeverSurface:
    """Operations levers use to change a ``SegregationModel``."""

    def units_of(self: SegregationModel, kind: str) -> Schools | Daycares:
        """The school or daycare arrays (``kind`` is ``"school"`` or ``"daycare"``)."""
        if kind not in KINDS:
            raise _bad("units_of", "kind", kind, "'school' or 'daycare'")
        return self.schools if kind == SCHOOL else self.daycares

    def _unit_index(self: SegregationModel, op: str, kind: str, index: Any) -> np.ndarray:
        n = len(self.units_of(kind).cell)
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise _bad(op, "units", idx.tolist(), f"{kind} indices 0..{n - 1}")
        return idx

    # ------------------------------------------------------------ money
    def set_funding(self: SegregationModel, kind: str, source: str, euros: np.ndarray,
                    base_cost_per_pupil_eur: float) -> None:
        """Set the needs-based euros a year that ``source`` gives each unit of ``kind``.

        Changes ``needs_funding`` (the sum over sources) and ``resources`` of every unit:
        ``1 + sum over sources of euros / (pupils x base cost)``, with today's enrolment.
        Units a source does not fund keep exactly 1 from it, so zero euros change no float.
        Units added later get nothing from a source until it sets them.
        """
        units = self.units_of(kind)
        n = len(units.cell)
        euros = np.asarray(euros, dtype=np.float64)
        if euros.shape != (n,) or not np.isfinite(euros).all() or (euros < 0).any():
            raise _bad("set_funding", "euros", f"array of shape {euros.shape}",
                       f"{n} finite amounts >= 0, one per {kind}")
        if not base_cost_per_pupil_eur > 0:
            raise _bad("set_funding", "base_cost_per_pupil_eur", base_cost_per_pupil_eur,
                       "a positive number of euros")
        sources = self.funding_sources[kind]
        sources[source] = (euros.copy(), float(base_cost_per_pupil_eur))
        pupils = np.maximum(self.enrolment(kind), 1)
        total, extra = np.zeros(n), np.zeros(n)
        for eur, base in sources.values():
            eur = np.concatenate([eur, np.zeros(n - len(eur))])
            total += eur
            extra += eur / (pupils * base)
        units.needs_funding[:] = total
        units.resources[:] = 1.0 + extra

    def book_cost(self: SegregationModel, source: str, euros: float) -> None:
        """Book ``euros`` spent by ``source`` this year in the cost ledger."""
        self.ledger.book(self.year, source, euros)

    # ------------------------------------------------------------ engagement
    def set_trust(self: SegregationModel, kind: str, units: np.ndarray, trust: float,
                  optout: float | None = None) -> None:
        """Set trust (and, for schools, the opt-out factor) of ``units``.

        ``trust`` is added to the local families' perceived reputation of the unit (schools:
        also to the catchment bonus in school choice); ``optout`` multiplies the local
        families' probability of looking beyond the catchment school. Perceived reputations
        are recomputed after the levers point, so the change counts from the next year.
        """
        idx = self._unit_index("set_trust", kind, units)
        if not np.isfinite(trust):
            raise _bad("set_trust", "trust", trust, "a finite number")
        self.units_of(kind).trust[idx] = trust
        if optout is not None:
            if kind != SCHOOL or not (np.isfinite(optout) and optout >= 0):
                raise _bad("set_trust", "optout", optout, "a factor >= 0, for schools only")
            self.schools.optout[idx] = optout

    def inform_families(self: SegregationModel, families: np.ndarray, gain: float) -> None:
        """Close a ``gain`` share (0..1) of the information gap of the family slots given."""
        if not 0.0 <= gain <= 1.0:
            raise _bad("inform_families", "gain", gain, "a share in [0, 1]")
        f = self.families
        f.info[families] += gain * (1.0 - f.info[families])

    # ------------------------------------------------------------ catchments
    def set_catchments(self: SegregationModel, level: int, labels: np.ndarray) -> None:
        """Replace a level's catchment map and refresh the cell-to-school map.

        ``labels`` gives every cell the k-th school of the level (-1 exactly on sea).
        Shared catchments keep their cells.
        """
        c = self.city
        n_lev = len(self.level_ids(level))
        labels = np.asarray(labels, dtype=np.int64)
        ok = labels.shape == (c.n_cells,) and ((labels >= 0) == c.land).all()
        if not ok or labels.max(initial=-1) >= n_lev:
            raise _bad("set_catchments", "labels", f"array of shape {labels.shape}",
                       f"{c.n_cells} school positions 0..{n_lev - 1} on land, -1 on sea")
        lab = c.catchment_lower if level == 0 else c.catchment_upper
        lab[:] = labels
        self.refresh_catchments()

    def share_catchment(self: SegregationModel, level: int, schools: np.ndarray) -> int:
        """Make ``schools`` (global indices) admit jointly from their catchments.

        Applicants living in any of their catchments are placed by controlled choice
        (``phases.schooling.shared_admission``). Returns the group id.
        """
        schools = np.asarray(schools, dtype=np.int64)
        sch = self.schools
        in_use = {int(s) for g in self.shared_schools for s in g}
        if (len(schools) < 2 or (sch.level[schools] != level).any()
                or sch.open[schools].sum() < 2 or in_use.intersection(schools.tolist())):
            raise _bad("share_catchment", "schools", schools.tolist(),
                       f"2 or more {LEVEL_NAMES[level]} schools, at least 2 open, in no "
                       "other shared catchment")
        gid = len(self.shared_schools)
        self.shared_schools.append(schools)
        self.shared_cell[level, np.isin(self.school_of_cell[level], schools)] = gid
        return gid

    def rebuild_catchments(self: SegregationModel, level: int) -> None:
        """Redraw a level's catchments as nearest-open-school (Voronoi) partitions."""
        c = self.city
        ids = self.level_ids(level)
        open_k = np.flatnonzero(self.schools.open[ids])
        _, idx = cKDTree(self.school_xy[ids[open_k]]).query(c.xy[c.land])
        lab = np.full(c.n_cells, -1, dtype=np.int64)
        lab[c.land] = open_k[idx]
        self.set_catchments(level, lab)

    # ------------------------------------------------------------ school network
    def open_school(self: SegregationModel, cell: int, level: int, capacity: int) -> int:
        """Add an open school at a land ``cell``; returns its global index.

        Adds its Mesa agent and widens the unit and intake accounts; catchments stay as
        they are until ``rebuild_catchments`` or ``set_catchments``.
        """
        c = self.city
        if not (0 <= cell < c.n_cells and c.land[cell]):
            raise _bad("open_school", "cell", cell, f"a land cell 0..{c.n_cells - 1}")
        if capacity < 1:
            raise _bad("open_school", "capacity", capacity, "a positive number of seats")
        index = self.schools.append(
            cell=cell, level=level, emphasis=False, capacity=capacity,
            design_capacity=capacity, resources=1.0, open=True, optout=1.0,
            turnover=self.cfg.behaviour.outcomes.turnover_base)
        self.school_xy = c.xy[self.schools.cell]
        self.school_agents.append(School(self, index, LEVEL_NAMES[level]))
        self.recorder.grow_schools(len(self.schools.cell))
        return index

    def close_school(self: SegregationModel, index: int) -> None:
        """Close a school: no new intake; its pupils stay until they leave."""
        self.schools.open[self._unit_index("close_school", SCHOOL, index)] = False

    def resize_school(self: SegregationModel, index: int, capacity: int) -> None:
        """Set a school's planned seats, effective from the next admissions."""
        if capacity < 1:
            raise _bad("resize_school", "capacity", capacity, "a positive number of seats")
        self.schools.design_capacity[self._unit_index("resize_school", SCHOOL, index)] = capacity

    # ------------------------------------------------------------ housing
    def add_dwellings(self: SegregationModel, dwellings: np.ndarray) -> None:
        """Add dwellings per cell and tenure, shape (n_cells, 3), counts >= 0, on land."""
        c = self.city
        dwellings = np.asarray(dwellings)
        if (dwellings.shape != c.dwellings.shape or (dwellings < 0).any()
                or dwellings[~c.land].any()):
            raise _bad("add_dwellings", "dwellings", f"array of shape {dwellings.shape}",
                       f"counts >= 0 of shape {c.dwellings.shape}, on land cells")
        c.dwellings += dwellings.astype(c.dwellings.dtype)

    def improve_cells(self: SegregationModel, cells: np.ndarray, amenity: float = 0.0,
                      price: float = 0.0) -> None:
        """Raise amenity (kept in [0, 1]) and the price level of ``cells``."""
        c = self.city
        if not (np.isfinite(amenity) and np.isfinite(price)):
            raise _bad("improve_cells", "amenity, price", (amenity, price), "finite numbers")
        if amenity:
            c.amenity[cells] = np.clip(c.amenity[cells] + amenity, 0.0, 1.0)
        if price:
            c.price[cells] += price

