"""Phase: pupils' learning outcomes and schools' mean outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sim.model import SegregationModel


def outcomes(model: SegregationModel) -> None:
    """Phase: achievement moves part of the way (``adjustment``) toward its target."""
    learn(model, model.cfg.behaviour.outcomes.adjustment)


def initial_outcomes(model: SegregationModel) -> None:
    """Set-up: achievement starts at its target (full adjustment)."""
    learn(model, 1.0)


def learn(model: SegregationModel, lam: float) -> None:
    """Move pupils' achievement a share ``lam`` toward background + school effects, plus noise.

    The target is the family background plus the peer effect of the school's mean
    background, the resource effect of extra per-pupil resources, minus the effect of
    teacher turnover (which rises with the low-status share and falls with resources).
    """
    cfg, f, ch, sch = model.cfg, model.families, model.children, model.schools
    o = cfg.behaviour.outcomes
    n_s = len(sch.cell)
    p = np.flatnonzero(ch.school >= 0)
    s = ch.school[p]
    fam = ch.family[p]
    bg = model.background(fam)
    n = np.maximum(np.bincount(s, minlength=n_s), 1)
    peer = np.bincount(s, weights=bg, minlength=n_s) / n
    low = np.bincount(s, weights=(f.ses[fam] == 0), minlength=n_s) / n
    extra = sch.resources - 1.0
    sch.turnover = np.clip(
        o.turnover_base + o.turnover_disadvantage * low - o.turnover_resources * extra, 0, 1
    )
    target = bg + o.peer_effect * peer[s] + o.resource_effect * extra[s]
    target -= o.turnover_effect * sch.turnover[s]
    noise = model.streams.get("outcomes", model.year).standard_normal(ch.capacity)[p]
    ch.outcome[p] = (1 - lam) * ch.outcome[p] + lam * target + o.noise_sd * noise
    sch.mean_outcome = np.bincount(s, weights=ch.outcome[p], minlength=n_s) / n
