"""Numba kernels: the hot choice steps, as pure functions on arrays.

No kernel draws random numbers: uniforms and Gumbel shocks arrive as arrays drawn from the
run's named streams (``sim.rng``). No ``fastmath``, so results are reproducible bit for bit.
Each choice rule has a plain-Python per-agent reference in ``tests/reference.py`` that must
give the same choices from the same draws.

Inputs are grouped in named tuples (numba compiles them as records), so a call names what it
passes: the households, the composition counts, the city grid, the catchment schools, the
preference weights and the random draws. Dwelling slots are encoded as ``cell * 3 + tenure``.

The helpers of the dwelling choice are inlined into the loops that call them once per
family and candidate (``INLINE``), which spares the reference counting of every array they
are passed; those loops use numpy's error model (``NO_RAISE``), so a division has no
zero check: no denominator there can be zero (counts that include the family itself,
``x0`` validated in [0.01, 0.99]), so results are the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

NEG_INF = -1e300
INLINE = {"cache": True, "inline": "always"}  # numba IR inlining into the caller
NO_RAISE = {"cache": True, "error_model": "numpy"}  # no zero check per division


class Households(NamedTuple):
    """Family attributes by family slot."""

    ses: np.ndarray  # int: 0 low, 1 middle, 2 high status
    lang: np.ndarray  # int: 0 native, 1 foreign-language
    level: np.ndarray  # int: school level the family cares about (0, 1; -1 none)
    cell: np.ndarray  # int: home cell, -1 while not housed (updated by ``relocate``)
    tenure: np.ndarray  # int: 0 social, 1 private rental, 2 owner (updated by ``relocate``)


class Composition(NamedTuple):
    """Housed families by status and language, per cell and per district."""

    cell_ses: np.ndarray  # (n_cells, 3)
    cell_lang: np.ndarray  # (n_cells, 2)
    dist_ses: np.ndarray  # (n_districts, 3)
    dist_lang: np.ndarray  # (n_districts, 2)


class Grid(NamedTuple):
    """The city's cells (flat cell ``i`` sits at ``(i // height, i % height)``)."""

    district: np.ndarray  # int (n_cells,)
    xy: np.ndarray  # float (n_cells, 2), km
    price: np.ndarray  # float (n_cells,)
    amenity: np.ndarray  # float (n_cells,)
    renewal: np.ndarray  # bool (n_cells,): cell in an urban-renewal area
    height: int


class Catchments(NamedTuple):
    """Each cell's catchment school and the schools' perceived reputations."""

    school_of_cell: np.ndarray  # int (2 levels, n_cells), global school index
    rep_perceived: np.ndarray  # float (2 language groups, n_schools)


class DwellingPrefs(NamedTuple):
    """Residential-choice weights; per-class arrays are indexed by status or language."""

    x0: float  # preferred own-group share (single-peaked satisfaction)
    m_homog: float  # satisfaction at an all-own-group neighbourhood
    local_weight: float  # weight of the district (vs own cell) in composition
    w_afford: float  # disutility per unit of cost over budget
    social_max_ses: float  # highest status class admitted to social rental
    w_distance: float  # disutility per km moved
    foreign_renewal_taste: float  # arriving foreign-language families' pull to renewal areas
    stay_bonus: float  # utility of staying (moving costs)
    radius: int  # local search radius in cells
    w_comp_ses: np.ndarray  # (3,)
    w_comp_lang: np.ndarray  # (2,)
    w_school: np.ndarray  # (3,)
    w_amenity: np.ndarray  # (3,)
    budget: np.ndarray  # (3,)
    tenure_cost: np.ndarray  # (3,) by tenure
    tenure_taste: np.ndarray  # (3 status, 3 tenure)


class Search(NamedTuple):
    """Random draws of the families in ``order``, row ``j`` for ``order[j]``."""

    u_cand: np.ndarray  # (n, K) uniforms that pick the city-wide candidates
    u_local: np.ndarray  # (n, L, 3) uniforms for the local candidates
    gumbel: np.ndarray  # (n, K + 1 + L) shocks: candidates, staying, local candidates


class DaycareSeekers(NamedTuple):
    """Children looking for a daycare place, in priority order."""

    ses: np.ndarray  # int (n,)
    lang: np.ndarray  # int (n,)
    cand: np.ndarray  # int (n, m): the nearest daycares to home
    cand_km: np.ndarray  # float (n, m)
    gumbel: np.ndarray  # float (n, m)


class DaycareUnits(NamedTuple):
    """The daycares as choice alternatives."""

    private: np.ndarray  # bool (n_daycares,)
    rep_perceived: np.ndarray  # float (2, n_daycares)
    seats: np.ndarray  # int (n_daycares,): free seats, decremented in place


class DaycarePrefs(NamedTuple):
    """Daycare-choice weights."""

    w_distance: float
    w_reputation: np.ndarray  # (3,) by status
    w_private: np.ndarray  # (3,) by status


class Applicants(NamedTuple):
    """Pupils applying at one level."""

    looks: np.ndarray  # bool (n,): looks beyond the catchment school
    ses: np.ndarray  # int (n,)
    lang: np.ndarray  # int (n,)
    home_xy: np.ndarray  # float (n, 2)
    local: np.ndarray  # int (n,): guaranteed (catchment) school, global index
    gumbel: np.ndarray  # float (n, 2 * n_programmes_schools); unread where ``looks`` is False


class Programmes(NamedTuple):
    """The open schools of one level; school ``s`` offers programmes ``2s`` and ``2s+1``."""

    ids: np.ndarray  # int: global indices of the level's open schools
    xy: np.ndarray  # float (n_schools_all, 2)
    emphasis: np.ndarray  # bool (n_schools_all,)
    rep_perceived: np.ndarray  # float (2, n_schools_all)
    lang_share: np.ndarray  # float (2, n_schools_all): share of each group among pupils
    local_bonus: np.ndarray  # float (n_schools_all,): familiarity and trust


class SchoolPrefs(NamedTuple):
    """School-choice weights, per status class."""

    w_rep: np.ndarray
    w_comp: np.ndarray
    w_dist: np.ndarray
    w_emph: np.ndarray
    max_km: float
    n_ranked: int


@njit(cache=True)
def youngest_age(family: np.ndarray, age: np.ndarray, active: np.ndarray,
                 out: np.ndarray) -> None:
    """Lower ``out[f]`` to the age of each active child of family ``f`` (one pass).

    ``out`` arrives filled with a ceiling (e.g. 99 for "no child"); a grouped minimum that
    ``np.minimum.at`` takes ten times longer for.
    """
    for c in range(len(family)):
        if active[c] and age[c] < out[family[c]]:
            out[family[c]] = age[c]


@njit(cache=True)
def tally(unit: np.ndarray, family: np.ndarray, ses: np.ndarray, lang: np.ndarray,
          out: np.ndarray) -> None:
    """Count people by unit and by their family's status and language (one pass).

    Person ``i`` counts if ``unit[i] >= 0``: one in ``out[unit[i], ses[f]]`` and one in
    ``out[unit[i], 3 + lang[f]]``, ``f = family[i]``; for families themselves, ``family``
    is ``arange``. ``out`` (n_units, 5) is added to. Numpy needs a gather and a bincount
    for each of these.
    """
    for i in range(len(unit)):
        u = unit[i]
        if u >= 0:
            f = family[i]
            out[u, ses[f]] += 1
            out[u, 3 + lang[f]] += 1


@njit(cache=True)
def add_rows(label: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """Add ``rows[i]`` to ``out[label[i]]`` wherever ``label[i] >= 0`` (a grouped row sum)."""
    for i in range(len(label)):
        g = label[i]
        if g >= 0:
            for j in range(rows.shape[1]):
                out[g, j] += rows[i, j]


@njit(**INLINE)
def schelling_v(x: float, x0: float, m: float) -> float:
    """Single-peaked satisfaction with own-group share ``x`` (Sage & Flache 2021).

    ``V = x / x0`` up to the preferred share ``x0``, then falls linearly to ``m`` at ``x = 1``.
    """
    if x <= x0:
        return x / x0
    return m + (1.0 - x) * (1.0 - m) / (1.0 - x0)


@njit(**INLINE)
def own_shares(cell: int, s: int, g: int, add: float, comp: Composition, district: np.ndarray,
               b: float) -> tuple:
    """Own-status and own-language shares around ``cell``: own cell and district, weight ``b``.

    ``add`` counts the family itself in (1 when it would move in, 0 when it lives there).
    """
    d = district[cell]
    c_tot = comp.cell_ses[cell, 0] + comp.cell_ses[cell, 1] + comp.cell_ses[cell, 2] + add
    d_tot = comp.dist_ses[d, 0] + comp.dist_ses[d, 1] + comp.dist_ses[d, 2] + add
    x_ses = ((1.0 - b) * (comp.cell_ses[cell, s] + add) / c_tot
             + b * (comp.dist_ses[d, s] + add) / d_tot)
    x_lang = ((1.0 - b) * (comp.cell_lang[cell, g] + add) / c_tot
              + b * (comp.dist_lang[d, g] + add) / d_tot)
    return x_ses, x_lang


@njit(**NO_RAISE, parallel=True)
def dissatisfaction(active: np.ndarray, hh: Households, comp: Composition, grid: Grid,
                    catch: Catchments, prefs: DwellingPrefs, out: np.ndarray) -> None:
    """Dissatisfaction of each housed family with its neighbourhood and catchment school.

    One minus the single-peaked satisfaction with the own-status and own-language shares
    (the relocation utility's composition rule), weighted per class, plus the shortfall of
    the family's catchment school's perceived reputation below the level's mean. Writes
    ``out[i]`` for the housed families ``active``; other entries are left as they are.
    Families are independent, so the loop runs on numba's threads when there are several.
    """
    for j in prange(len(active)):
        i = active[j]
        cell = hh.cell[i]
        s = hh.ses[i]
        g = hh.lang[i]
        x_s, x_l = own_shares(cell, s, g, 0.0, comp, grid.district, prefs.local_weight)
        lev = hh.level[i]
        rep = catch.rep_perceived[g, catch.school_of_cell[max(lev, 0), cell]]
        school = prefs.w_school[s] * max(0.0, -rep) * (1.0 if lev >= 0 else 0.0)
        out[i] = (prefs.w_comp_ses[s] * (1.0 - schelling_v(x_s, prefs.x0, prefs.m_homog))
                  + prefs.w_comp_lang[g] * (1.0 - schelling_v(x_l, prefs.x0, prefs.m_homog))
                  + school)


@njit(**INLINE)
def dwelling_utility(i: int, slot: int, moving_in: bool, home: int, arriving: bool,
                     hh: Households, comp: Composition, grid: Grid, catch: Catchments,
                     prefs: DwellingPrefs) -> float:
    """Systematic utility of dwelling ``slot`` for family ``i`` (without the Gumbel shock).

    ``moving_in`` adds the family itself to the destination's composition; ``home`` (or -1)
    is where distance is measured from.
    """
    cell = slot // 3
    ten = slot % 3
    s = hh.ses[i]
    g = hh.lang[i]
    if ten == 0 and s > prefs.social_max_ses:
        return NEG_INF  # social rental is income-tested
    add = 1.0 if moving_in else 0.0
    x_ses, x_lang = own_shares(cell, s, g, add, comp, grid.district, prefs.local_weight)
    u = prefs.w_comp_ses[s] * schelling_v(x_ses, prefs.x0, prefs.m_homog)
    u += prefs.w_comp_lang[g] * schelling_v(x_lang, prefs.x0, prefs.m_homog)
    lev = hh.level[i]
    if lev >= 0:
        u += prefs.w_school[s] * catch.rep_perceived[g, catch.school_of_cell[lev, cell]]
    u += prefs.w_amenity[s] * grid.amenity[cell]
    cost = grid.price[cell] * prefs.tenure_cost[ten]
    over = cost - prefs.budget[s]
    if over > 0.0:
        u -= prefs.w_afford * over
    u += prefs.tenure_taste[s, ten]
    if home >= 0:
        dx = grid.xy[cell, 0] - grid.xy[home, 0]
        dy = grid.xy[cell, 1] - grid.xy[home, 1]
        u -= prefs.w_distance * np.sqrt(dx * dx + dy * dy)
    if arriving and g == 1 and grid.renewal[cell]:
        u += prefs.foreign_renewal_taste
    return u


@njit(**INLINE)
def local_candidate(home: int, height: int, radius: int, u: np.ndarray,
                    vcount: np.ndarray) -> int:
    """A vacant dwelling slot in a random cell of the square window around ``home``, or -1.

    ``u[0]``, ``u[1]`` pick the cell offset in ``[-radius, radius]``; ``u[2]`` picks one of the
    cell's vacant dwellings (by tenure, in proportion to their counts ``vcount``). Draws that
    land outside the grid or on a cell without vacancies give -1.
    """
    width = len(vcount) // 3 // height
    side = 2 * radius + 1
    x = home // height + int(u[0] * side) - radius
    y = home % height + int(u[1] * side) - radius
    if x < 0 or x >= width or y < 0 or y >= height:
        return -1
    cell = x * height + y
    tot = vcount[3 * cell] + vcount[3 * cell + 1] + vcount[3 * cell + 2]
    if tot == 0:
        return -1
    pick = int(u[2] * tot)
    t = 0
    while pick >= vcount[3 * cell + t]:
        pick -= vcount[3 * cell + t]
        t += 1
    return 3 * cell + t


@njit(**NO_RAISE)
def relocate(order: np.ndarray, arriving: bool, vac: np.ndarray, n_vac: int, hh: Households,
             comp: Composition, grid: Grid, catch: Catchments, prefs: DwellingPrefs,
             draws: Search) -> tuple:
    """Sequential conditional-logit choice over a searched set of vacant dwellings.

    Families in ``order`` choose one at a time, so later choosers see earlier moves (the
    vacancy list, vacancy counts and composition counts are updated in place). A family's
    search finds ``K`` vacancies drawn uniformly from the whole city (with replacement) and,
    if it has a home, up to ``L`` more from cells within ``prefs.radius`` cells of it
    (``local_candidate``): families search near home, as most moves are local. It picks the
    best of what it found and, if housed, of staying (with ``prefs.stay_bonus``); utility
    plus Gumbel shock (``Search``). The search is the behavioural rule, so no sampling
    correction is added.

    Args:
        order: Family slots in decision order.
        arriving: True for families arriving from outside (no current home, no stay option).
        vac: Vacant dwelling slots in ``vac[:n_vac]`` (updated in place).
        n_vac: Number of vacancies.
        hh: Households; ``cell`` and ``tenure`` are updated for movers.
        comp: Composition counts, updated as families move.
        grid: The city's cells.
        catch: Catchment schools and reputations.
        prefs: Residential-choice weights.
        draws: The families' uniforms and shocks.

    Returns:
        ``(moved, n_vac)``: bool array over ``order`` (placed/moved) and the new vacancy count.
    """
    n_cand = draws.u_cand.shape[1]
    n_local = draws.u_local.shape[1]
    vcount = np.zeros(len(grid.district) * 3, dtype=np.int64)
    for q in range(n_vac):
        vcount[vac[q]] += 1
    moved = np.zeros(len(order), dtype=np.bool_)
    for j in range(len(order)):
        i = order[j]
        home = hh.cell[i]
        best = NEG_INF
        best_slot = -1
        best_idx = -1  # position in vac, or -1 for a local candidate (found by scan)
        if home >= 0:
            slot0 = home * 3 + hh.tenure[i]
            best = prefs.stay_bonus + draws.gumbel[j, n_cand] + dwelling_utility(
                i, slot0, False, -1, arriving, hh, comp, grid, catch, prefs)
        if n_vac == 0:
            continue
        for k in range(n_cand + n_local):
            if k < n_cand:
                idx = int(draws.u_cand[j, k] * n_vac)
                slot = vac[idx]
                col = k
            else:
                if home < 0:
                    break
                idx = -1
                slot = local_candidate(home, grid.height, prefs.radius,
                                       draws.u_local[j, k - n_cand], vcount)
                col = k + 1
                if slot < 0:
                    continue
            v = dwelling_utility(i, slot, True, home, arriving, hh, comp, grid, catch, prefs)
            if v <= NEG_INF:
                continue
            v += draws.gumbel[j, col]
            if v > best:
                best = v
                best_slot = slot
                best_idx = idx
        if best_slot < 0:
            continue
        if best_idx < 0:
            best_idx = 0
            while vac[best_idx] != best_slot:
                best_idx += 1
        vac[best_idx] = vac[n_vac - 1]
        n_vac -= 1
        vcount[best_slot] -= 1
        s = hh.ses[i]
        g = hh.lang[i]
        if home >= 0:
            old = home * 3 + hh.tenure[i]
            vac[n_vac] = old
            n_vac += 1
            vcount[old] += 1
            comp.cell_ses[home, s] -= 1
            comp.cell_lang[home, g] -= 1
            comp.dist_ses[grid.district[home], s] -= 1
            comp.dist_lang[grid.district[home], g] -= 1
        cell = best_slot // 3
        hh.cell[i] = cell
        hh.tenure[i] = best_slot % 3
        comp.cell_ses[cell, s] += 1
        comp.cell_lang[cell, g] += 1
        comp.dist_ses[grid.district[cell], s] += 1
        comp.dist_lang[grid.district[cell], g] += 1
        moved[j] = True
    return moved, n_vac


@njit(cache=True)
def daycare_choice(kids: DaycareSeekers, units: DaycareUnits, prefs: DaycarePrefs) -> np.ndarray:
    """Capacity-constrained daycare choice in priority order (serial dictatorship).

    Each child, in row order, takes the best daycare with a free seat among its candidates
    ``kids.cand[j]`` (the nearest ones to its home), with utility
    ``-w_distance*km + w_reputation[ses]*rep[lang] + w_private[ses]*private + gumbel``.
    ``units.seats`` is decremented in place.

    Returns:
        Daycare index per child, or -1 where no candidate had a seat.
    """
    n = len(kids.ses)
    out = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        s = kids.ses[j]
        g = kids.lang[j]
        best = NEG_INF
        best_d = -1
        for k in range(kids.cand.shape[1]):
            d = kids.cand[j, k]
            if d < 0 or units.seats[d] <= 0:
                continue
            u = (-prefs.w_distance * kids.cand_km[j, k]
                 + prefs.w_reputation[s] * units.rep_perceived[g, d])
            if units.private[d]:
                u += prefs.w_private[s]
            u += kids.gumbel[j, k]
            if u > best:
                best = u
                best_d = d
        if best_d >= 0:
            units.seats[best_d] -= 1
            out[j] = best_d
    return out


@njit(cache=True, parallel=True)
def rank_programmes(app: Applicants, prog: Programmes, prefs: SchoolPrefs) -> np.ndarray:
    """Build each applicant's ranked list of programmes (logit ranking by Gumbel shocks).

    Programme ``2*s`` is school ``s``'s general class, ``2*s+1`` its emphasised class.
    Applicants who do not look beyond the local school (``app.looks[j]`` False) list only
    their catchment school's general class. Lookers rank the programmes within ``max_km`` by
    ``w_rep*rep + w_comp*own-language share - w_dist*km + w_emph*emphasis + gumbel``, plus
    ``local_bonus[s]`` (familiarity and trust, per school) for their catchment school, and
    keep those ranked above their catchment general class, at most ``n_ranked``; the catchment
    general class always closes the list (the guaranteed place). Applicants are independent,
    so the loop runs on numba's threads when there are several.

    Returns:
        Int array (n_applicants, n_ranked + 1) of programme ids, -1 padded.
    """
    n = len(app.looks)
    n_s = len(prog.ids)
    n_ranked = prefs.n_ranked
    out = np.full((n, n_ranked + 1), -1, dtype=np.int64)
    for j in prange(n):
        loc = app.local[j]
        if not app.looks[j]:
            out[j, 0] = 2 * loc
            continue
        util = np.empty(2 * n_s)
        s_ = app.ses[j]
        g = app.lang[j]
        u_local = NEG_INF
        for q in range(n_s):
            sch = prog.ids[q]
            dx = prog.xy[sch, 0] - app.home_xy[j, 0]
            dy = prog.xy[sch, 1] - app.home_xy[j, 1]
            km = np.sqrt(dx * dx + dy * dy)
            base = (prefs.w_rep[s_] * prog.rep_perceived[g, sch]
                    + prefs.w_comp[s_] * prog.lang_share[g, sch])
            base -= prefs.w_dist[s_] * km
            if sch == loc:
                base += prog.local_bonus[sch]
            elif km > prefs.max_km:
                base = NEG_INF
            util[2 * q] = base + app.gumbel[j, 2 * q] if base > NEG_INF else NEG_INF
            if prog.emphasis[sch] and base > NEG_INF:
                util[2 * q + 1] = base + prefs.w_emph[s_] + app.gumbel[j, 2 * q + 1]
            else:
                util[2 * q + 1] = NEG_INF
            if sch == loc:
                u_local = util[2 * q]
        n_out = 0
        # Selection of the top programmes above the local general class, best first.
        while n_out < n_ranked:
            best = u_local
            best_p = -1
            for p in range(2 * n_s):
                if util[p] > best:
                    best = util[p]
                    best_p = p
            if best_p < 0:
                break
            out[j, n_out] = 2 * prog.ids[best_p // 2] + best_p % 2
            util[best_p] = NEG_INF
            n_out += 1
        out[j, n_out] = 2 * loc
    return out


@njit(cache=True)
def deferred_acceptance(prefs: np.ndarray, prio: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Applicant-proposing deferred acceptance (Gale & Shapley 1962).

    Args:
        prefs: Programme ids (n, L), best first, -1 padded.
        prio: Priority of applicant j at ``prefs[j, k]`` (n, L); higher is better, ties broken
            beforehand by a lottery so all are distinct.
        capacity: Seats per programme.

    Returns:
        Programme assigned to each applicant, -1 if none of its list admitted it.

    """
    n, n_l = prefs.shape
    n_p = len(capacity)
    start = np.zeros(n_p + 1, dtype=np.int64)
    for p in range(n_p):
        start[p + 1] = start[p] + max(capacity[p], 0)
    held = np.empty(start[n_p], dtype=np.int64)
    held_prio = np.empty(start[n_p])
    count = np.zeros(n_p, dtype=np.int64)
    nxt = np.zeros(n, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    stack = np.arange(n - 1, -1, -1).astype(np.int64)
    top = n
    while top > 0:
        top -= 1
        j = stack[top]
        k = nxt[j]
        if k >= n_l or prefs[j, k] < 0:
            continue  # list exhausted: unassigned
        p = prefs[j, k]
        pr = prio[j, k]
        nxt[j] = k + 1
        cap = start[p + 1] - start[p]
        if count[p] < cap:
            held[start[p] + count[p]] = j
            held_prio[start[p] + count[p]] = pr
            count[p] += 1
            out[j] = p
            continue
        worst = -1
        worst_pr = pr
        for h in range(start[p], start[p] + cap):
            if held_prio[h] < worst_pr:
                worst_pr = held_prio[h]
                worst = h
        if worst < 0:
            stack[top] = j  # rejected: propose to the next programme
            top += 1
            continue
        loser = held[worst]
        out[loser] = -1
        held[worst] = j
        held_prio[worst] = pr
        out[j] = p
        stack[top] = loser
        top += 1
    return out
