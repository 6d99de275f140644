"""Engagement: home-school-daycare cooperation, positive communication and dialogue events.

The lever models the Kaikkien koulu engagement pilot (``engagement_pilot_units`` in
``calibration/targets.csv``: 19 daycares and 7 schools in Mellunkyla and Malmi, 79% of the
areas' units; 51 actions; 3648 children and family members reached). Of the schools and
daycares selected by ``target``, a ``coverage`` share is reached. The reached units are drawn
once, at ``init``, from the lever's own random stream (``"lever_engagement"``), separately for
schools and daycares (``round(coverage * n)`` of each kind), so that no other draw shifts and
the same seed reaches the same units in every scenario.

Effect strength. ``e(t)`` ramps up linearly: in the k-th active year (k = 1 in
``start_year``) ``e = min(1, k / ramp_years)`` (``ramp_years = 0``: full strength at once).
After ``end_year`` the effects fade: ``e(end_year + j) = e(end_year) * (1 - decay) ** j``
(``decay = 1``: they stop at once; ``decay = 0``: they persist). Every year from
``start_year`` on, at the levers hook:

* ``schools.trust[reached] = trust_gain * e``: local families perceive the catchment school
  as better (less looking beyond it, a larger local bonus in the ranking);
* ``daycares.trust[reached] = trust_gain * e``: parents perceive the daycare as better (the
  model recomputes perceived reputations right after the levers hook, so the new trust is
  seen in next year's daycare choice, as the schools' trust is in next year's school choice);
* ``schools.optout[reached] = 1 - optout_reduction * e``: local families' probability of
  looking beyond the catchment school is cut by that factor;
* information reach: every low-status (``ses == 0``) or foreign-language (``lang == 1``)
  family living, at that moment, in the lower or upper catchment of a reached school gets
  ``info += info_gain * e * (1 - info)``, once a year. This narrows the information gap on
  school choice; it compounds (after n full-strength years the gap is ``(1 - info_gain) ** n``
  of what it was) and stays with the family when it moves. Note that in the model more
  information means *more* looking beyond the catchment school (the look probability is
  proportional to ``info``): the information effect works against the local-school share
  of the least informed families, while trust and opt-out work for it. Units reached only as
  daycares carry no information effect (the rule is tied to school catchments).

Cost: ``cost_per_unit_eur * e`` per reached unit in each active year (``start_year`` to
``end_year``; the fading years after ``end_year`` cost nothing), booked with ``book``, so the
ramp-up years cost less (fewer actions while the work is being built up). The default,
15,000 EUR per unit and year, is an **assumption** (about 0.2 person-years of staff time for
coordination and dialogue events, plus event costs).

Zero strength is the off switch: with ``trust_gain``, ``optout_reduction`` and ``info_gain``
all 0 the lever changes nothing and books nothing, so every metric, ``policy_cost_eur``
included, is bit-identical to the baseline (as with ``coverage = 0`` or a ``start_year``
after the horizon). The cost of a programme assumed to have no effect is
``cost_per_unit_eur * n_reached`` a year and need not be simulated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.base import Lever, is_real, register
from sim.units import DAYCARE, PREFIX, SCHOOL

if TYPE_CHECKING:
    from sim.model import SegregationModel

UNITS = ("both", "schools", "daycares")
STREAM = "lever_engagement"



@register("engagement")
class Engagement(Lever):
    """Engagement work at schools and daycares: trust, less opting out, better information.

    Args:
        target: Units the programme is offered to (see ``scenarios.base``); ``"renewal"``
            for the urban-renewal areas, as in the pilot. A list may mix school ids
            (``"S003"``) and daycare ids (``"D012"``).
        coverage: Share of the targeted units of each kind that are reached, in [0, 1];
            0.79 in the pilot (``engagement_pilot_units``).
        trust_gain: Trust added to the perceived reputation of reached units at full
            strength (reputation units), >= 0; assumption.
        optout_reduction: Relative cut of local families' probability of looking beyond a
            reached school at full strength, in [0, 1]; assumption.
        info_gain: Share of the information gap (``1 - info``) of low-status and
            foreign-language families in reached schools' catchments closed per year at
            full strength, in [0, 1]; assumption.
        ramp_years: Years over which the effect strength rises linearly to 1, >= 0.
        decay: Yearly relative fading of the effects after ``end_year``, in [0, 1].
        cost_per_unit_eur: Euros per reached unit per active year at full strength, >= 0;
            assumption.
        units: Which kinds of unit are targeted: ``"both"``, ``"schools"`` or
            ``"daycares"``.
        start_year: First year of the programme (1 = first simulated year).
        end_year: Last year of the programme; ``None`` for the whole run.
    """

    def __init__(self, target: Any = "renewal", coverage: float = 0.79,
                 trust_gain: float = 0.5, optout_reduction: float = 0.3,
                 info_gain: float = 0.3, ramp_years: float = 2, decay: float = 0.3,
                 cost_per_unit_eur: float = 15_000.0, units: str = "both",
                 start_year: int = 1, end_year: int | None = None) -> None:
        super().__init__(start_year, end_year, target)
        for key, value in (("coverage", coverage), ("optout_reduction", optout_reduction),
                           ("info_gain", info_gain), ("decay", decay)):
            if not is_real(value) or not 0.0 <= value <= 1.0:
                self.fail(key, value, "a number in [0, 1]")
        for key, value in (("trust_gain", trust_gain), ("ramp_years", ramp_years),
                           ("cost_per_unit_eur", cost_per_unit_eur)):
            if not is_real(value) or value < 0:
                self.fail(key, value, "a number >= 0")
        if units not in UNITS:
            self.fail("units", units, f"one of {list(UNITS)}")
        self.coverage = coverage
        self.trust_gain = trust_gain
        self.optout_reduction = optout_reduction
        self.info_gain = info_gain
        self.ramp_years = ramp_years
        self.decay = decay
        self.cost_per_unit_eur = cost_per_unit_eur
        self.units = units
        self.schools = np.zeros(0, dtype=np.int64)  # reached schools (set by ``init``)
        self.daycares = np.zeros(0, dtype=np.int64)  # reached daycares
        self.strength: dict[int, float] = {}  # e(t) by year, from start_year on

    # ------------------------------------------------------------ selection
    def _candidates(self, model: SegregationModel, kind: str) -> np.ndarray:
        """Targeted units of one kind (``"school"`` or ``"daycare"``)."""
        wanted = self.units in ("both", kind + "s")
        target = self.target
        if isinstance(target, list):  # split a mixed id list by kind
            target = [uid for uid in target if uid[:1] == PREFIX[kind]]
            if target and not wanted:
                self.fail("target", target[0], f"ids of the kinds chosen by units={self.units!r}")
            if not target:
                return np.zeros(0, dtype=np.int64)
        found = self.resolve(model, target, kind)  # validates ids even if not wanted
        return found if wanted else np.zeros(0, dtype=np.int64)

    def _reach(self, cand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A ``coverage`` share of ``cand`` (rounded half up), drawn with ``rng``."""
        n = int(math.floor(self.coverage * len(cand) + 0.5))
        order = rng.permutation(len(cand))
        return np.sort(cand[order[:n]]).astype(np.int64)

    # ------------------------------------------------------------ strength
    def effect(self, year: int) -> float:
        """Effect strength e(t) in ``year`` (0 before ``start_year``)."""
        if year < self.start_year:
            return 0.0
        last = year if self.end_year is None else min(year, self.end_year)
        k = last - self.start_year + 1
        e = 1.0 if self.ramp_years == 0 else min(1.0, k / self.ramp_years)
        if self.end_year is not None and year > self.end_year:
            e *= (1.0 - self.decay) ** (year - self.end_year)
        return e

    # ------------------------------------------------------------ the hook
    def init(self, model: SegregationModel) -> None:
        """Check the target and draw the reached units."""
        rng = model.streams.get(STREAM)
        cand_s = self._candidates(model, "school")
        cand_d = self._candidates(model, "daycare")
        self.schools = self._reach(cand_s, rng)
        self.daycares = self._reach(cand_d, rng)

    @property
    def n_reached(self) -> int:
        """Number of reached units (schools and daycares)."""
        return len(self.schools) + len(self.daycares)

    @property
    def has_effect(self) -> bool:
        """False at zero strength (all gains 0): then the lever does and books nothing."""
        return self.trust_gain > 0 or self.optout_reduction > 0 or self.info_gain > 0

    def apply(self, model: SegregationModel) -> None:
        """Set this year's effects (also in the fading years after ``end_year``)."""
        year = model.year
        if year < self.start_year or not self.has_effect:
            return  # at zero strength nothing is written (other levers' values stay)
        e = self.effect(year)
        self.strength[year] = e
        model.set_trust(SCHOOL, self.schools, self.trust_gain * e,
                        1.0 - self.optout_reduction * e)
        if len(self.daycares):
            model.set_trust(DAYCARE, self.daycares, self.trust_gain * e)
        if self.info_gain * e > 0 and len(self.schools):
            model.inform_families(self.reached_families(model), self.info_gain * e)
        if self.active(year):
            self.book(model, self.cost_per_unit_eur * e * self.n_reached)

    def reached_families(self, model: SegregationModel) -> np.ndarray:
        """Families the information reach applies to now.

        Returns:
            Slots of the low-status or foreign-language families living in the lower or
            upper catchment of a reached school.
        """
        f = model.families
        reached = np.zeros(len(model.schools.cell), dtype=bool)
        reached[self.schools] = True
        home = np.flatnonzero(f.active & (f.cell >= 0) & ((f.ses == 0) | (f.lang == 1)))
        cell = f.cell[home]
        lower, upper = model.school_of_cell[0, cell], model.school_of_cell[1, cell]
        return home[((lower >= 0) & reached[lower]) | ((upper >= 0) & reached[upper])]
