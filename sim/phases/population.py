"""Who lives in the city: new families and children, leavers, the initial population."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import ndtri
from scipy.stats import beta as beta_dist

from sim.phases import housing

if TYPE_CHECKING:
    from sim.model import SegregationModel

NEW_FAMILY_DRAWS = 14  # uniforms per new family (see ``new_families``)


def new_families(model: SegregationModel, n: int, stream: str, foreign_share: float,
                 year: int, youngest_decay: float, ses_lang: np.ndarray | None = None,
                 first_birth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Create ``n`` unhoused families with children.

    Every family's attributes come from its own row of a fixed-width block of uniforms,
    so the k-th new family is the same whatever the number of new families (common
    random numbers across scenarios). ``ses_lang`` (n, 2) gives status and language where
    they are known (families counted in a real city's grid). With ``first_birth`` each
    family is formed by the birth of its first child: one child, aged 0, born here
    (``youngest_decay`` is then not used).

    Returns:
        The new family slots and a random key per family (their order of house-hunting).
    """
    cfg, f = model.cfg, model.families
    dem, sc = cfg.behaviour.demography, cfg.behaviour.school
    u = model.streams.get(stream, year).random((n, NEW_FAMILY_DRAWS))
    slots = f.alloc(n)
    lang = (u[:, 0] < foreign_share).astype(np.int64)
    cum = np.cumsum([cfg.city.ses_shares_native, cfg.city.ses_shares_foreign], axis=1)
    ses = np.minimum((u[:, 1, None] >= cum[lang]).sum(1), 2)
    if ses_lang is not None:
        ses, lang = ses_lang[:, 0], ses_lang[:, 1]
    mean = np.asarray(sc.info_mean)[lang]
    k = sc.info_concentration
    f.ses[slots], f.lang[slots] = ses, lang
    f.info[slots] = beta_dist.ppf(u[:, 2], k * mean + 0.1, k * (1 - mean) + 0.1)
    f.arrived[slots] = year
    # Guardian indicators of the needs-based (TP) funding index.
    d = cfg.city
    f.low_edu[slots] = u[:, 3] < np.asarray(d.low_edu_by_ses)[ses]
    p_unemp = np.asarray(d.unemployed_by_ses)[ses] + d.unemployed_foreign_extra * lang
    f.unemployed[slots] = u[:, 4] < p_unemp
    n_kids = 1 + (u[:, 5, None] >= np.cumsum(dem.children_probs)[:2]).sum(1)
    n_kids = np.minimum(n_kids, 1 if first_birth else dem.max_children)
    if first_birth:  # the newborn is the only child (its uniforms stay drawn and unused)
        youngest = np.zeros(n, dtype=np.int64)
    else:
        q = 1.0 - youngest_decay  # geometric age of the youngest, truncated at 15
        with np.errstate(divide="ignore"):  # decay 1: log q = -inf, every youngest is 0
            youngest = np.floor(np.log1p(-u[:, 6] * (1 - q**16)) / np.log(q)).astype(np.int64)
    gaps = (1 + np.floor(u[:, 7:9] * dem.sibling_gap_max)).astype(np.int64).cumsum(1)
    ages = np.column_stack([youngest, youngest + gaps[:, 0], youngest + gaps[:, 1]])
    keep = (np.arange(3)[None, :] < n_kids[:, None]) & (ages <= 15)
    span = dem.parent_age_max - dem.parent_age_min + 1
    f.parent_age[slots] = (np.where(keep, ages, 0).max(1) + dem.parent_age_min
                           + np.floor(u[:, 9] * span).astype(np.int64))
    kids = add_children(model, np.repeat(slots, keep.sum(1)), ages[keep], u[:, 10:13][keep])
    model.children.born_here[kids] = first_birth
    return slots, u[:, 13]


def add_children(model: SegregationModel, fam: np.ndarray, ages: np.ndarray,
                 u_apt: np.ndarray) -> np.ndarray:
    """Add children to families; returns their slots.

    Aptitude is correlated with family status (from uniforms ``u_apt``); achievement
    starts at the family-background level.
    """
    ch, f = model.children, model.families
    slots = ch.alloc(len(fam))
    ch.family[slots], ch.age[slots] = fam, ages
    rho = model.cfg.behaviour.school.aptitude_ses_corr
    z = (f.ses[fam] - 1) / 0.8  # status class standardised (sd of 0/1/2 is about 0.8)
    ch.aptitude[slots] = rho * z + np.sqrt(1 - rho**2) * ndtri(u_apt)
    ch.outcome[slots] = model.background(fam)
    return slots


def remove_families(model: SegregationModel, slots: np.ndarray) -> None:
    """Remove families (and their children) from the city."""
    model.recorder.book_exit(slots)
    model.children.free(np.flatnonzero(model.children_of(slots)))
    model.remove_family_agents(slots)
    model.families.free(slots)


def house(model: SegregationModel, groups: Sequence[tuple[np.ndarray, np.ndarray]],
          stream: str) -> list[np.ndarray]:
    """Place families in vacancies: group after group, each in the order of its keys.

    ``groups`` holds (family slots, random keys) pairs; the families of the first group
    choose first. One run of the dwelling choice serves them all. Families that find no
    dwelling are dropped. Returns the placed slots of each group, sorted.
    """
    order = np.concatenate([s[np.argsort(k, kind="stable")] for s, k in groups])
    placed = housing.choose_dwellings(model, order, True, stream)
    lost = order[~placed]
    if len(lost):
        model.children.free(np.flatnonzero(model.children_of(lost)))
        model.families.free(lost)
    ok = np.sort(order[placed])
    model.add_family_agents(ok)
    housed = np.zeros(model.families.capacity, dtype=bool)
    housed[ok] = True
    return [np.sort(s[housed[s]]) for s, _ in groups]


def house_counted_families(model: SegregationModel) -> None:
    """Create the families a real city's grid counts, each in its own cell and tenure.

    Their status and language come from the grid (``City.counted_families``: cell, tenure,
    status, language); children, parents' ages and the rest are drawn as for any new family
    (stream ``init_families_grid``). The synthetic city counts none.
    """
    known = model.city.counted_families
    if known is None or not len(known):
        return
    slots, _ = new_families(model, len(known), "init_families_grid", 0.0, model.year,
                            model.cfg.behaviour.demography.youngest_decay,
                            ses_lang=known[:, 2:4])
    model.families.cell[slots], model.families.tenure[slots] = known[:, 0], known[:, 1]
    model.add_family_agents(slots)


def initial_population(model: SegregationModel) -> None:
    """Set-up: the initial families, sorted into the city by the same choice rule as moves.

    Families a real city's grid counts are placed where it counts them first; the others
    (all of the synthetic city's) choose their dwellings.

    Children in early childhood education are drawn at the participation targets
    (``ecec_participation_*`` in targets.csv), from the cumulative yearly joining rates.
    """
    cfg = model.cfg
    rng = model.streams.get("init_population")
    house_counted_families(model)
    slots, keys = new_families(model, model.city.n_by_choice(cfg.city), "init_families",
                               cfg.city.foreign_share, model.year,
                               cfg.behaviour.demography.youngest_decay)
    house(model, [(slots, keys)], "init_housing")
    ch = model.children
    dc = cfg.behaviour.daycare
    stock = 1 - np.cumprod(1 - np.asarray(dc.join_prob))
    a = ch.active & (ch.age >= 1) & (ch.age <= 6)
    factor = np.where(model.families.lang[ch.family] == 1, dc.foreign_join_factor, 1.0)
    p = np.where(a, stock[np.clip(ch.age - 1, 0, 5)] * factor, 0.0)
    ch.ecec[:] = rng.random(ch.capacity) < p
