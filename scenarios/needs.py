"""The needs index behind needs-based ("TP") funding and the ``tp_index_above`` target.

Two variants: the 2023 school-based index from each unit's own pupils and the pre-2023
area-based index from catchment residents and choice flows (see ``needs_index``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.units import KINDS

if TYPE_CHECKING:
    from sim.model import SegregationModel

VARIANTS = ("school_based", "area_based")
INDICATORS = {
    "school_based": ("low_education", "low_income", "unemployed", "foreign_language"),
    "area_based": ("catchment_low_education", "catchment_low_income",
                   "foreign_language_pupils", "net_choice_outflow"),
}


def _enrolment(model: SegregationModel, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Enrolled children (child slots) and their unit index."""
    ch = model.children
    unit = ch.school if kind == "school" else ch.daycare
    kids = np.flatnonzero(ch.active & (unit >= 0))
    return kids, unit[kids]


def check_weights(weights: Any, variant: str) -> np.ndarray:
    """Weights as an array; ``ValueError`` unless 4 finite non-negative numbers, sum > 0."""
    names = INDICATORS[variant]
    if weights is None:
        return np.full(len(names), 1.0 / len(names))
    try:
        w = np.asarray(list(weights), dtype=float)
    except (TypeError, ValueError):
        w = np.array([np.nan])
    if w.shape != (len(names),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"needs_index: weights={weights!r} is not allowed; expected "
                         f"{len(names)} finite non-negative numbers with a positive sum, "
                         f"in the order {', '.join(names)}")
    return w / w.sum()


def needs_indicators(model: SegregationModel, kind: str = "school",
                     variant: str = "school_based") -> np.ndarray:
    """The four indicator shares per unit, shape ``(n_units, 4)``, in ``INDICATORS`` order.

    See ``needs_index`` for the definitions. Units with no enrolled children get zeros.

    Raises:
        ValueError: Unknown ``kind`` or ``variant``, or ``area_based`` for daycares.
    """
    if kind not in KINDS:
        raise ValueError(f"needs_index: kind={kind!r} is not allowed; expected one of {KINDS}")
    if variant not in VARIANTS:
        raise ValueError(f"needs_index: variant={variant!r} is not allowed; "
                         f"expected one of {VARIANTS}")
    if variant == "area_based" and kind != "school":
        raise ValueError("needs_index: variant='area_based' is not allowed for kind="
                         f"{kind!r}; expected kind='school' (the pre-2023 model used school "
                         "catchment areas, which daycares do not have)")
    f = model.families
    n_u = len(model.units_of(kind).cell)
    kids, unit = _enrolment(model, kind)
    fam = model.children.family[kids]
    n = np.bincount(unit, minlength=n_u)
    den = np.maximum(n, 1)

    def pupil_share(flag: np.ndarray) -> np.ndarray:
        return np.bincount(unit, weights=flag.astype(float), minlength=n_u) / den

    out = np.zeros((n_u, 4))
    if variant == "school_based":
        out[:, 0] = pupil_share(f.low_edu[fam])
        out[:, 1] = pupil_share(f.ses[fam] == 0)
        out[:, 2] = pupil_share(f.unemployed[fam])
        out[:, 3] = pupil_share(f.lang[fam] == 1)
    else:
        sch = model.schools
        # Catchment residents: housed families, assigned per level to that level's school.
        res = np.flatnonzero(f.active & (f.cell >= 0))
        n_res = np.zeros(n_u)
        low_edu = np.zeros(n_u)
        low_inc = np.zeros(n_u)
        for lev in range(model.school_of_cell.shape[0]):
            s = model.school_of_cell[lev, f.cell[res]]
            ok = s >= 0
            s, r = s[ok], res[ok]
            n_res += np.bincount(s, minlength=n_u)
            low_edu += np.bincount(s, weights=f.low_edu[r].astype(float), minlength=n_u)
            low_inc += np.bincount(s, weights=(f.ses[r] == 0).astype(float), minlength=n_u)
        out[:, 0] = low_edu / np.maximum(n_res, 1)
        out[:, 1] = low_inc / np.maximum(n_res, 1)
        out[:, 2] = pupil_share(f.lang[fam] == 1)
        # Net choice outflow: pupils of the school's catchment (at its level) attending another
        # school, minus pupils from outside attending it, per catchment pupil; in [-1, 1].
        home = f.cell[fam]
        catch = model.school_of_cell[sch.level[unit], np.maximum(home, 0)]
        catch = np.where(home >= 0, catch, -1)
        away = catch != unit
        n_catch = np.bincount(catch[catch >= 0], minlength=n_u)
        outflow = np.bincount(catch[away & (catch >= 0)], minlength=n_u)
        inflow = np.bincount(unit[away], minlength=n_u)
        out[:, 3] = np.clip((outflow - inflow) / np.maximum(n_catch, 1), -1.0, 1.0)
    out[n == 0] = 0.0
    return out


def needs_index(model: SegregationModel, kind: str = "school", weights: Any = None,
                variant: str = "school_based") -> np.ndarray:
    """Needs index of every school or daycare (one value per unit; 0 for units with no pupils).

    ``school_based`` (Helsinki from 2023; ``tp_indicators_2023`` in ``targets.csv``, Yle
    3-12650024): from the unit's own enrolled children (pupils; for daycares the enrolled
    children), the shares of children whose guardians have (1) low education
    (``families.low_edu``), (2) low income (``ses == 0``), (3) an unemployed guardian
    (``families.unemployed``) and (4) a foreign home language (``lang == 1``). Each child
    counts its own family, so siblings in the same unit count twice (shares of pupils).

    ``area_based`` (pre-2023, schools only; ``tp_indicators_2008_2023``, opettaja.fi): (1) the
    share of catchment resident families with a guardian without post-basic degree
    (``low_edu``), (2) their low-income share (``ses == 0``; the source uses mean income),
    both over families living in cells whose ``school_of_cell`` (at the school's level) is the
    school; (3) the school's foreign-language pupil share; (4) the school's net choice
    outflow: (catchment pupils of its level attending another school minus pupils from other
    catchments attending it) / catchment pupils, clipped to [-1, 1]; positive = losing pupils.

    The index is the weighted mean of the four shares, ``sum(w * share) / sum(w)``; for
    ``school_based`` it lies in [0, 1], for ``area_based`` in [-w4 / sum(w), 1]. The sources
    do not publish the weights; the default equal weights are an ``assumption``.

    Args:
        model: The model (read only).
        kind: ``"school"`` or ``"daycare"``.
        weights: Four non-negative weights in ``INDICATORS[variant]`` order, or ``None``.
        variant: ``"school_based"`` or ``"area_based"``.

    Returns:
        Array of length ``n_schools`` or ``n_daycares``.

    Raises:
        ValueError: Unknown kind or variant, area-based daycares, or bad weights.
    """
    shares = needs_indicators(model, kind, variant)
    return (shares * check_weights(weights, variant)).sum(axis=1)  # no BLAS threads
