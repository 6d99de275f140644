"""Phase: the transition after grade 9 (no upper-secondary education, vocational, general).

Pupils finishing grade 9 (age 15, in an upper school) at the end of the school year either
do not continue to upper-secondary education (the register's "dropout after grade 9" of
Silliman 2017), continue to vocational, or to general (academic-track) upper secondary.
Two logits (``behaviour.transitions``) on achievement (``children.outcome``, after this
year's learning), status class and home language; each pupil draws two uniforms from the
``transitions`` stream (counter-based, by child slot: ``sim.rng.counter_uniform``), so
scenarios share them (common random numbers).

The phase changes no state: it books the outcomes per school and language group
(``YearRecorder.book_transitions``), the register that ``calibration.studies`` estimates
Silliman's difference-in-differences on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.rng import counter_uniform
from sim.units import UPPER

if TYPE_CHECKING:
    from sim.model import SegregationModel

GRADE9_AGE = 15  # grade 1 at 7 (sim/units.py), so grade 9 at 15


def logistic(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-x))


def probabilities(model: SegregationModel, kids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``P(dropout)`` and ``P(general | continuing)`` of the child slots ``kids``."""
    t = model.cfg.behaviour.transitions
    f, ch = model.families, model.children
    fam = ch.family[kids]
    ses, lang = f.ses[fam], f.lang[fam]
    ach = ch.outcome[kids]
    drop = logistic(t.dropout_logit + t.dropout_foreign * lang + t.dropout_achievement * ach
                    + np.asarray(t.dropout_ses)[ses])
    general = logistic(t.general_logit + t.general_foreign * lang
                       + t.general_achievement * ach + np.asarray(t.general_ses)[ses])
    return drop, general


def after_grade9(model: SegregationModel) -> None:
    """Phase: grade-9 leavers' transitions, booked per school and language group."""
    ch = model.children
    school = ch.school
    kids = np.flatnonzero(ch.active & (ch.age == GRADE9_AGE) & (school >= 0))
    kids = kids[model.schools.level[school[kids]] == UPPER]
    p_drop, p_general = probabilities(model, kids)
    u = counter_uniform(model.streams.key("transitions", model.year), kids, np.arange(2))
    dropout = u[:, 0] < p_drop
    general = ~dropout & (u[:, 1] < p_general)
    lang = model.families.lang[ch.family[kids]]
    model.recorder.book_transitions(school[kids], lang, dropout, general)
