"""Plain-Python, per-agent reference implementations of the choice rules in ``sim.kernels``.

They take the same named inputs (``sim.kernels.Households``, ``Search``...) and pre-drawn
random numbers as the kernels and must give the same choices. They are written
independently where possible: the school allocation here is the round-based textbook
deferred acceptance, not the kernel's stack-based one, and the programme ranking sorts
instead of selecting. ``SegregationModel(cfg, kernels=reference)`` runs the whole model on
them (``tests/test_kernels.py``).
"""

from __future__ import annotations

import math

import numpy as np

NEG_INF = -1e300


def schelling_v(x: float, x0: float, m: float) -> float:
    """Single-peaked satisfaction (Sage & Flache 2021)."""
    return x / x0 if x <= x0 else m + (1.0 - x) * (1.0 - m) / (1.0 - x0)


def own_shares(cell, s, g, add, comp, district, b):
    """Own-status and own-language shares (own cell and district); mirrors the kernel."""
    d = district[cell]
    c_tot = comp.cell_ses[cell, 0] + comp.cell_ses[cell, 1] + comp.cell_ses[cell, 2] + add
    d_tot = comp.dist_ses[d, 0] + comp.dist_ses[d, 1] + comp.dist_ses[d, 2] + add
    x_ses = ((1.0 - b) * (comp.cell_ses[cell, s] + add) / c_tot
             + b * (comp.dist_ses[d, s] + add) / d_tot)
    x_lang = ((1.0 - b) * (comp.cell_lang[cell, g] + add) / c_tot
              + b * (comp.dist_lang[d, g] + add) / d_tot)
    return x_ses, x_lang


def dissatisfaction(active, hh, comp, grid, catch, prefs, out):
    """Per-family dissatisfaction; mirrors ``kernels.dissatisfaction``."""
    for i in active:
        s, g, lev, cell = int(hh.ses[i]), int(hh.lang[i]), int(hh.level[i]), int(hh.cell[i])
        x_s, x_l = own_shares(cell, s, g, 0.0, comp, grid.district, prefs.local_weight)
        school = 0.0
        if lev >= 0:
            rep = catch.rep_perceived[g, catch.school_of_cell[lev, cell]]
            school = prefs.w_school[s] * max(0.0, -rep) * 1.0
        out[i] = (prefs.w_comp_ses[s] * (1.0 - schelling_v(x_s, prefs.x0, prefs.m_homog))
                  + prefs.w_comp_lang[g] * (1.0 - schelling_v(x_l, prefs.x0, prefs.m_homog))
                  + school)


def dwelling_utility(i, slot, moving_in, home, arriving, hh, comp, grid, catch, prefs):
    """Per-family utility of a dwelling; mirrors ``kernels.dwelling_utility``."""
    s, g, level = int(hh.ses[i]), int(hh.lang[i]), int(hh.level[i])
    cell, ten = divmod(int(slot), 3)
    if ten == 0 and s > prefs.social_max_ses:
        return NEG_INF
    add = 1.0 if moving_in else 0.0
    x_ses, x_lang = own_shares(cell, s, g, add, comp, grid.district, prefs.local_weight)
    u = prefs.w_comp_ses[s] * schelling_v(x_ses, prefs.x0, prefs.m_homog)
    u += prefs.w_comp_lang[g] * schelling_v(x_lang, prefs.x0, prefs.m_homog)
    if level >= 0:
        u += prefs.w_school[s] * catch.rep_perceived[g, catch.school_of_cell[level, cell]]
    u += prefs.w_amenity[s] * grid.amenity[cell]
    over = grid.price[cell] * prefs.tenure_cost[ten] - prefs.budget[s]
    if over > 0.0:
        u -= prefs.w_afford * over
    u += prefs.tenure_taste[s, ten]
    if home >= 0:
        dx = grid.xy[cell, 0] - grid.xy[home, 0]
        dy = grid.xy[cell, 1] - grid.xy[home, 1]
        u -= prefs.w_distance * math.sqrt(dx * dx + dy * dy)
    if arriving and g == 1 and grid.renewal[cell]:
        u += prefs.foreign_renewal_taste
    return u


def local_candidate(home, height, radius, u, vcount):
    """A vacant dwelling near ``home`` or -1; mirrors ``kernels.local_candidate``."""
    width = len(vcount) // 3 // height
    side = 2 * radius + 1
    x = home // height + int(u[0] * side) - radius
    y = home % height + int(u[1] * side) - radius
    if not (0 <= x < width and 0 <= y < height):
        return -1
    cell = x * height + y
    counts = [int(vcount[3 * cell + t]) for t in range(3)]
    pick = int(u[2] * sum(counts))
    for t, c in enumerate(counts):
        if pick < c:
            return 3 * cell + t
        pick -= c
    return -1


def relocate(order, arriving, vac, n_vac, hh, comp, grid, catch, prefs, draws):
    """Sequential conditional-logit relocation; mirrors ``kernels.relocate``."""
    env = (hh, comp, grid, catch, prefs)
    u_cand, u_local, gumbel = draws.u_cand, draws.u_local, draws.gumbel
    vacancies = list(vac[:n_vac])
    vcount = np.bincount(np.asarray(vacancies, dtype=np.int64), minlength=3 * len(grid.district))
    n_cand = u_cand.shape[1]
    moved = np.zeros(len(order), dtype=bool)
    for j, i in enumerate(order):
        home = int(hh.cell[i])
        options = []  # (utility, slot, position in the list or -1), kernel order; first max wins
        if home >= 0:
            u0 = dwelling_utility(i, home * 3 + hh.tenure[i], False, -1, arriving, *env)
            options.append((prefs.stay_bonus + gumbel[j, n_cand] + u0, None, -1))
        if not vacancies:
            continue
        found = []  # (slot, Gumbel column, position in the list; -1: found by local search)
        for k in range(n_cand):
            pos = int(u_cand[j, k] * len(vacancies))
            found.append((vacancies[pos], k, pos))
        if home >= 0:
            for m in range(u_local.shape[1]):
                slot = local_candidate(home, grid.height, prefs.radius, u_local[j, m], vcount)
                if slot >= 0:
                    found.append((slot, n_cand + 1 + m, -1))
        for slot, col, pos in found:
            v = dwelling_utility(i, slot, True, home, arriving, *env)
            if v > NEG_INF:
                options.append((v + gumbel[j, col], slot, pos))
        best_u, best_slot, pos = NEG_INF, None, -1
        for u, slot, p in options:
            if u > best_u:
                best_u, best_slot, pos = u, slot, p
        if best_slot is None:
            continue
        if pos < 0:  # a local find: the first listed vacancy of that slot, as the kernel
            pos = vacancies.index(best_slot)
        vacancies[pos] = vacancies[-1]
        vacancies.pop()
        vcount[best_slot] -= 1
        s, g = hh.ses[i], hh.lang[i]
        if home >= 0:
            old = home * 3 + hh.tenure[i]
            vacancies.append(old)
            vcount[old] += 1
            for arr, grp in ((comp.cell_ses, s), (comp.cell_lang, g)):
                arr[home, grp] -= 1
            comp.dist_ses[grid.district[home], s] -= 1
            comp.dist_lang[grid.district[home], g] -= 1
        cell = best_slot // 3
        hh.cell[i], hh.tenure[i] = cell, best_slot % 3
        comp.cell_ses[cell, s] += 1
        comp.cell_lang[cell, g] += 1
        comp.dist_ses[grid.district[cell], s] += 1
        comp.dist_lang[grid.district[cell], g] += 1
        moved[j] = True
    vac[: len(vacancies)] = vacancies
    return moved, len(vacancies)


def daycare_choice(kids, units, prefs):
    """Serial-dictatorship daycare choice; mirrors ``kernels.daycare_choice``."""
    out = np.full(len(kids.ses), -1, dtype=np.int64)
    for j in range(len(kids.ses)):
        s, g = kids.ses[j], kids.lang[j]
        scored = []
        for k, d in enumerate(kids.cand[j]):
            if d < 0 or units.seats[d] <= 0:
                continue
            u = (-prefs.w_distance * kids.cand_km[j, k]
                 + prefs.w_reputation[s] * units.rep_perceived[g, d])
            if units.private[d]:
                u += prefs.w_private[s]
            scored.append((u + kids.gumbel[j, k], -k, d))
        if scored:
            _, _, d = max(scored)
            units.seats[d] -= 1
            out[j] = d
    return out


def rank_programmes(app, prog, prefs):
    """Ranked applications by sorting utilities; mirrors ``kernels.rank_programmes``."""
    n = len(app.looks)
    out = np.full((n, prefs.n_ranked + 1), -1, dtype=np.int64)
    for j in range(n):
        loc = int(app.local[j])
        if not app.looks[j]:
            out[j, 0] = 2 * loc
            continue
        s, g = app.ses[j], app.lang[j]
        scored = []  # (utility, -programme position, programme id)
        u_local = NEG_INF
        for q, sch in enumerate(prog.ids):
            dx = prog.xy[sch, 0] - app.home_xy[j, 0]
            dy = prog.xy[sch, 1] - app.home_xy[j, 1]
            km = math.sqrt(dx * dx + dy * dy)
            if sch != loc and km > prefs.max_km:
                continue
            base = (prefs.w_rep[s] * prog.rep_perceived[g, sch]
                    + prefs.w_comp[s] * prog.lang_share[g, sch])
            base -= prefs.w_dist[s] * km
            if sch == loc:
                base += prog.local_bonus[sch]
                u_local = base + app.gumbel[j, 2 * q]
            else:
                scored.append((base + app.gumbel[j, 2 * q], -(2 * q), 2 * sch))
            if prog.emphasis[sch]:
                u = base + prefs.w_emph[s] + app.gumbel[j, 2 * q + 1]
                scored.append((u, -(2 * q + 1), 2 * sch + 1))
        better = sorted((x for x in scored if x[0] > u_local), reverse=True)[:prefs.n_ranked]
        for r, (_, _, p) in enumerate(better):
            out[j, r] = p
        out[j, len(better)] = 2 * loc
    return out


def deferred_acceptance(prefs, prio, capacity):
    """Round-based applicant-proposing deferred acceptance (Gale & Shapley 1962)."""
    n, n_l = prefs.shape
    nxt = [0] * n
    held: dict[int, list[tuple[float, int]]] = {p: [] for p in range(len(capacity))}
    free = list(range(n))
    while free:
        proposals: dict[int, list[tuple[float, int]]] = {}
        still = []
        for j in free:
            k = nxt[j]
            if k >= n_l or prefs[j, k] < 0:
                continue
            nxt[j] += 1
            proposals.setdefault(int(prefs[j, k]), []).append((float(prio[j, k]), j))
        for p, props in proposals.items():
            pool = sorted(held[p] + props, reverse=True)
            cap = max(int(capacity[p]), 0)
            held[p] = pool[:cap]
            still += [j for _, j in pool[cap:]]
        free = still
    out = np.full(n, -1, dtype=np.int64)
    for p, kept in held.items():
        for _, j in kept:
            out[j] = p
    return out


def _splitmix64(x):
    """SplitMix64 finaliser, vectorised on uint64 arrays (numpy wraps mod 2**64)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def counter_uniform(key, rows, cols):
    """Counter-based uniforms in numpy; mirrors ``sim.rng.counter_uniform``."""
    with np.errstate(over="ignore"):
        r = _splitmix64(np.uint64(key) ^ _splitmix64(np.asarray(rows, dtype=np.uint64)))
        x = _splitmix64(r[:, None] ^ np.asarray(cols, dtype=np.uint64)[None, :])
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
