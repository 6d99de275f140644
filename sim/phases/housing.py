"""Where families live: dissatisfaction, the decision to move, and the dwelling choice."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.kernels import (
    Catchments,
    Composition,
    DwellingPrefs,
    Grid,
    Households,
    Search,
    tally,
)
from sim.rng import counter_uniform

if TYPE_CHECKING:
    from sim.model import SegregationModel

AGE_BANDS = np.array([0] * 7 + [1] * 6 + [2] * 3)  # youngest age 0-15 -> 0-6, 7-12, 13-15


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    # exp(700) is finite: logits beyond it give exactly 0 or 1 without an overflow warning.
    return 1.0 / (1.0 + np.exp(-np.clip(x, -700.0, 700.0)))


def age_band(model: SegregationModel) -> np.ndarray:
    """Age band (0-6, 7-12, 13-15) of each family slot's youngest child."""
    return AGE_BANDS[np.minimum(model.youngest(), 15)]


def composition(model: SegregationModel) -> Composition:
    """Housed families by status and language, per cell and per district."""
    f = model.families
    cell = np.where(f.active, f.cell, -1)  # -1: not housed
    every = np.arange(f.capacity)
    by_cell = np.zeros((model.city.n_cells, 5), dtype=np.int64)
    tally(cell, every, f.ses, f.lang, by_cell)
    by_dist = np.zeros((model.city.n_districts, 5), dtype=np.int64)
    tally(np.where(cell >= 0, model.city.district[cell], -1), every, f.ses, f.lang, by_dist)
    # Contiguous copies: the kernels update them in place and are compiled for C arrays.
    return Composition(
        cell_ses=np.ascontiguousarray(by_cell[:, :3]),
        cell_lang=np.ascontiguousarray(by_cell[:, 3:]),
        dist_ses=np.ascontiguousarray(by_dist[:, :3]),
        dist_lang=np.ascontiguousarray(by_dist[:, 3:]),
    )


def households(model: SegregationModel) -> Households:
    """The family pool as kernel input (``cell`` and ``tenure`` are the pool's arrays)."""
    f = model.families
    return Households(ses=f.ses, lang=f.lang, level=model.family_level(), cell=f.cell,
                      tenure=f.tenure)


def grid(model: SegregationModel) -> Grid:
    """The city's cells as kernel input."""
    c = model.city
    return Grid(district=c.district, xy=c.xy, price=c.price, amenity=c.amenity,
                renewal=model.renewal_cell, height=c.height)


def catchments(model: SegregationModel) -> Catchments:
    """Catchment schools and perceived reputations as kernel input."""
    return Catchments(school_of_cell=model.school_of_cell,
                      rep_perceived=model.schools.rep_perceived)


def dwelling_prefs(model: SegregationModel) -> DwellingPrefs:
    """The residential-choice weights of the config as kernel input."""
    p = model.cfg.behaviour.preferences

    def arr(x: list) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)

    return DwellingPrefs(
        x0=float(p.x0), m_homog=float(p.m_homog), local_weight=float(p.local_weight),
        w_afford=float(p.w_afford), social_max_ses=float(p.social_max_ses),
        w_distance=float(p.w_distance),
        foreign_renewal_taste=float(model.cfg.behaviour.demography.foreign_renewal_taste),
        stay_bonus=float(p.stay_bonus),
        radius=max(1, round(p.local_radius_km / model.city.cell_km)),
        w_comp_ses=arr(p.w_comp_ses), w_comp_lang=arr(p.w_comp_lang),
        w_school=arr(p.w_school), w_amenity=arr(p.w_amenity), budget=arr(p.budget),
        tenure_cost=arr(p.tenure_cost), tenure_taste=arr(p.tenure_taste))


def dissatisfaction(model: SegregationModel) -> np.ndarray:
    """Dissatisfaction of every family slot (0 for slots without a home); see the kernel."""
    f = model.families
    out = np.zeros(f.capacity)
    model.k.dissatisfaction(np.flatnonzero(f.active & (f.cell >= 0)), households(model),
                            composition(model), grid(model), catchments(model),
                            dwelling_prefs(model), out)
    return out


def vacancies(model: SegregationModel) -> np.ndarray:
    """Vacant dwelling slots (``cell * 3 + tenure``), one entry per vacant dwelling."""
    f = model.families
    a = f.active & (f.cell >= 0)
    occ = np.bincount(f.cell[a] * 3 + f.tenure[a], minlength=3 * model.city.n_cells)
    free = np.maximum(model.city.dwellings.reshape(-1) - occ, 0)
    return np.repeat(np.arange(len(free), dtype=np.int64), free)


def choose_dwellings(model: SegregationModel, order: np.ndarray, arriving: bool,
                     stream: str) -> np.ndarray:
    """Run the relocation kernel for families ``order``; returns the moved/placed mask.

    Only the deciders draw, each from a counter-based hash of (stream, year, family slot,
    column), so the same family gets the same numbers whoever else is choosing (common
    random numbers across scenarios) and nobody else's numbers cost anything.
    """
    p = model.cfg.behaviour.preferences
    k, n_local = p.n_candidates, p.n_local_candidates
    u = counter_uniform(model.streams.key(stream, model.year), order,
                        np.arange(k + 3 * n_local + k + 1 + n_local))
    draws = Search(u_cand=u[:, :k],
                   u_local=u[:, k:k + 3 * n_local].reshape(len(order), n_local, 3),
                   gumbel=-np.log(-np.log(u[:, k + 3 * n_local:])))
    vac = vacancies(model)
    moved, _ = model.k.relocate(order, arriving, vac, len(vac), households(model),
                                composition(model), grid(model), catchments(model),
                                dwelling_prefs(model), draws)
    return moved


def relocation(model: SegregationModel) -> None:
    """Phase: who considers moving, then the dwelling choice of those who do.

    The moving logit adds the youngest child's age band (and a shift in the year after a
    birth, youngest aged 1), tenure, status, dissatisfaction and crowding (children's space
    need above the tenure's typical space) to a base rate; this year's arrivals and
    returners do not move again. Movers decide in a random priority order.
    """
    cfg, f, ch = model.cfg, model.families, model.children
    mob = cfg.behaviour.mobility
    rng = model.streams.get("move_decision", model.year)
    u = rng.random(f.capacity)
    prio = rng.random(f.capacity)
    youngest = model.youngest()
    band = AGE_BANDS[np.minimum(youngest, 15)]
    a = ch.active
    need = np.bincount(ch.family[a], weights=0.5 + 0.5 * ch.age[a] / 15.0,
                       minlength=f.capacity)
    ten = np.maximum(f.tenure, 0)
    crowd = np.maximum(0.0, need - np.asarray(mob.space)[ten])
    logit = (mob.base_logit + np.asarray(mob.age_band)[band] + mob.youngest_age1 * (youngest == 1)
             + np.asarray(mob.tenure)[ten]
             + np.asarray(mob.ses)[np.maximum(f.ses, 0)]
             + mob.dissatisfaction * dissatisfaction(model) + mob.crowding * crowd)
    consider = f.active & (f.arrived < model.year) & (u < sigmoid(logit))
    order = np.flatnonzero(consider)
    order = order[np.argsort(prio[order], kind="stable")]
    old_cell = f.cell[order].copy()
    moved = choose_dwellings(model, order, False, "relocation")
    kids = np.flatnonzero(model.children_of(order[moved]))
    first = kids[ch.born_here[kids] & ~ch.moved[kids]]  # first moves of children born here
    ch.moved[kids] = True
    model.recorder.book_moves(order[moved], old_cell[moved], band, first)
