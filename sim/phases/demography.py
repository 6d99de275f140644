"""Phase: ageing, leaving, out-migration, returns, births, new families and arrivals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.phases import housing, population, returns
from sim.units import ENTRY_AGE, LOWER, UPPER

if TYPE_CHECKING:
    from sim.model import SegregationModel


def demography(model: SegregationModel) -> None:
    """Phase: the year's demographic events, in order.

    1. Children and parents age, in the city and away; children turning 16 leave the child
       model; pupils entering grade 7 leave their lower school; families with no child
       left leave (``aged_out``), and families away with none left are forgotten.
    2. Out-migration to the suburbs by the youngest child's age band and status, raised by
       dissatisfaction and for foreign-language families (``left_city``); some of the
       leavers will come back (``phases.returns``).
    3. Returns: the families whose return year this is come back (``returns``).
    4. Births to families with room for another child and a parent young enough.
    5. New families: couples in the city whose first child is born, ``first_birth_rate``
       per family of the year's start (``first_births``; their babies count in ``births``).
    6. Arrivals from outside fill the rest of ``arrival_ratio`` times the year's exits
       (``arrivals``): exits are replaced by returners, new families and arrivals together.
    7. Housing: every entrant of the year chooses a dwelling in one run of the dwelling
       choice, returners first, then new families, then arrivals; who finds none is lost.
    """
    cfg, f, ch, rec = model.cfg, model.families, model.children, model.recorder
    dem = cfg.behaviour.demography
    rng = model.streams.get("demography", model.year)
    u_birth, u_apt = rng.random(f.capacity), rng.random(f.capacity)
    u_round, u_form = rng.random(), rng.random()
    ch.age[ch.active | ch.away] += 1
    f.parent_age[f.active | f.away] += 1
    ch.free(np.flatnonzero(ch.active & (ch.age >= 16)))  # adults leave the child model
    ch.daycare[ch.active & (ch.age >= 7)] = -1
    grade7 = ch.active & (ch.age == ENTRY_AGE[UPPER]) & (ch.school >= 0)
    ch.school[grade7 & (model.schools.level[np.maximum(ch.school, 0)] == LOWER)] = -1
    n_kids = model.child_counts()
    aged_out = np.flatnonzero(f.active & (n_kids == 0))
    rec.flows["aged_out"] = len(aged_out)
    population.remove_families(model, aged_out)
    returns.age_away(model)

    band = housing.age_band(model)
    logit = np.asarray(dem.outmig_logit)[band, np.maximum(f.ses, 0)]
    logit += (dem.outmig_dissatisfaction * housing.dissatisfaction(model)
              + dem.outmig_foreign * f.lang)
    u_out = model.streams.get("outmigration", model.year).random(f.capacity)
    leave = np.flatnonzero(f.active & (u_out < housing.sigmoid(logit)))
    rec.book_leavers(leave, band[leave])
    returns.leave_city(model, leave)
    back = returns.come_back(model)

    n_kids = model.child_counts()
    born = f.active & (f.parent_age < dem.birth_max_parent_age)
    born &= (n_kids < dem.max_children) & (u_birth < dem.birth_prob)
    fam_born = np.flatnonzero(born)
    babies = population.add_children(model, fam_born, np.zeros(len(fam_born), dtype=np.int64),
                                     u_apt[fam_born])
    ch.born_here[babies] = True

    formed = population.new_families(
        model, stochastic_round(dem.first_birth_rate * rec.n_start, u_form), "first_births",
        dem.first_birth_foreign_share, model.year, dem.arrival_youngest_decay, first_birth=True)
    n_exit = rec.flows["aged_out"] + rec.flows["left_city"]
    want = dem.arrival_ratio * n_exit - len(formed[0]) - len(back[0])
    arriving = population.new_families(model, stochastic_round(max(want, 0.0), u_round),
                                       "arrivals", dem.arrival_foreign_share, model.year,
                                       dem.arrival_youngest_decay)
    # One dwelling choice for every entrant: returners first, then new families, arrivals.
    housed = population.house(model, [back, formed, arriving], "entry_housing")
    for flow, slots in zip(("returns", "first_births", "arrivals"), housed, strict=True):
        rec.book_entries(flow, slots)
    rec.flows["births"] = len(fam_born) + len(housed[1])


def stochastic_round(x: float, u: float) -> int:
    """``x`` rounded down, or up with probability equal to its fractional part (``u``)."""
    return int(x) + int(u < x - int(x))
