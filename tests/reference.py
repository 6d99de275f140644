"""Plain-Python, per-agent reference implementations of the choice rules in ``sim.kernels``.

They take the same arguments and pre-drawn random numbers as the kernels and must give the
same choices. They are written independently where possible: the school allocation here is
the round-based textbook deferred acceptance, not the kernel's stack-based one, and the
programme ranking sorts instead of selecting. ``SegregationModel(cfg, kernels=reference)``
runs the whole model on them (tests and ``benchmarks/core.py``).
"""

from __future__ import annotations

import math

import numpy as np

NEG_INF = -1e300


def schelling_v(x: float, x0: float, m: float) -> float:
    """Single-peaked satisfaction (Sage & Flache 2021)."""
    return x / x0 if x <= x0 else m + (1.0 - x) * (1.0 - m) / (1.0 - x0)


class _Household:
    """One family's view of the city, for readability of the per-agent rule."""

    def __init__(self, i: int, ses: np.ndarray, lang: np.ndarray, level: np.ndarray) -> None:
        self.s, self.g, self.level = int(ses[i]), int(lang[i]), int(level[i])


def dwelling_utility(i, slot, moving_in, home, fam_ses, fam_lang, fam_level, arriving,
                     cell_ses, cell_lang, dist_ses, dist_lang, cell_district, cell_xy, price,
                     amenity, renewal_cell, school_of_cell, rep_perceived, pw, tenure_taste):
    """Per-family utility of a dwelling; mirrors ``kernels.dwelling_utility``."""
    h = _Household(i, fam_ses, fam_lang, fam_level)
    cell, ten = divmod(int(slot), 3)
    if ten == 0 and h.s > pw[4]:
        return NEG_INF
    add = 1.0 if moving_in else 0.0
    d = cell_district[cell]
    b = pw[2]
    c_tot = cell_ses[cell, 0] + cell_ses[cell, 1] + cell_ses[cell, 2] + add
    d_tot = dist_ses[d, 0] + dist_ses[d, 1] + dist_ses[d, 2] + add
    x_ses = (1.0 - b) * (cell_ses[cell, h.s] + add) / c_tot + b * (dist_ses[d, h.s] + add) / d_tot
    x_lang = ((1.0 - b) * (cell_lang[cell, h.g] + add) / c_tot
              + b * (dist_lang[d, h.g] + add) / d_tot)
    u = pw[7 + h.s] * schelling_v(x_ses, pw[0], pw[1])
    u += pw[10 + h.g] * schelling_v(x_lang, pw[0], pw[1])
    if h.level >= 0:
        u += pw[12 + h.s] * rep_perceived[h.g, school_of_cell[h.level, cell]]
    u += pw[15 + h.s] * amenity[cell]
    over = price[cell] * pw[21 + ten] - pw[18 + h.s]
    if over > 0.0:
        u -= pw[3] * over
    u += tenure_taste[h.s, ten]
    if home >= 0:
        dx = cell_xy[cell, 0] - cell_xy[home, 0]
        dy = cell_xy[cell, 1] - cell_xy[home, 1]
        u -= pw[5] * math.sqrt(dx * dx + dy * dy)
    if arriving and h.g == 1 and renewal_cell[cell]:
        u += pw[6]
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


def relocate(order, arriving, stay_bonus, fam_ses, fam_lang, fam_level, fam_cell, fam_tenure,
             vac, n_vac, cell_ses, cell_lang, dist_ses, dist_lang, cell_district, cell_xy,
             price, amenity, renewal_cell, school_of_cell, rep_perceived, pw, tenure_taste,
             height, radius, u_cand, u_local, gumbel):
    """Sequential conditional-logit relocation; mirrors ``kernels.relocate``."""
    env = (cell_ses, cell_lang, dist_ses, dist_lang, cell_district, cell_xy, price, amenity,
           renewal_cell, school_of_cell, rep_perceived, pw, tenure_taste)
    vacancies = list(vac[:n_vac])
    vcount = np.bincount(np.asarray(vacancies, dtype=np.int64), minlength=3 * len(cell_district))
    n_cand = u_cand.shape[1]
    moved = np.zeros(len(order), dtype=bool)
    for j, i in enumerate(order):
        home = int(fam_cell[i])
        options = []  # (utility, slot, position in the list or -1), kernel order; first max wins
        if home >= 0:
            u0 = dwelling_utility(i, home * 3 + fam_tenure[i], False, -1, fam_ses, fam_lang,
                                  fam_level, arriving, *env)
            options.append((stay_bonus + gumbel[j, n_cand] + u0, None, -1))
        if not vacancies:
            continue
        found = []  # (slot, Gumbel column, position in the list; -1: found by local search)
        for k in range(n_cand):
            pos = int(u_cand[j, k] * len(vacancies))
            found.append((vacancies[pos], k, pos))
        if home >= 0:
            for m in range(u_local.shape[1]):
                slot = local_candidate(home, height, radius, u_local[j, m], vcount)
                if slot >= 0:
                    found.append((slot, n_cand + 1 + m, -1))
        for slot, col, pos in found:
            v = dwelling_utility(i, slot, True, home, fam_ses, fam_lang, fam_level, arriving,
                                 *env)
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
        s, g = fam_ses[i], fam_lang[i]
        if home >= 0:
            old = home * 3 + fam_tenure[i]
            vacancies.append(old)
            vcount[old] += 1
            for arr, grp in ((cell_ses, s), (cell_lang, g)):
                arr[home, grp] -= 1
            dist_ses[cell_district[home], s] -= 1
            dist_lang[cell_district[home], g] -= 1
        cell = best_slot // 3
        fam_cell[i], fam_tenure[i] = cell, best_slot % 3
        cell_ses[cell, s] += 1
        cell_lang[cell, g] += 1
        dist_ses[cell_district[cell], s] += 1
        dist_lang[cell_district[cell], g] += 1
        moved[j] = True
    vac[: len(vacancies)] = vacancies
    return moved, len(vacancies)


def daycare_choice(order, child_ses, child_lang, cand, cand_km, private, rep_perceived,
                   w_distance, w_reputation, w_private, gumbel, seats):
    """Serial-dictatorship daycare choice; mirrors ``kernels.daycare_choice``."""
    out = np.full(len(order), -1, dtype=np.int64)
    for j, c in enumerate(order):
        s, g = child_ses[c], child_lang[c]
        scored = []
        for k, d in enumerate(cand[j]):
            if d < 0 or seats[d] <= 0:
                continue
            u = -w_distance * cand_km[j, k] + w_reputation[s] * rep_perceived[g, d]
            if private[d]:
                u += w_private[s]
            scored.append((u + gumbel[j, k], -k, d))
        if scored:
            _, _, d = max(scored)
            seats[d] -= 1
            out[j] = d
    return out


def rank_programmes(looks, child_ses, child_lang, home_xy, local_school, school_ids, school_xy,
                    school_emphasis, rep_perceived, lang_share, w_rep, w_comp, w_dist, w_emph,
                    local_bonus, max_km, n_ranked, gumbel):
    """Ranked applications by sorting utilities; mirrors ``kernels.rank_programmes``."""
    n = len(looks)
    out = np.full((n, n_ranked + 1), -1, dtype=np.int64)
    for j in range(n):
        loc = int(local_school[j])
        if not looks[j]:
            out[j, 0] = 2 * loc
            continue
        s, g = child_ses[j], child_lang[j]
        scored = []  # (utility, -programme position, programme id)
        u_local = NEG_INF
        for q, sch in enumerate(school_ids):
            dx = school_xy[sch, 0] - home_xy[j, 0]
            dy = school_xy[sch, 1] - home_xy[j, 1]
            km = math.sqrt(dx * dx + dy * dy)
            if sch != loc and km > max_km:
                continue
            base = w_rep[s] * rep_perceived[g, sch] + w_comp[s] * lang_share[g, sch]
            base -= w_dist[s] * km
            if sch == loc:
                base += local_bonus[sch]
                u_local = base + gumbel[j, 2 * q]
            else:
                scored.append((base + gumbel[j, 2 * q], -(2 * q), 2 * sch))
            if school_emphasis[sch]:
                u = base + w_emph[s] + gumbel[j, 2 * q + 1]
                scored.append((u, -(2 * q + 1), 2 * sch + 1))
        better = sorted((x for x in scored if x[0] > u_local), reverse=True)[:n_ranked]
        for r, (_, _, prog) in enumerate(better):
            out[j, r] = prog
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
