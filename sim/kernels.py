"""Numba kernels: the hot choice steps, as pure functions on arrays.

No kernel draws random numbers: uniforms and Gumbel shocks arrive as arrays drawn from the
run's named streams (``sim.rng``). No ``fastmath``, so results are reproducible bit for bit.
Each choice rule has a plain-Python per-agent reference in ``tests/reference.py`` that must
give the same choices from the same draws.

Dwelling slots are encoded as ``cell * 3 + tenure``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NEG_INF = -1e300


@njit(cache=True)
def schelling_v(x: float, x0: float, m: float) -> float:
    """Single-peaked satisfaction with own-group share ``x`` (Sage & Flache 2021).

    ``V = x / x0`` up to the preferred share ``x0``, then falls linearly to ``m`` at ``x = 1``.
    """
    if x <= x0:
        return x / x0
    return m + (1.0 - x) * (1.0 - m) / (1.0 - x0)


@njit(cache=True)
def dwelling_utility(
    i: int,
    slot: int,
    moving_in: bool,
    home: int,
    fam_ses: np.ndarray,
    fam_lang: np.ndarray,
    fam_level: np.ndarray,
    arriving: bool,
    cell_ses: np.ndarray,
    cell_lang: np.ndarray,
    dist_ses: np.ndarray,
    dist_lang: np.ndarray,
    cell_district: np.ndarray,
    cell_xy: np.ndarray,
    price: np.ndarray,
    amenity: np.ndarray,
    renewal_cell: np.ndarray,
    school_of_cell: np.ndarray,
    rep_perceived: np.ndarray,
    pw: np.ndarray,
    tenure_taste: np.ndarray,
) -> float:
    """Systematic utility of dwelling ``slot`` for family ``i`` (without the Gumbel shock).

    ``pw`` packs the scalar and per-class weights, see ``SegregationModel.dwelling_params``:
    [x0, m, b, w_afford, social_max_ses, w_distance, foreign_renewal_taste,
    w_comp_ses(3), w_comp_lang(2), w_school(3), w_amenity(3), budget(3), tenure_cost(3)].
    ``moving_in`` adds the family itself to the destination's composition.
    """
    cell = slot // 3
    ten = slot % 3
    s = fam_ses[i]
    g = fam_lang[i]
    if ten == 0 and s > pw[4]:
        return NEG_INF  # social rental is income-tested
    add = 1.0 if moving_in else 0.0
    d = cell_district[cell]
    b = pw[2]
    c_tot = cell_ses[cell, 0] + cell_ses[cell, 1] + cell_ses[cell, 2] + add
    d_tot = dist_ses[d, 0] + dist_ses[d, 1] + dist_ses[d, 2] + add
    x_ses = (1.0 - b) * (cell_ses[cell, s] + add) / c_tot + b * (dist_ses[d, s] + add) / d_tot
    x_lang = (1.0 - b) * (cell_lang[cell, g] + add) / c_tot + b * (dist_lang[d, g] + add) / d_tot
    u = pw[7 + s] * schelling_v(x_ses, pw[0], pw[1])
    u += pw[10 + g] * schelling_v(x_lang, pw[0], pw[1])
    lev = fam_level[i]
    if lev >= 0:
        u += pw[12 + s] * rep_perceived[g, school_of_cell[lev, cell]]
    u += pw[15 + s] * amenity[cell]
    cost = price[cell] * pw[21 + ten]
    over = cost - pw[18 + s]
    if over > 0.0:
        u -= pw[3] * over
    u += tenure_taste[s, ten]
    if home >= 0:
        dx = cell_xy[cell, 0] - cell_xy[home, 0]
        dy = cell_xy[cell, 1] - cell_xy[home, 1]
        u -= pw[5] * np.sqrt(dx * dx + dy * dy)
    if arriving and g == 1 and renewal_cell[cell]:
        u += pw[6]
    return u


@njit(cache=True)
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


@njit(cache=True)
def relocate(
    order: np.ndarray,
    arriving: bool,
    stay_bonus: float,
    fam_ses: np.ndarray,
    fam_lang: np.ndarray,
    fam_level: np.ndarray,
    fam_cell: np.ndarray,
    fam_tenure: np.ndarray,
    vac: np.ndarray,
    n_vac: int,
    cell_ses: np.ndarray,
    cell_lang: np.ndarray,
    dist_ses: np.ndarray,
    dist_lang: np.ndarray,
    cell_district: np.ndarray,
    cell_xy: np.ndarray,
    price: np.ndarray,
    amenity: np.ndarray,
    renewal_cell: np.ndarray,
    school_of_cell: np.ndarray,
    rep_perceived: np.ndarray,
    pw: np.ndarray,
    tenure_taste: np.ndarray,
    height: int,
    radius: int,
    u_cand: np.ndarray,
    u_local: np.ndarray,
    gumbel: np.ndarray,
) -> tuple:
    """Sequential conditional-logit choice over a searched set of vacant dwellings.

    Families in ``order`` choose one at a time, so later choosers see earlier moves (the
    vacancy list, vacancy counts and composition counts are updated in place). A family's
    search finds ``K = u_cand.shape[1]`` vacancies drawn uniformly from the whole city (with
    replacement) and, if it has a home, up to ``L = u_local.shape[1]`` more from cells
    within ``radius`` cells of it (``local_candidate``): families search near home, as most
    moves are local. It picks the best of what it found and, if housed, of staying (with
    ``stay_bonus``); utility plus Gumbel shock ``gumbel[j, k]``: columns ``0..K-1`` city-wide
    candidates, ``K`` staying, ``K+1..K+L`` local candidates. The search is the behavioural
    rule, so no sampling correction is added.

    Args:
        order: Family slots in decision order.
        arriving: True for families arriving from outside (no current home, no stay option).
        stay_bonus: Utility of staying (moving costs).
        height: Grid height (cell ``i`` is at ``(i // height, i % height)``).
        radius: Local search radius in cells.
        u_cand: Uniforms (len(order), K) that pick the city-wide candidates.
        u_local: Uniforms (len(order), L, 3) for the local candidates.
        gumbel: Gumbel shocks (len(order), K + 1 + L).
        Other arrays: see ``dwelling_utility``; ``vac[:n_vac]`` lists vacant dwelling slots.

    Returns:
        ``(moved, n_vac)``: bool array over ``order`` (placed/moved) and the new vacancy count.
    """
    n_cand = u_cand.shape[1]
    n_local = u_local.shape[1]
    vcount = np.zeros(len(cell_district) * 3, dtype=np.int64)
    for q in range(n_vac):
        vcount[vac[q]] += 1
    moved = np.zeros(len(order), dtype=np.bool_)
    for j in range(len(order)):
        i = order[j]
        home = fam_cell[i]
        best = NEG_INF
        best_slot = -1
        best_idx = -1  # position in vac, or -1 for a local candidate (found by scan)
        if home >= 0:
            slot0 = home * 3 + fam_tenure[i]
            best = stay_bonus + gumbel[j, n_cand] + dwelling_utility(
                i, slot0, False, -1, fam_ses, fam_lang, fam_level, arriving, cell_ses,
                cell_lang, dist_ses, dist_lang, cell_district, cell_xy, price, amenity,
                renewal_cell, school_of_cell, rep_perceived, pw, tenure_taste)
        if n_vac == 0:
            continue
        for k in range(n_cand + n_local):
            if k < n_cand:
                idx = int(u_cand[j, k] * n_vac)
                slot = vac[idx]
                col = k
            else:
                if home < 0:
                    break
                idx = -1
                slot = local_candidate(home, height, radius, u_local[j, k - n_cand], vcount)
                col = k + 1
                if slot < 0:
                    continue
            v = dwelling_utility(
                i, slot, True, home, fam_ses, fam_lang, fam_level, arriving, cell_ses,
                cell_lang, dist_ses, dist_lang, cell_district, cell_xy, price, amenity,
                renewal_cell, school_of_cell, rep_perceived, pw, tenure_taste)
            if v <= NEG_INF:
                continue
            v += gumbel[j, col]
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
        s = fam_ses[i]
        g = fam_lang[i]
        if home >= 0:
            old = home * 3 + fam_tenure[i]
            vac[n_vac] = old
            n_vac += 1
            vcount[old] += 1
            cell_ses[home, s] -= 1
            cell_lang[home, g] -= 1
            dist_ses[cell_district[home], s] -= 1
            dist_lang[cell_district[home], g] -= 1
        cell = best_slot // 3
        fam_cell[i] = cell
        fam_tenure[i] = best_slot % 3
        cell_ses[cell, s] += 1
        cell_lang[cell, g] += 1
        dist_ses[cell_district[cell], s] += 1
        dist_lang[cell_district[cell], g] += 1
        moved[j] = True
    return moved, n_vac


@njit(cache=True)
def daycare_choice(
    order: np.ndarray,
    child_ses: np.ndarray,
    child_lang: np.ndarray,
    cand: np.ndarray,
    cand_km: np.ndarray,
    private: np.ndarray,
    rep_perceived: np.ndarray,
    w_distance: float,
    w_reputation: np.ndarray,
    w_private: np.ndarray,
    gumbel: np.ndarray,
    seats: np.ndarray,
) -> np.ndarray:
    """Capacity-constrained daycare choice in a random priority order (serial dictatorship).

    Each child in ``order`` takes the best daycare with a free seat among its candidates
    ``cand[j]`` (the nearest ones to its home), with utility
    ``-w_distance*km + w_reputation[ses]*rep[lang] + w_private[ses]*private + gumbel``.

    Args:
        order: Child indices (into ``child_ses``/``child_lang``) in priority order; row ``j``
            of ``cand``, ``cand_km`` and ``gumbel`` belongs to ``order[j]``.
        seats: Free seats per daycare, decremented in place.

    Returns:
        Daycare index per entry of ``order``, or -1 where no candidate had a seat.

    """
    out = np.full(len(order), -1, dtype=np.int64)
    for j in range(len(order)):
        c = order[j]
        s = child_ses[c]
        g = child_lang[c]
        best = NEG_INF
        best_d = -1
        for k in range(cand.shape[1]):
            d = cand[j, k]
            if d < 0 or seats[d] <= 0:
                continue
            u = -w_distance * cand_km[j, k] + w_reputation[s] * rep_perceived[g, d]
            if private[d]:
                u += w_private[s]
            u += gumbel[j, k]
            if u > best:
                best = u
                best_d = d
        if best_d >= 0:
            seats[best_d] -= 1
            out[j] = best_d
    return out


@njit(cache=True)
def rank_programmes(
    looks: np.ndarray,
    child_ses: np.ndarray,
    child_lang: np.ndarray,
    home_xy: np.ndarray,
    local_school: np.ndarray,
    school_ids: np.ndarray,
    school_xy: np.ndarray,
    school_emphasis: np.ndarray,
    rep_perceived: np.ndarray,
    lang_share: np.ndarray,
    w_rep: np.ndarray,
    w_comp: np.ndarray,
    w_dist: np.ndarray,
    w_emph: np.ndarray,
    local_bonus: np.ndarray,
    max_km: float,
    n_ranked: int,
    gumbel: np.ndarray,
) -> np.ndarray:
    """Build each applicant's ranked list of programmes (logit ranking by Gumbel shocks).

    Programme ``2*s`` is school ``s``'s general class, ``2*s+1`` its emphasised class.
    Applicants who do not look beyond the local school (``looks[j]`` False) list only their
    catchment school's general class. Lookers rank the programmes within ``max_km`` by
    ``w_rep*rep + w_comp*own-language share - w_dist*km + w_emph*emphasis + gumbel``, plus
    ``local_bonus[s]`` (familiarity and trust, per school) for their catchment school, and
    keep those ranked above their catchment general class, at most ``n_ranked``; the catchment
    general class always closes the list (the guaranteed place).

    Args:
        looks: Bool per applicant.
        local_school: Catchment school (global index) per applicant.
        school_ids: Global indices of the schools of this level (columns of ``gumbel`` are
            ``2 * len(school_ids)`` programmes in that order).
        lang_share: Share of each language group among pupils, shape (2, n_schools_all).

    Returns:
        Int array (n_applicants, n_ranked + 1) of programme ids, -1 padded.

    """
    n = len(looks)
    n_s = len(school_ids)
    out = np.full((n, n_ranked + 1), -1, dtype=np.int64)
    util = np.empty(2 * n_s)
    for j in range(n):
        loc = local_school[j]
        if not looks[j]:
            out[j, 0] = 2 * loc
            continue
        s_ = child_ses[j]
        g = child_lang[j]
        u_local = NEG_INF
        for q in range(n_s):
            sch = school_ids[q]
            dx = school_xy[sch, 0] - home_xy[j, 0]
            dy = school_xy[sch, 1] - home_xy[j, 1]
            km = np.sqrt(dx * dx + dy * dy)
            base = w_rep[s_] * rep_perceived[g, sch] + w_comp[s_] * lang_share[g, sch]
            base -= w_dist[s_] * km
            if sch == loc:
                base += local_bonus[sch]
            elif km > max_km:
                base = NEG_INF
            util[2 * q] = base + gumbel[j, 2 * q] if base > NEG_INF else NEG_INF
            if school_emphasis[sch] and base > NEG_INF:
                util[2 * q + 1] = base + w_emph[s_] + gumbel[j, 2 * q + 1]
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
            out[j, n_out] = 2 * school_ids[best_p // 2] + best_p % 2
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
