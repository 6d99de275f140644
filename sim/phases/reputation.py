"""Phase: reputations of schools and daycares, and how each language group perceives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.kernels import tally
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


def composition_index(model: SegregationModel, unit: np.ndarray,
                      n_units: int) -> tuple[np.ndarray, np.ndarray]:
    """Status minus foreign-language share of the children in each unit (-2..1).

    Each child scores 1 for high status, -1 for low status and -1 for a foreign language;
    the scores are integers, so their sums are the same counted as integers.

    Returns:
        The index and the number of children of each unit.
    """
    f = model.families
    out = np.zeros((n_units, 5), dtype=np.int64)
    tally(unit, model.children.family, f.ses, f.lang, out)
    n = out[:, :3].sum(1)
    return (out[:, 2] - out[:, 0] - out[:, 4]).astype(float) / np.maximum(n, 1), n


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
    comp_s, enrolled_s = composition_index(model, ch.school, len(sch.cell))
    comp_d, enrolled_d = composition_index(model, ch.daycare, len(dcs.cell))
    has_s, has_d = enrolled_s > 0, enrolled_d > 0
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
