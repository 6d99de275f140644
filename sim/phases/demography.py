"""Phase: ageing, leaving, out-migration, births and arrivals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.phases import housing, population
from sim.units import ENTRY_AGE, LOWER, UPPER

if TYPE_CHECKING:
    from sim.model import SegregationModel


def demography(model: SegregationModel) -> None:
    """Phase: the year's demographic events, in order.

    1. Children and parents age; children turning 16 leave the child model; pupils
       entering grade 7 leave their lower school; families with no child left leave
       (``aged_out``).
    2. Out-migration to the suburbs by the youngest child's age band and status, raised by
       dissatisfaction and for foreign-language families (``left_city``).
    3. Births to families with room for another child and a parent young enough.
    4. Arrivals, ``arrival_ratio`` times the year's exits, placed into vacancies by the
       dwelling choice (``arrivals``).
    """
    cfg, f, ch, rec = model.cfg, model.families, model.children, model.recorder
    dem = cfg.behaviour.demography
    rng = model.streams.get("demography", model.year)
    u_birth, u_apt = rng.random(f.capacity), rng.random(f.capacity)
    u_round = rng.random()
    ch.age[ch.active] += 1
    f.parent_age[f.active] += 1
    ch.free(np.flatnonzero(ch.active & (ch.age >= 16)))  # adults leave the child model
    ch.daycare[ch.active & (ch.age >= 7)] = -1
    grade7 = ch.active & (ch.age == ENTRY_AGE[UPPER]) & (ch.school >= 0)
    ch.school[grade7 & (model.schools.level[np.maximum(ch.school, 0)] == LOWER)] = -1
    n_kids = model.child_counts()
    aged_out = np.flatnonzero(f.active & (n_kids == 0))
    rec.flows["aged_out"] = len(aged_out)
    population.remove_families(model, aged_out)

    band = housing.age_band(model)
    logit = np.asarray(dem.outmig_logit)[band, np.maximum(f.ses, 0)]
    logit += (dem.outmig_dissatisfaction * housing.dissatisfaction(model)
              + dem.outmig_foreign * f.lang)
    u_out = model.streams.get("outmigration", model.year).random(f.capacity)
    leave = np.flatnonzero(f.active & (u_out < housing.sigmoid(logit)))
    rec.book_leavers(leave, band[leave])
    population.remove_families(model, leave)

    n_kids = model.child_counts()
    born = f.active & (f.parent_age < dem.birth_max_parent_age)
    born &= (n_kids < dem.max_children) & (u_birth < dem.birth_prob)
    fam_born = np.flatnonzero(born)
    babies = population.add_children(model, fam_born, np.zeros(len(fam_born), dtype=np.int64),
                                     u_apt[fam_born])
    ch.born_here[babies] = True
    rec.flows["births"] = len(fam_born)

    n_exit = rec.flows["aged_out"] + rec.flows["left_city"]
    want = dem.arrival_ratio * n_exit
    n_arr = int(want) + int(u_round < want - int(want))
    slots, keys = population.new_families(model, n_arr, "arrivals",
                                          dem.arrival_foreign_share, model.year,
                                          dem.arrival_youngest_decay)
    placed = population.house(model, slots, keys, "arrival_housing")
    rec.book_arrivals(placed)
