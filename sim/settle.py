"""Warm re-settling: a behaviour's settled city from a settled neighbour, not from scratch.

A settled state (``sim.checkpoint``) depends on the city, the run seed and the behaviour.
A calibration candidate or a sensitivity point changes the behaviour, so it has no settled
state yet; settling it cold costs the whole burn-in (``burn_in_years``, 60 by default). A
*warm* start takes instead the settled state of the same city and seed under an *anchor*
behaviour (the shipped fit, or the behaviour a study starts from) and runs re-settling
years under the candidate's behaviour until the burn-in's convergence rule says the key
indices have stopped moving, at least ``FLOOR_YEARS`` and at most ``burn_in_years``.

The anchor is named by the caller, never "whichever neighbour finished first": the same
candidate, seed and anchor give byte-identical results serial, in parallel and resumed.
Warm and cold settled states differ by chance (they are different random paths to the
same stationary city), as two seeds do.

**The rule, online.** The burn-in rule (``experiments.burn_in``, docs/settled.md) compares
the 5-year moving average of each key index with its long-run mean over many seeds. A
re-settling run has one seed and no long run ahead of it, so the rule is applied to what
it has: after year ``t >= FLOOR_YEARS`` the mean of each key index over the last
``WINDOW`` years must be within ``TOLERANCE`` (relative), ``ABS_FLOOR`` (absolute) or twice
the standard error of the difference (year-to-year noise) of the mean over the ``WINDOW``
years before them. The first year where every index passes ends the re-settling.

**Year numbers.** Re-settling years have their own random streams: the state is moved to
year ``YEAR_BASE``, a year no run and no burn-in reaches (so their random streams are
not the run's or the anchor's burn-in's), the years run, and the state is moved back so
that the last re-settling year is year 0. Only differences of years enter the model (a
family's arrival year, an away family's return year), so moving the state is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.config import Config, as_dict, validate
from sim.metrics import AREA_COLS

if TYPE_CHECKING:
    from sim.model import SegregationModel

# The key indices of the burn-in rule (docs/settled.md): their columns in ``indices``.
KEY_INDICES = ("seg_res_ses_H", "seg_school_ses_H", "seg_res_lang_H", "seg_school_lang_H",
               "seg_daycare_ses_H", "local_school_share_g1", "pupil_foreign_share",
               "children_low_status_share")
TOLERANCE = 0.05  # relative, of the index's level (the burn-in rule's)
ABS_FLOOR = 0.005  # absolute tolerance for indices near zero (the burn-in rule's)
WINDOW = 5  # years of each mean (the burn-in rule's moving average)
# Least re-settling years: two windows to compare, and what the measurement of
# docs/settled.md ("Warm re-settling") shows a candidate at the edge of the parameter
# box needs on city=helsinki.
FLOOR_YEARS = 12
# The year re-settling starts from: above any simulated year, below the burn-in years'
# words (``sim.rng.BURN_IN_BASE``), so its streams are its own.
YEAR_BASE = 1 << 39
RULE = f"online-v2:{YEAR_BASE}:{KEY_INDICES}:{TOLERANCE}:{ABS_FLOOR}:{WINDOW}:{FLOOR_YEARS}"
SHARED_KEYS = ("seed", "start", "burn_in_years", "city")  # what anchor and candidate share


def is_warm(cfg: Config, anchor: Config | None) -> bool:
    """True if ``cfg`` settles warm from ``anchor``: a settled start of another behaviour.

    Raises:
        ValueError: The anchor is of another city, seed, start or burn-in length.
    """
    if anchor is None or cfg.start != "settled" or cfg.burn_in_years == 0:
        return False
    a, c = as_dict(anchor), as_dict(cfg)
    differ = [k for k in SHARED_KEYS if a[k] != c[k]]
    if differ:
        raise ValueError(f"warm start: the anchor differs from the run in {differ}; an anchor "
                         "is a settled state of the same city, seed, start and burn-in")
    return a["behaviour"] != c["behaviour"]


def anchor_config(cfg: Config, behaviour: dict) -> Config:
    """``cfg`` with another behaviour: the anchor a candidate warms from."""
    return validate({**as_dict(cfg), "behaviour": behaviour})


def shift_years(model: SegregationModel, delta: int) -> None:
    """Move the model's clock and every year it stores by ``delta`` years."""
    f = model.families
    f.arrived[f.active | f.away] += delta
    f.return_year[f.away] += delta  # every family away has a return year ahead
    model.year += delta


def key_indices(model: SegregationModel) -> np.ndarray:
    """The key indices of the year that just ended, in ``KEY_INDICES`` order."""
    rec = model.recorder
    areas = rec.area_tables(rec.cell_matrix())
    s_ses, s_lang, d_ses, d_lang = rec.unit_matrices()
    row = rec.metrics(areas, s_ses, s_lang, d_ses, d_lang)
    row["pupil_foreign_share"] = s_lang[:, 1].sum() / max(s_lang.sum(), 1)
    col = [AREA_COLS.index(f"children_ses{k}") for k in range(3)]
    kids = areas["district"][:, col].sum(axis=0)
    row["children_low_status_share"] = kids[0] / max(kids.sum(), 1)
    return np.array([row[k] for k in KEY_INDICES], dtype=float)


def settled(history: list[np.ndarray]) -> bool:
    """The online rule: the last ``WINDOW`` years' means match the ``WINDOW`` before them."""
    if len(history) < max(FLOOR_YEARS, 2 * WINDOW):
        return False
    h = np.array(history[-2 * WINDOW:])
    before, last = h[:WINDOW], h[WINDOW:]
    diff = np.abs(last.mean(axis=0) - before.mean(axis=0))
    se = np.sqrt((before.var(axis=0, ddof=1) + last.var(axis=0, ddof=1)) / WINDOW)
    tol = np.maximum(np.maximum(TOLERANCE * np.abs(last.mean(axis=0)), ABS_FLOOR), 2 * se)
    ok = (diff <= tol) | ~np.isfinite(diff)  # an index a city lacks (no pupils) never blocks
    return bool(ok.all())
