"""Catchment and school-network levers.

Four levers change which school a grade-1 or grade-7 entrant is guaranteed (the catchment
school) or which schools exist:

* ``catchment_reassign``: move given cells (or the part of given districts) from one school's
  catchment to another's;
* ``catchment_redraw``: an automatic redraw that mixes status across catchments (a local
  search over boundary cells);
* ``shared_catchment``: several schools share one catchment; admission then balances status
  across them (controlled choice, ``SegregationModel._shared_admission``);
* ``school_network``: open planned schools, close schools, change capacities; catchments of
  the affected level are redrawn as nearest-open-school areas.

All four make a one-off change at ``start_year`` (at the levers point of that year, so the
change shows in that year's catchment metrics and reaches school intake from the next year's
admissions) and the change stays in force: ``end_year`` must be ``None``. Pupils already
enrolled keep their school; only new intakes follow the new catchments (a closed school takes
no new intake but keeps its pupils until they leave). Levels are named ``"lower"`` (grades
1-6) and ``"upper"`` (grades 7-9); schools are named by their unit id as in
``units.parquet`` (``"S003"`` is global school index 3).

Catchment arrays (``city.catchment_lower`` / ``catchment_upper``) hold, per flat cell id, the
k-th school *of the level* (``model.level_ids(level)[k]`` is its global index), -1 on sea.
They are views of Mesa property layers, so the levers edit them in place and then call
``model.refresh_catchments()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.base import Lever, register
from sim.units import LEVEL_AGES, LOWER, SCHOOL, UPPER, id_range, parse_unit_id, unit_id, unit_ids

if TYPE_CHECKING:
    from sim.model import SegregationModel

LEVELS = {"lower": LOWER, "upper": UPPER}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


# ---------------------------------------------------------------------- shared helpers
def _a(level: str) -> str:
    """``"a lower"`` / ``"an upper"``."""
    return f"{'an' if level == 'upper' else 'a'} {level}"


def catchment_array(model: SegregationModel, level: int) -> np.ndarray:
    """The level's catchment labels (read only: levers change them with ``set_catchments``)."""
    c = model.city
    return c.catchment_lower if level == LOWER else c.catchment_upper


def neighbours4(width: int, height: int) -> np.ndarray:
    """4-neighbours of every flat cell id, shape ``(n_cells, 4)``, -1 outside the grid.

    Flat cell id ``i`` has grid position ``(x, y) = divmod(i, height)``; the columns are
    west, east, north, south (x - 1, x + 1, y - 1, y + 1).
    """
    ids = np.arange(width * height)
    x, y = np.divmod(ids, height)
    out = np.full((len(ids), 4), -1, dtype=np.int64)
    out[:, 0] = np.where(x > 0, ids - height, -1)
    out[:, 1] = np.where(x < width - 1, ids + height, -1)
    out[:, 2] = np.where(y > 0, ids - 1, -1)
    out[:, 3] = np.where(y < height - 1, ids + 1, -1)
    return out


def components(cells: np.ndarray, nb: np.ndarray) -> int:
    """Number of 4-connected components of a set of flat cell ids."""
    inside = set(int(c) for c in cells)
    seen: set[int] = set()
    n = 0
    for start in inside:
        if start in seen:
            continue
        n += 1
        seen.add(start)
        queue = deque([start])
        while queue:
            for j in nb[queue.popleft()]:
                j = int(j)
                if j in inside and j not in seen:
                    seen.add(j)
                    queue.append(j)
    return n


def school_age_counts(model: SegregationModel, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-status (``ses == 0``) and all school-age residents of the level, per cell.

    School age is 7-12 for the lower level and 13-15 for the upper level (the groups of
    ``seg_catchment_*``).
    """
    ch, f = model.children, model.families
    lo, hi = LEVEL_AGES[level]
    fam = ch.family[ch.active & (ch.age >= lo) & (ch.age <= hi)]
    fam = fam[f.cell[fam] >= 0]
    n_c = model.city.n_cells
    tot = np.bincount(f.cell[fam], minlength=n_c)
    low = np.bincount(f.cell[fam], weights=f.ses[fam] == 0, minlength=n_c)
    return low.astype(np.int64), tot


class _OneOffLever(Lever):
    """A change made once, at ``start_year``, that stays in force."""

    def __init__(self, start_year: int = 1, end_year: int | None = None) -> None:
        super().__init__(start_year, end_year)
        if end_year is not None:
            self.fail("end_year", end_year,
                      "None (the change is made once, at start_year, and stays in force)")

    def apply(self, model: SegregationModel) -> None:
        """Act once, at the levers point of ``start_year``."""
        if model.year == self.start_year:
            self.act(model)

    def init(self, model: SegregationModel) -> None:
        """Validate against the model (subclasses); ``target`` is not used."""

    # -------------------------------------------------------------- validation helpers
    def check_level(self, level: Any, key: str = "level") -> int:
        """The level index of ``"lower"`` / ``"upper"``."""
        if level not in LEVELS:
            self.fail(key, level, "'lower' or 'upper'")
        return LEVELS[level]

    def school_id(self, model: SegregationModel, uid: Any, key: str,
                  level: int | None = None) -> int:
        """Global index of school ``uid`` (``"S003"``), optionally checked to be of ``level``."""
        n = len(model.schools.cell)
        i = parse_unit_id(uid, SCHOOL, n)
        if i is None:
            self.fail(key, uid, id_range(SCHOOL, n))
        if level is not None and model.schools.level[i] != level:
            self.fail(key, uid, f"{_a(LEVEL_NAMES[level])} school (it is "
                                f"{_a(LEVEL_NAMES[int(model.schools.level[i])])} school)")
        return i

    def check_schools_format(self, ids: Any, key: str) -> list[str]:
        """A list of school id strings (format only; existence is checked in ``init``)."""
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            self.fail(key, ids, "a list of school ids such as ['S003', 'S005']")
        for uid in ids:
            if parse_unit_id(uid, SCHOOL, 10**9) is None:
                self.fail(key, uid, "a school id such as 'S003'")
        return list(ids)


# ---------------------------------------------------------------------- 1. reassign
@register("catchment_reassign")
class CatchmentReassign(_OneOffLever):
    """Move cells from one school's catchment to another's.

    Each move is ``{"from": "S003", "to": "S005", "cells": [flat cell ids]}`` or, instead of
    ``cells``, ``"districts": [district ids]``, meaning every cell of those districts that is
    in ``from``'s catchment when the run starts (``init`` resolves the cells; ``act`` checks
    they are still there). Moves are applied in order (a later move may pass on cells an
    earlier one gave). Only the targeted cells change; pupils already
    enrolled keep their school, new entrants from the moved cells get ``to`` as their
    catchment school.

    Args:
        moves: The moves (see above); an empty list changes nothing.
        level: ``"lower"`` or ``"upper"``: whose catchments.
        start_year: Year of the change (at that year's levers point).
        end_year: Must be ``None``: the change stays in force.

    Raises:
        ValueError: Malformed move, unknown school id or one of another level, ``to`` equal
            to ``from``, cells or districts not (or no longer) in ``from``'s catchment,
            ``to`` closed when the lever acts.
    """

    def __init__(self, moves: list[dict], level: str = "lower",
                 start_year: int = 1, end_year: int | None = None) -> None:
        super().__init__(start_year, end_year)
        self.level = level
        self._lev = self.check_level(level)
        if isinstance(moves, str | Mapping) or not isinstance(moves, Sequence):
            self.fail("moves", moves, "a list of {from, to, cells | districts} entries")
        self.moves: list[dict[str, Any]] = []
        for i, mv in enumerate(moves):
            key = f"moves[{i}]"
            if not isinstance(mv, Mapping):
                self.fail(key, mv, "a mapping {from: id, to: id, cells: [...]} or "
                                   "{from: id, to: id, districts: [...]}")
            mv = dict(mv)
            extra = sorted(set(mv) - {"from", "to", "cells", "districts"})
            where = [k for k in ("cells", "districts") if k in mv]
            if extra or len(where) != 1 or "from" not in mv or "to" not in mv:
                self.fail(key, mv, "keys from, to and exactly one of cells or districts")
            ids = mv[where[0]]
            if isinstance(ids, str) or not isinstance(ids, Sequence) or not ids or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in ids):
                self.fail(f"{key}.{where[0]}", ids, "a non-empty list of integer ids")
            if mv["from"] == mv["to"]:
                self.fail(f"{key}.to", mv["to"], f"a school other than from={mv['from']!r}")
            self.moves.append({"from": mv["from"], "to": mv["to"], where[0]: list(ids)})
        self.resolved: list[tuple[int, int, np.ndarray]] = []  # (from k, to k, cells)

    def init(self, model: SegregationModel) -> None:
        """Check ids and that each move's cells are in ``from``'s catchment (in order)."""
        c = model.city
        lab = catchment_array(model, self._lev).copy()
        order = {int(g): k for k, g in enumerate(model.level_ids(self._lev))}
        self.resolved = []
        for i, mv in enumerate(self.moves):
            key = f"moves[{i}]"
            src = order[self.school_id(model, mv["from"], f"{key}.from", self._lev)]
            dst = order[self.school_id(model, mv["to"], f"{key}.to", self._lev)]
            if "cells" in mv:
                cells = np.array(mv["cells"], dtype=np.int64)
                bad = cells[(cells < 0) | (cells >= c.n_cells)]
                if len(bad):
                    self.fail(f"{key}.cells", int(bad[0]), f"a cell id 0..{c.n_cells - 1}")
                outside = cells[lab[cells] != src]
                if len(outside):
                    self.fail(f"{key}.cells", outside.tolist(),
                              f"cells in the catchment of from={mv['from']!r}")
                cells = np.unique(cells)
            else:
                dist = np.array(mv["districts"], dtype=np.int64)
                bad = dist[(dist < 0) | (dist >= c.n_districts)]
                if len(bad):
                    self.fail(f"{key}.districts", int(bad[0]),
                              f"a district id 0..{c.n_districts - 1}")
                cells = np.flatnonzero(np.isin(c.district, dist) & (lab == src))
                if not len(cells):
                    self.fail(f"{key}.districts", mv["districts"],
                              f"districts with cells in the catchment of from={mv['from']!r}")
            lab[cells] = dst
            self.resolved.append((src, dst, cells))

    def act(self, model: SegregationModel) -> None:
        """Relabel the cells (``set_catchments`` refreshes the cell-to-school map)."""
        lab = catchment_array(model, self._lev).copy()
        ids = model.level_ids(self._lev)
        for i, (src, dst, cells) in enumerate(self.resolved):
            if not model.schools.open[ids[dst]]:
                self.fail(f"moves[{i}].to", self.moves[i]["to"],
                          "a school that is open when the lever acts")
            if (lab[cells] != src).any():
                self.fail(f"moves[{i}]", self.moves[i],
                          "cells still in from's catchment at start_year (another lever "
                          "changed them)")
            lab[cells] = dst
        if self.resolved:
            model.set_catchments(self._lev, lab)


# ---------------------------------------------------------------------- 2. redraw
@register("catchment_redraw")
class CatchmentRedraw(_OneOffLever):
    """Redraw a level's catchments so that status is mixed more evenly across them.

    Objective: the spread, ``np.std`` (population std, unweighted) across catchments, of the
    share of low-status (``ses == 0``) residents among each catchment's school-age residents
    (ages 7-12 for the lower level, 13-15 for the upper), counted when the lever acts.

    Algorithm: a greedy local search (steepest descent) over boundary cells, so it finds a
    local, not a global, optimum. Each iteration lists every move of a land cell ``c`` from
    its catchment ``A`` to a catchment ``B`` that holds one of ``c``'s 4-neighbours, and keeps
    the moves where

    a. ``c``'s centre is within ``max_km`` of ``B``'s school;
    b. ``A`` stays contiguous: ``c`` is not the cell of ``A``'s school (so ``A`` stays
       non-empty) and its 4-neighbours in ``A`` are still connected to each other without
       ``c`` (a breadth-first search over ``A``'s cells), so ``A`` gets no new component;
    c. ``B``'s school-age residents plus ``c``'s stay within ``B``'s school capacity, and
       ``A`` keeps at least one school-age resident;
    d. the spread falls by more than ``1e-12`` (strict decrease; moving an empty cell never
       qualifies).

    It takes the move with the lowest new spread (ties: lowest cell id, then lowest ``B``),
    falling back to the next-best move if that one breaks contiguity, and stops when no move
    qualifies or after ``max_iter`` moves. Everything is deterministic. Catchments of closed
    schools (no cells) and catchments without school-age residents take no part. Counts are
    numpy arrays updated per move; one iteration is a few vectorised passes over the
    boundary plus a connectivity test that is usually local (the cell's 3x3 ring), falling
    back to a search over ``A``. Measured: about 0.03 s per level on the small city (about
    150 moves), about 4 s for the lower level of the Helsinki preset (about 1,900 moves).

    Attributes set when it acts: ``spread_before``, ``spread_after``, ``n_moved`` (cells that
    changed catchment) and ``n_iter``.

    Args:
        level: ``"lower"`` or ``"upper"``.
        max_km: Largest distance (km) from a moved cell's centre to its new school.
        max_iter: Largest number of single-cell moves.
        start_year: Year of the redraw (at that year's levers point).
        end_year: Must be ``None``: the new catchments stay in force.

    Raises:
        ValueError: Unknown level, non-positive ``max_km`` or ``max_iter``.
    """

    def __init__(self, level: str = "lower", max_km: float = 3.0, max_iter: int = 5000,
                 start_year: int = 1, end_year: int | None = None) -> None:
        super().__init__(start_year, end_year)
        self.level = level
        self._lev = self.check_level(level)
        if isinstance(max_km, bool) or not isinstance(max_km, int | float) or not max_km > 0:
            self.fail("max_km", max_km, "a positive number of km")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            self.fail("max_iter", max_iter, "a positive integer")
        self.max_km = max_km
        self.max_iter = max_iter
        self.spread_before = self.spread_after = float("nan")
        self.n_moved = self.n_iter = 0

    def act(self, model: SegregationModel) -> None:
        """Run the local search and write the new catchments."""
        lab = catchment_array(model, self._lev)
        low, tot = school_age_counts(model, self._lev)
        new, self.n_iter, self.spread_before, self.spread_after = redraw(
            model, self._lev, lab.copy(), low, tot, float(self.max_km), self.max_iter)
        self.n_moved = int((new != lab).sum())
        if self.n_moved:
            model.set_catchments(self._lev, new)


def spread(low: np.ndarray, tot: np.ndarray) -> float:
    """Population std across catchments of the low-status share (catchments with residents)."""
    has = tot > 0
    return float(np.std(low[has] / tot[has])) if has.any() else 0.0


def redraw(model: SegregationModel, level: int, lab: np.ndarray, low_c: np.ndarray,
           tot_c: np.ndarray, max_km: float, max_iter: int
           ) -> tuple[np.ndarray, int, float, float]:
    """The local search of ``CatchmentRedraw`` on a copy ``lab`` of the level's labels.

    Args:
        model: The model (city geometry, schools, capacities).
        level: 0 lower, 1 upper.
        lab: Catchment labels (k-th school of the level per cell, -1 on sea); edited.
        low_c: Low-status school-age residents per cell.
        tot_c: All school-age residents per cell.
        max_km: Distance limit from a moved cell to its new school.
        max_iter: Move limit.

    Returns:
        ``(labels, n_iter, spread_before, spread_after)``: the edited labels, the number
        of moves made and the spread before and after.
    """
    c, sch = model.city, model.schools
    ids = model.level_ids(level)
    n_k = len(ids)
    nb = neighbours4(c.width, c.height)
    low = np.bincount(lab[lab >= 0], weights=low_c[lab >= 0], minlength=n_k)
    tot = np.bincount(lab[lab >= 0], weights=tot_c[lab >= 0], minlength=n_k)
    part = (np.bincount(lab[lab >= 0], minlength=n_k) > 0) & (tot > 0) & sch.open[ids]
    cap = sch.capacity[ids].astype(float)
    school_xy = c.xy[sch.cell[ids]]
    fixed = np.zeros(c.n_cells, dtype=bool)
    fixed[sch.cell[ids]] = True  # a school's own cell stays in its catchment
    # Candidate cells: land, residents, not a school's cell; their neighbour cells per side.
    cand = np.flatnonzero((lab >= 0) & (tot_c > 0) & ~fixed)
    cand_nb = nb[cand]
    conn = _Connectivity(lab, c.width, c.height, n_k)
    idx = np.flatnonzero(part)  # catchments in the objective
    before = spread(low[idx], tot[idx])
    cur = before
    it = 0
    while it < max_iter:
        a = lab[cand]
        b = np.where(cand_nb >= 0, lab[np.maximum(cand_nb, 0)], -1)
        ok = (b >= 0) & (b != a[:, None]) & part[np.maximum(b, 0)] & part[a][:, None]
        rows, cols = np.nonzero(ok)
        if not len(rows):
            break
        # One entry per (cell, B), sorted by cell then B.
        key = np.unique(cand[rows] * n_k + b[rows, cols])
        cell, dst = key // n_k, key % n_k
        src = lab[cell]
        dxy = c.xy[cell] - school_xy[dst]
        t, lo = tot_c[cell], low_c[cell]
        keep = ((np.hypot(dxy[:, 0], dxy[:, 1]) <= max_km) & (tot[dst] + t <= cap[dst])
                & (tot[src] - t >= 1))
        cell, src, dst, t, lo = cell[keep], src[keep], dst[keep], t[keep], lo[keep]
        if not len(cell):
            break
        # New spread of every candidate move: only A's and B's shares change.
        shares = np.broadcast_to(low / np.maximum(tot, 1), (len(cell), n_k)).copy()
        r = np.arange(len(cell))
        shares[r, src] = (low[src] - lo) / (tot[src] - t)
        shares[r, dst] = (low[dst] + lo) / (tot[dst] + t)
        new = shares[:, idx].std(axis=1)
        better = np.flatnonzero(new < cur - 1e-12)
        if not len(better):
            break
        order = better[np.lexsort((dst[better], cell[better], new[better]))]
        done = False
        for j in order:
            if conn.ok(int(cell[j]), int(src[j])):
                conn.move(int(cell[j]), int(src[j]), int(dst[j]))
                lab[cell[j]] = dst[j]
                low[src[j]] -= lo[j]
                tot[src[j]] -= t[j]
                low[dst[j]] += lo[j]
                tot[dst[j]] += t[j]
                cur = spread(low[idx], tot[idx])
                done = True
                break
        if not done:
            break
        it += 1
    return lab, it, before, cur


def ring8(width: int, height: int) -> np.ndarray:
    """The 8 cells around every flat cell id, in ring order N, NE, E, SE, S, SW, W, NW.

    Shape ``(n_cells, 8)``, -1 outside the grid. Cells next to each other in this order
    (cyclically) are 4-neighbours of each other.
    """
    ids = np.arange(width * height)
    x, y = np.divmod(ids, height)
    out = np.full((len(ids), 8), -1, dtype=np.int64)
    for k, (dx, dy) in enumerate(((0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0),
                                  (-1, -1))):
        ok = (x + dx >= 0) & (x + dx < width) & (y + dy >= 0) & (y + dy < height)
        out[ok, k] = (x[ok] + dx) * height + y[ok] + dy
    return out


class _Connectivity:
    """Whether a catchment stays connected without one of its cells, with a cache.

    A local test first: if the cell's 4-neighbours in the catchment are joined through the
    catchment's cells in its 3x3 ring, removing it disconnects nothing. Otherwise a
    breadth-first search over the catchment's cells decides; a "no" is cached until the
    catchment next changes.
    """

    def __init__(self, lab: np.ndarray, width: int, height: int, n_k: int) -> None:
        self.lab = lab.tolist()  # a Python mirror of the labels, kept in step by ``move``
        self.nb = [tuple(j for j in row if j >= 0) for row in neighbours4(width, height).tolist()]
        self.ring = ring8(width, height).tolist()
        self.version = [0] * n_k
        self.failed: dict[int, tuple[int, int]] = {}

    def move(self, cell: int, a: int, b: int) -> None:
        """Record that ``cell`` moved from catchment ``a`` to ``b``."""
        self.lab[cell] = b
        self.version[a] += 1
        self.version[b] += 1

    def ok(self, cell: int, a: int) -> bool:
        """True if catchment ``a`` without ``cell`` has no more components than with it."""
        lab = self.lab
        ring = [j >= 0 and lab[j] == a for j in self.ring[cell]]
        orth = [k for k in (0, 2, 4, 6) if ring[k]]
        if len(orth) <= 1 or all(ring):
            return True
        run, r, prev = [-1] * 8, -1, False
        start = ring.index(False)
        for step in range(1, 9):
            k = (start + step) % 8
            if ring[k]:
                r += not prev
                run[k] = r
            prev = ring[k]
        if len({run[k] for k in orth}) == 1:
            return True
        if self.failed.get(cell) == (a, self.version[a]):
            return False
        ends = [self.ring[cell][k] for k in orth]
        targets = set(ends[1:])
        seen = {cell, ends[0]}
        queue = deque([ends[0]])
        while queue and targets:
            for j in self.nb[queue.popleft()]:
                if j not in seen and lab[j] == a:
                    seen.add(j)
                    targets.discard(j)
                    queue.append(j)
        if targets:
            self.failed[cell] = (a, self.version[a])
        return not targets


# ---------------------------------------------------------------------- 3. shared
@register("shared_catchment")
class SharedCatchment(_OneOffLever):
    """Shared ("flexible") catchments: a group of schools admits from one joint area.

    For each group, every cell in the union of the group's schools' catchments (as they are
    when the lever acts) becomes part of the group's shared area (``model.shared_cell``) and
    the group is appended to ``model.shared_schools``. From the next admission round, each
    entrant living in a shared area is given, in lottery order, the group's open school
    where their status class is least represented (``SegregationModel._shared_admission``);
    families can still apply elsewhere as before.

    ``groups="renewal"`` builds the groups from the urban-renewal districts, in increasing
    district id order. For renewal district ``d``:

    1. its schools: the open schools of the level located in ``d``, plus the open school
       whose catchment holds most of ``d``'s land cells (ties: lowest id);
    2. their neighbours: open schools of the level whose catchment touches (4-neighbour
       cells) the catchment of one of ``d``'s schools and whose school lies within
       ``max_km`` of one of ``d``'s schools;
    3. the group is both, minus schools already in an earlier district's group; it is kept
       if it has at least 2 schools (so a renewal district may get no group of its own).

    The groups chosen are stored in ``resolved_groups`` (unit ids) when the lever acts.

    Args:
        groups: A list of groups, each a list of at least 2 school ids of the level, no
            school in two groups; or ``"renewal"``.
        level: ``"lower"`` or ``"upper"``.
        max_km: Only for ``"renewal"``: largest distance (km) from a neighbouring school to
            the nearest of the district's schools.
        start_year: Year the shared areas are set (they apply from the next admissions).
        end_year: Must be ``None``: the shared areas stay in force.

    Raises:
        ValueError: A group of fewer than 2 schools, a school in two groups (also across
            ``shared_catchment`` levers of the same level), unknown ids or ids of the other
            level.
    """

    def __init__(self, groups: list[list[str]] | str, level: str = "lower",
                 max_km: float = 3.0, start_year: int = 1,
                 end_year: int | None = None) -> None:
        super().__init__(start_year, end_year)
        self.level = level
        self._lev = self.check_level(level)
        if isinstance(max_km, bool) or not isinstance(max_km, int | float) or not max_km > 0:
            self.fail("max_km", max_km, "a positive number of km")
        self.max_km = max_km
        if isinstance(groups, str):
            if groups != "renewal":
                self.fail("groups", groups, "'renewal' or a list of lists of school ids")
            self.groups: list[list[str]] | str = groups
        else:
            if not isinstance(groups, Sequence) or not groups:
                self.fail("groups", groups, "'renewal' or a non-empty list of lists of ids")
            seen: dict[str, int] = {}
            out = []
            for i, grp in enumerate(groups):
                grp = self.check_schools_format(grp, f"groups[{i}]")
                if len(set(grp)) < 2:
                    self.fail(f"groups[{i}]", grp, "a group of at least 2 different schools")
                for uid in grp:
                    if uid in seen and seen[uid] != i:
                        self.fail(f"groups[{i}]", uid, f"a school in one group only (it is "
                                                       f"also in groups[{seen[uid]}])")
                    seen[uid] = i
                out.append(list(dict.fromkeys(grp)))
            self.groups = out
        self.resolved_groups: list[list[str]] = []

    def init(self, model: SegregationModel) -> None:
        """Check that the ids exist and are of the level, or that ``"renewal"`` forms groups."""
        if self.groups == "renewal" and not self.renewal_groups(model):
            self.fail("groups", "renewal", "a rule that forms groups: this city's urban-renewal "
                      "areas give none (city.n_renewal_areas="
                      f"{int(model.city.renewal.sum())}; each group needs 2 open schools)")
        if isinstance(self.groups, list):
            for i, grp in enumerate(self.groups):
                for uid in grp:
                    self.school_id(model, uid, f"groups[{i}]", self._lev)

    def renewal_groups(self, model: SegregationModel) -> list[np.ndarray]:
        """The ``"renewal"`` groups (global school indices) under the current catchments."""
        c, sch = model.city, model.schools
        ids = model.level_ids(self._lev)
        lab = catchment_array(model, self._lev)
        is_open = sch.open[ids]
        nb = neighbours4(c.width, c.height)
        # touch[k, j]: catchments k and j share a 4-neighbour edge.
        src = np.repeat(np.arange(c.n_cells), 4)
        dst = nb.reshape(-1)
        m = (dst >= 0) & (lab[src] >= 0)
        m &= lab[np.maximum(dst, 0)] >= 0
        touch = np.zeros((len(ids), len(ids)), dtype=bool)
        touch[lab[src[m]], lab[dst[m]]] = True
        xy = c.xy[sch.cell[ids]]
        km = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        taken: set[int] = set()
        out = []
        for d in np.flatnonzero(c.renewal):
            core = set(np.flatnonzero(is_open & (c.district[sch.cell[ids]] == d)).tolist())
            cover = np.bincount(lab[(c.district == d) & (lab >= 0)], minlength=len(ids))
            cover = np.where(is_open, cover, -1)
            if cover.max() > 0:
                core.add(int(np.argmax(cover)))
            if not core:
                continue
            core_a = np.array(sorted(core))
            near = is_open & touch[core_a].any(0) & (km[core_a].min(0) <= self.max_km)
            group = (core | set(np.flatnonzero(near).tolist())) - taken
            if len(group) >= 2:
                taken |= group
                out.append(ids[np.array(sorted(group))])
        return out

    def act(self, model: SegregationModel) -> None:
        """Mark the shared areas and register the groups."""
        if self.groups == "renewal":
            groups = self.renewal_groups(model)
        else:
            n = len(model.schools.cell)
            groups = [np.array(sorted(parse_unit_id(u, SCHOOL, n) for u in g)) for g in self.groups]
        level_of = model.schools.level
        in_use = {int(s) for g in model.shared_schools for s in g if level_of[s] == self._lev}
        for i, grp in enumerate(groups):
            if model.schools.open[grp].sum() < 2:
                self.fail("groups", unit_ids(SCHOOL, grp),
                          "groups with at least 2 open schools when the lever acts")
            dup = sorted(in_use.intersection(grp.tolist()))
            if dup:
                self.fail("groups", unit_id(SCHOOL, dup[0]),
                          f"a school in one shared catchment only (group {i} overlaps a "
                          "shared catchment set by an earlier lever)")
        for grp in groups:
            model.share_catchment(self._lev, grp)
        self.resolved_groups = [unit_ids(SCHOOL, g) for g in groups]


# ---------------------------------------------------------------------- 4. network
@register("school_network")
class SchoolNetwork(_OneOffLever):
    """Open planned schools, close schools and change capacities.

    At ``start_year``: the planned schools are added and opened, the listed schools are
    closed (no new intake; enrolled pupils stay until they leave), capacities are set, and
    each level that gained or lost a school gets nearest-open-school catchments
    (``model.rebuild_catchments``; this redraws the whole level, undoing earlier catchment
    edits of that level). Capacity changes alone leave catchments as they are.

    Planned schools are appended to the school arrays at ``start_year`` (global indices
    after the existing ones, in list order; stored in ``opened_ids``), not in ``init``: the
    model's reputation scaling and the school and catchment indices run over every school of
    a level, open or not, so a closed school added before the start would already change
    earlier years' results, which a lever must leave bit-identical. A consequence: other
    levers cannot name a planned school in their ``init``.

    Args:
        open: Planned schools, each ``{"cell": flat cell id, "level": "lower" | "upper",
            "capacity": seats}``, on land and not on a cell holding a school of that level.
        close: Ids of schools to close.
        capacity: New capacity (seats, a positive integer) per school id.
        start_year: Year of the change (at that year's levers point).
        end_year: Must be ``None``: the change stays in force.

    Raises:
        ValueError: Malformed entries, a sea or out-of-grid cell, a non-positive capacity,
            unknown school ids, or closing every school of a level.
    """

    def __init__(self, open: list[dict] | None = None, close: list[str] | None = None,
                 capacity: dict[str, int] | None = None, start_year: int = 1,
                 end_year: int | None = None) -> None:
        super().__init__(start_year, end_year)
        opens = [] if open is None else open
        if isinstance(opens, str | Mapping) or not isinstance(opens, Sequence):
            self.fail("open", opens, "a list of {cell, level, capacity} entries")
        self.open: list[dict[str, Any]] = []
        for i, spec in enumerate(opens):
            if not isinstance(spec, Mapping) or set(spec) != {"cell", "level", "capacity"}:
                self.fail(f"open[{i}]", spec, "a mapping with keys cell, level, capacity")
            cell, cap = spec["cell"], spec["capacity"]
            if isinstance(cell, bool) or not isinstance(cell, int) or cell < 0:
                self.fail(f"open[{i}].cell", cell, "a flat cell id (integer >= 0)")
            self.check_level(spec["level"], f"open[{i}].level")
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                self.fail(f"open[{i}].capacity", cap, "a positive integer number of seats")
            self.open.append({"cell": cell, "level": spec["level"], "capacity": cap})
        self.close = self.check_schools_format([] if close is None else close, "close")
        caps = {} if capacity is None else capacity
        if not isinstance(caps, Mapping):
            self.fail("capacity", caps, "a mapping of school id to seats")
        for uid, cap in caps.items():
            self.check_schools_format([uid], "capacity")
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                self.fail(f"capacity[{uid}]", cap, "a positive integer number of seats")
        self.capacity = dict(caps)
        self.opened_ids: list[str] = []

    def init(self, model: SegregationModel) -> None:
        """Check cells and ids; refuse to close every school of a level."""
        c, sch = model.city, model.schools
        taken = {(int(sch.cell[i]), int(sch.level[i])) for i in range(len(sch.cell))}
        for i, spec in enumerate(self.open):
            cell, lev = spec["cell"], LEVELS[spec["level"]]
            if cell >= c.n_cells or not c.land[cell]:
                self.fail(f"open[{i}].cell", cell, f"a land cell (0..{c.n_cells - 1}, not sea)")
            if (cell, lev) in taken:
                self.fail(f"open[{i}].cell", cell,
                          f"a cell without a {spec['level']} school (one is there already)")
            taken.add((cell, lev))
        closing = np.zeros(len(sch.cell), dtype=bool)
        for uid in self.close:
            closing[self.school_id(model, uid, "close")] = True
        for uid in self.capacity:
            self.school_id(model, uid, "capacity")
        for name, lev in LEVELS.items():
            left = (sch.open & ~closing & (sch.level == lev)).sum()
            left += sum(LEVELS[s["level"]] == lev for s in self.open)
            if left == 0:
                self.fail("close", self.close, f"leaving at least one open {name} school")

    def act(self, model: SegregationModel) -> None:
        """Open, close, set capacities and redraw the affected levels' catchments."""
        sch = model.schools
        affected: set[int] = set()
        self.opened_ids = []
        for spec in self.open:
            lev = LEVELS[spec["level"]]
            i = model.open_school(spec["cell"], lev, spec["capacity"])
            self.opened_ids.append(unit_id(SCHOOL, i))
            affected.add(lev)
        for uid in self.close:
            i = parse_unit_id(uid, SCHOOL, len(sch.cell))
            if sch.open[i]:
                model.close_school(i)
                affected.add(int(sch.level[i]))
        for grp in model.shared_schools:
            if not sch.open[grp].any():
                self.fail("close", self.close, "leaving at least one open school in each "
                          f"shared catchment (all of {unit_ids(SCHOOL, grp)} closed)")
        for uid, cap in self.capacity.items():
            model.resize_school(parse_unit_id(uid, SCHOOL, len(sch.cell)), cap)
        for lev in sorted(affected):
            model.rebuild_catchments(lev)
