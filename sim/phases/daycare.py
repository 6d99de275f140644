"""Phase: early childhood education, joining and choosing a daycare."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.kernels import DaycarePrefs, DaycareSeekers, DaycareUnits
from sim.rng import counter_uniform

if TYPE_CHECKING:
    from sim.model import SegregationModel


def daycare_choice(model: SegregationModel) -> None:
    """Phase: children aged 1-6 join early childhood education and get daycare places.

    Movers whose daycare is now far re-choose (a family keeps a daycare it can reach);
    children join by age (foreign-language families less often); seekers choose in a random
    priority order among the daycares nearest home (kernel ``daycare_choice``). Children
    left without a seat are booked as ``daycare_waitlist``.
    """
    place_children(model, join=True)


def initial_places(model: SegregationModel) -> None:
    """Set-up: the participants drawn with the initial population get places.

    No second joining draw: ``population.initial_population`` already drew participation at
    the stock shares (``ecec_participation_*``, targets.csv).
    """
    place_children(model, join=False)


def place_children(model: SegregationModel, join: bool) -> None:
    """Re-choice after moves, joining (if ``join``) and the choice of daycare places."""
    cfg, f, ch, dcs = model.cfg, model.families, model.children, model.daycares
    dc = cfg.behaviour.daycare
    rng = model.streams.get("daycare", model.year)
    u_join = rng.random(ch.capacity)
    prio = rng.random(ch.capacity)
    age_ok = ch.active & (ch.age >= 1) & (ch.age <= 6)
    home = f.cell[ch.family]
    enrolled = age_ok & (ch.daycare >= 0)
    far = np.zeros(ch.capacity, dtype=bool)
    e = np.flatnonzero(enrolled)
    dxy = model.city.xy[home[e]] - model.city.xy[dcs.cell[ch.daycare[e]]]
    far[e] = np.hypot(dxy[:, 0], dxy[:, 1]) > dc.rechoose_km
    ch.daycare[far] = -1
    factor = np.where(f.lang[ch.family] == 1, dc.foreign_join_factor, 1.0)
    p_join = np.asarray(dc.join_prob)[np.clip(ch.age - 1, 0, 5)] * factor
    if join:
        ch.ecec |= age_ok & (ch.daycare < 0) & (u_join < p_join)
    ch.ecec &= age_ok
    seeking = np.flatnonzero(ch.ecec & (ch.daycare < 0))
    seeking = seeking[np.argsort(prio[seeking], kind="stable")]
    seats = (dcs.capacity - model.enrolment("daycare")).astype(np.int64)
    m = model.near_daycare.shape[1]
    fam = ch.family[seeking]
    # Shocks only for the seekers, from a counter-based hash of (child slot, candidate).
    u = counter_uniform(model.streams.key("daycare_shocks", model.year), seeking, np.arange(m))
    kids = DaycareSeekers(ses=f.ses[fam], lang=f.lang[fam],
                          cand=model.near_daycare[home[seeking]],
                          cand_km=model.near_daycare_km[home[seeking]],
                          gumbel=-np.log(-np.log(u)))
    units = DaycareUnits(private=dcs.private, rep_perceived=dcs.rep_perceived, seats=seats)
    prefs = DaycarePrefs(w_distance=float(dc.w_distance),
                         w_reputation=np.asarray(dc.w_reputation, float),
                         w_private=np.asarray(dc.w_private, float))
    got = model.k.daycare_choice(kids, units, prefs)
    ch.daycare[seeking] = got
    model.recorder.flows["daycare_waitlist"] = int((got < 0).sum())
