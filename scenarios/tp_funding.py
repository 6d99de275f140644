"""Needs-based ("TP", positive-discrimination) funding of schools and daycares.

Helsinki gives extra money to schools (and daycares) whose pupils' families are
disadvantaged. Two index models are implemented by ``needs_index``:

* ``school_based`` (Helsinki's model from 2023): computed from each unit's *own* enrolled
  children's guardians: shares with low education, low income, an unemployed guardian and a
  foreign (minority) home language (``tp_indicators_2023`` in ``calibration/targets.csv``;
  Yle 3-12650024). The city does not publish the weights (``tp_indicators_2023``, note);
  the default equal weights are an ``assumption``.
* ``area_based`` (the pre-2023 "positive discrimination" model, schools only): computed from
  the school's catchment *residents* (adults without post-basic degree, low income), the
  school's foreign-language pupil share and its net choice outflow (``tp_indicators_2008_2023``;
  opettaja.fi 2016). Weights again not published: equal weights, ``assumption``.

``TPFunding`` (registered as ``tp_funding``) recomputes the index every ``update_interval``
years, funds the units whose index exceeds ``threshold`` and spreads a yearly budget over
them, either proportionally to index x pupils or equally per pupil. The money raises the
units' per-pupil resources: ``resources = 1 + euros / (pupils x base_cost_per_pupil_eur)``,
where ``base_cost_per_pupil_eur`` = 10,000 EUR is an ``assumption`` (the order of magnitude of
Helsinki's basic-education cost per pupil). Budgets are Helsinki-scale euros
(``tp_budget_basic_education_eur`` = 9,737,000 EUR/yr in 2025; ``old_pd_funding_eur`` =
2,500,000 EUR/yr in 2016) and are scaled by ``city.n_families / reference_families`` (54,500
families for Helsinki), so the same scenario file works for ``city=small``.

How the money acts (timing: the lever runs after outcomes and reputation, so money set in
year t is used in school year t+1):

* schools: ``behaviour.outcomes.resource_effect`` (school years of achievement per unit of
  extra per-pupil resources) raises pupils' outcomes, and ``turnover_resources`` lowers
  teacher turnover, which lowers outcomes less; better outcomes feed the school's
  reputation and so, slowly, choice and residential sorting;
* daycares: ``behaviour.daycare.w_resources`` raises perceived daycare quality.

Relation to the evidence: Silliman (2017, VATT Working Paper 91; ``pd_effect_*`` in
``targets.csv``) finds that the old area-based funding lowered dropout after grade 9 by 3
percentage points for native and by 6 for immigrant-background pupils, and raised the
latter's academic-track entry by 7, and attributes the effect mainly to non-academic skills.
The model now has that outcome (``sim.phases.transitions``), and the study is replicated in
it with its own design and estimator (``calibration.studies``, docs/studies.md): at the
default ``resource_effect`` (0.5 school years per +100 % per-pupil resources, an
``assumption``) the old funding's true effect on its schools' native dropout is about -0.1
points; the dropout effects need a ``resource_effect`` near 20-25, and the academic-track
effect cannot be reached through achievement alone. The parameter is listed for the next
fit (``calibration/parameters.yaml``); until it is refitted, read the lever's effect size
as an assumption that is probably far too small.

Measured (``city=small``, seeds 0-9, 10 years, same seed as the baseline): with the shipped
``tp_funding`` scenario funded schools get ~210-310 EUR (+2-3 %) per pupil and their mean
outcome, averaged over years 2-10, is 0.014 school years (s.e. 0.003) above the baseline's
for the same schools; ``tp_area_based`` (~70-100 EUR per pupil) gives 0.008 (s.e. 0.003).

Daycares: with ``target="all"`` private daycares are eligible too (in the model they rarely
qualify); pass a list of municipal daycare ids to exclude them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.base import Lever, is_real, register
from scenarios.needs import INDICATORS, VARIANTS, check_weights, needs_index
from sim.config import preset_families
from sim.units import KINDS

ALLOCATIONS = ("proportional", "equal_per_pupil")

if TYPE_CHECKING:
    from sim.model import SegregationModel

@register("tp_funding")
class TPFunding(Lever):
    """Needs-based (TP / positive-discrimination) funding of schools or daycares.

    Every ``update_interval`` years from ``start_year`` (the seed document recommends 2-3)
    the needs index of the targeted units is recomputed; units whose index exceeds
    ``threshold`` (and that have pupils) are eligible, and the scaled budget
    ``budget_eur * city.n_families / reference_families`` is divided among them:

    * ``"proportional"``: in proportion to index x enrolled pupils;
    * ``"equal_per_pupil"``: the same euros per enrolled pupil.

    The allocation (euros per unit) then stays fixed until the next update. Each active year
    the lever books its allocation, sets ``needs_funding`` (euros) of its unit kind and
    ``resources = 1 + needs_funding / (enrolled x base_cost_per_pupil_eur)`` (1 for units
    without funding; several ``tp_funding`` levers of the same kind add up). After
    ``end_year`` its funding stops and resources return to 1.

    Buffer (``buffer_max_change``, a share ``c``): from the second allocation on, each unit's
    allocation may change per update by at most ``c x max(previous, formula amount)``: new
    units are phased in over about ``1 / c`` updates, units losing eligibility are phased out
    by ``c`` of their amount per update. The budget stays a ceiling (if the buffer kept more
    than the budget, the uncapped part is scaled down within the caps). Money the caps leave
    over is not spent: only the allocated sum is booked, and ``unspent[year]`` records the
    difference to the scaled budget.

    Args:
        budget_eur: Yearly Helsinki-scale budget in euros (>= 0).
        kind: ``"school"`` or ``"daycare"``.
        variant: ``"school_based"`` (2023 model) or ``"area_based"`` (pre-2023, schools only).
        weights: Four index weights (see ``needs_index``); ``None`` for equal weights.
        threshold: Units with index above this are eligible.
        allocation: ``"proportional"`` or ``"equal_per_pupil"``.
        update_interval: Years between index updates (>= 1).
        buffer_max_change: ``None`` or a share in (0, 1]: cap on per-update change.
        base_cost_per_pupil_eur: Base yearly cost per pupil (resources = 1); ``assumption``.
        reference_families: Families the budget refers to; ``None``: the Helsinki preset's
            (``conf/city/helsinki.yaml``).
        start_year: First active year.
        end_year: Last active year (``None``: to the end).
        target: Units that may be funded (see ``scenarios.base``).
    """

    def __init__(self, budget_eur: float, kind: str = "school", variant: str = "school_based",
                 weights: list[float] | None = None, threshold: float = 0.3,
                 allocation: str = "proportional", update_interval: int = 2,
                 buffer_max_change: float | None = None,
                 base_cost_per_pupil_eur: float = 10000.0, reference_families: int | None = None,
                 start_year: int = 1, end_year: int | None = None, target: Any = "all") -> None:
        super().__init__(start_year, end_year, target)
        if not is_real(budget_eur) or budget_eur < 0:
            self.fail("budget_eur", budget_eur, "a finite number of euros >= 0")
        if kind not in KINDS:
            self.fail("kind", kind, f"one of {list(KINDS)}")
        if variant not in VARIANTS:
            self.fail("variant", variant, f"one of {list(VARIANTS)}")
        if variant == "area_based" and kind != "school":
            self.fail("variant", variant, "'school_based' for kind='daycare' (the area-based "
                      "model used school catchments, which daycares do not have)")
        if weights is not None:
            try:
                check_weights(weights, variant)
            except ValueError:
                self.fail("weights", weights, f"None or {len(INDICATORS[variant])} finite "
                          f"non-negative numbers with a positive sum, in the order "
                          f"{', '.join(INDICATORS[variant])}")
            weights = [float(w) for w in weights]
        if not is_real(threshold):
            self.fail("threshold", threshold, "a finite number (index values are mostly 0..1)")
        if allocation not in ALLOCATIONS:
            self.fail("allocation", allocation, f"one of {list(ALLOCATIONS)}")
        if isinstance(update_interval, bool) or not isinstance(update_interval, int) \
                or update_interval < 1:
            self.fail("update_interval", update_interval, "an integer >= 1 (years)")
        if buffer_max_change is not None and (not is_real(buffer_max_change)
                                              or not 0 < buffer_max_change <= 1):
            self.fail("buffer_max_change", buffer_max_change, "None or a share in (0, 1]")
        if not is_real(base_cost_per_pupil_eur) or base_cost_per_pupil_eur <= 0:
            self.fail("base_cost_per_pupil_eur", base_cost_per_pupil_eur, "a number > 0")
        if reference_families is None:
            reference_families = preset_families("helsinki")
        if isinstance(reference_families, bool) or not isinstance(reference_families, int) \
                or reference_families < 1:
            self.fail("reference_families", reference_families, "an integer >= 1")
        self.budget_eur = float(budget_eur)
        self.kind = kind
        self.unit_kind = kind  # what ``target`` selects (instance overrides the class default)
        self.variant = variant
        self.weights = weights
        self.threshold = float(threshold)
        self.allocation = allocation
        self.update_interval = update_interval
        self.buffer_max_change = None if buffer_max_change is None else float(buffer_max_change)
        self.base_cost_per_pupil_eur = float(base_cost_per_pupil_eur)
        self.reference_families = reference_families
        self.scale = 1.0
        self.current = np.zeros(0)  # euros per unit now (0 outside active years)
        self.formula_eur = np.zeros(0)  # formula amounts at the last update (before the buffer)
        self.index = np.zeros(0)  # needs index at the last update
        self.eligible = np.zeros(0, dtype=bool)  # eligible units at the last update
        self.allocated: dict[int, np.ndarray] = {}  # euros per unit per active year
        self.formulas: dict[int, np.ndarray] = {}  # formula euros per unit per update year
        self.unspent: dict[int, float] = {}  # scaled budget not allocated, per active year
        self._allocated_once = False

    # ------------------------------------------------------------ the hook
    def init(self, model: SegregationModel) -> None:
        """Check targets and fix the budget scale ``city.n_families / reference_families``."""
        self.resolve(model)
        self.scale = model.city.initial_families(model.cfg.city) / self.reference_families
        self.current = np.zeros(len(model.units_of(self.kind).cell))

    @property
    def scaled_budget(self) -> float:
        """The yearly budget for this city, in euros."""
        return self.budget_eur * self.scale

    def is_update_year(self, year: int) -> bool:
        """True if the index is recomputed and money reallocated in ``year``."""
        return self.active(year) and (year - self.start_year) % self.update_interval == 0

    def apply(self, model: SegregationModel) -> None:
        """Fund in active years; after ``end_year`` withdraw the funding once."""
        if self.active(model.year):
            self.act(model)
        elif self.current.any():
            self.current = np.zeros_like(self.current)
            self._fund(model)

    def act(self, model: SegregationModel) -> None:
        """Reallocate in update years, then set funding and resources and book the spending."""
        n_u = len(model.units_of(self.kind).cell)
        self.current = _fit(self.current, n_u)
        if self.is_update_year(model.year):
            self._reallocate(model)
        self.allocated[model.year] = self.current.copy()
        total = float(self.current.sum())
        self.unspent[model.year] = max(self.scaled_budget - total, 0.0)
        self.book(model, total)
        self._fund(model)

    def _fund(self, model: SegregationModel) -> None:
        model.set_funding(self.kind, self.label, self.current, self.base_cost_per_pupil_eur)

    # ------------------------------------------------------------ allocation
    def formula(self, index: np.ndarray, enrolled: np.ndarray,
                eligible: np.ndarray) -> np.ndarray:
        """Euros per unit by the allocation rule (no buffer), summing to the scaled budget."""
        if self.allocation == "proportional":
            w = np.where(eligible, np.maximum(index, 0.0) * enrolled, 0.0)
        else:
            w = np.where(eligible, enrolled, 0).astype(float)
        tot = w.sum()
        return self.scaled_budget * w / tot if tot > 0 else np.zeros(len(w))

    def _reallocate(self, model: SegregationModel) -> None:
        n_u = len(model.units_of(self.kind).cell)
        index = needs_index(model, self.kind, self.weights, self.variant)
        enrolled = model.enrolment(self.kind)
        targeted = np.zeros(n_u, dtype=bool)
        targeted[self.resolve(model)] = True
        eligible = targeted & (index > self.threshold) & (enrolled > 0)
        target_eur = self.formula(index, enrolled, eligible)
        new = target_eur
        c = self.buffer_max_change
        if c is not None and self._allocated_once:
            prev = self.current
            step = c * np.maximum(prev, target_eur)
            lo, hi = np.maximum(prev - step, 0.0), prev + step
            new = np.clip(target_eur, lo, hi)
            budget = self.scaled_budget
            if new.sum() > budget:  # buffered amounts crowd out others: scale within the caps
                room = budget - lo.sum()  # >= 0 since sum(prev) <= budget
                new = lo + (new - lo) * max(room, 0.0) / (new - lo).sum()
        self.index, self.eligible, self.formula_eur = index, eligible, target_eur
        self.formulas[model.year] = target_eur
        self.current = new
        self._allocated_once = True


def _fit(arr: np.ndarray, n: int) -> np.ndarray:
    """``arr`` padded with zeros to length ``n`` (units can be added during a run)."""
    return arr if len(arr) == n else np.concatenate([arr, np.zeros(n - len(arr))])
