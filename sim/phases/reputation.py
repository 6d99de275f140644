"""Phase: reputations of schools and daycares, and how each language group perceives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.units import LOWER, UPPER

if TYPE_CHECKING:
    from sim.model import SegregationModel


def relative(x: np.ndarray, scale: float, used: np.ndarray) -> np.ndarray:
    """Deviation from the mean over the ``used`` units (those with pupils), in ``scale``s.

    Not standardised: as schools drift apart their reputations drift apart too, which is
    what lets the feedback loop amplify itself. Units without pupils get 0.
    """
    if not used.any():
        return np.zeros_like(x, dtype=float)
    return np.where(used, (x - x[used].mean()) / scale, 0.0)


def composition_index(model: SegregationModel, unit: np.ndarray, n_units: int) -> np.ndarray:
    """Status minus foreign-language share of the children in each unit (-2..1)."""
    fam = model.children.family
    m = unit >= 0
    ses, lang = model.families.ses[fam[m]], model.families.lang[fam[m]]
    n = np.maximum(np.bincount(unit[m], minlength=n_units), 1)
    val = (ses == 2).astype(float) - (ses == 0) - lang
    return np.bincount(unit[m], weights=val, minlength=n_units) / n


def reputation(model: SegregationModel) -> None:
    """Phase: inertial update of reputations; frozen if the feedback is off."""
    if model.cfg.behaviour.reputation.feedback:
        update(model, model.cfg.behaviour.reputation.inertia)


def initial_reputation(model: SegregationModel) -> None:
    """Set-up: reputations from the first pupils, without inertia."""
    update(model, 0.0)


def update(model: SegregationModel, keep: float) -> None:
    """Blend reputations (a share ``keep`` of the old) with this year's evidence.

    Schools: mean outcome and intake composition relative to the level's schools with
    pupils; daycares: composition. Then the perceived reputations.
    """
    r = model.cfg.behaviour.reputation
    sch, dcs, ch = model.schools, model.daycares, model.children
    comp_s = composition_index(model, ch.school, len(sch.cell))
    comp_d = composition_index(model, ch.daycare, len(dcs.cell))
    has_s, has_d = model.enrolment() > 0, model.enrolment("daycare") > 0
    for lev in (LOWER, UPPER):
        sel = sch.level == lev
        out = relative(sch.mean_outcome[sel], r.outcome_scale, has_s[sel])
        comp = relative(comp_s[sel], r.composition_scale, has_s[sel])
        sch.rep_outcome[sel] = keep * sch.rep_outcome[sel] + (1 - keep) * out
        sch.rep_comp[sel] = keep * sch.rep_comp[sel] + (1 - keep) * comp
    comp = relative(comp_d, r.composition_scale, has_d)
    dcs.rep_comp = keep * dcs.rep_comp + (1 - keep) * comp
    perceive(model)


def from_catchments(model: SegregationModel) -> None:
    """Set-up: before any pupil is enrolled, reputations reflect the catchments' residents."""
    f, r = model.families, model.cfg.behaviour.reputation
    a = f.active & (f.cell >= 0)
    bg = model.background(np.flatnonzero(a))
    n_s = len(model.schools.cell)
    for lev in (LOWER, UPPER):
        sch = model.school_of_cell[lev, f.cell[a]]
        n = np.bincount(sch, minlength=n_s)
        mean_bg = np.bincount(sch, weights=bg, minlength=n_s) / np.maximum(n, 1)
        sel = model.schools.level == lev
        model.schools.rep_outcome[sel] = relative(mean_bg[sel], r.outcome_scale, n[sel] > 0)
    perceive(model)


def perceive(model: SegregationModel) -> None:
    """Reputation as perceived by each language group (schools and daycares).

    Daycares add their quality, resources and trust to the composition component.
    """
    r = model.cfg.behaviour.reputation
    w = np.asarray(r.w_composition)[:, None]
    sch, dcs = model.schools, model.daycares
    sch.rep_perceived = r.w_outcome * sch.rep_outcome[None, :] + w * sch.rep_comp[None, :]
    quality = dcs.quality + model.cfg.behaviour.daycare.w_resources * (dcs.resources - 1)
    dcs.rep_perceived = (quality + dcs.trust)[None, :] + w * dcs.rep_comp[None, :]
