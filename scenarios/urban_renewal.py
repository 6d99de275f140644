"""Urban renewal: mixed-tenure infill construction and amenity investment.

The seed document calls urban renewal "the umbrella of all measures" in the four renewal
areas. This lever models its two physical parts:

* **Infill construction.** ``dwellings_per_year`` new family dwellings a year, a
  Helsinki-scale figure scaled to the simulated city by
  ``cfg.city.n_families / reference_families``, are added in each of the first
  ``construction_years`` active years to the land cells of the target districts. The whole
  programme, ``T = round(dwellings_per_year * scale * construction_years)`` dwellings, is
  planned at ``init``: split by tenure (``tenure_mix``: social rental, private rental,
  owner-occupied) with largest-remainder rounding, each tenure's dwellings spread over the
  target cells in proportion to their existing dwelling stock (largest remainder again;
  ties to the lower cell id), and the dwellings ordered so that each year gets its share
  of every tenure and the cells' dwellings are spread over the years (``_order_plan``).
  Year k of construction builds the dwellings up to ``round(T * k / construction_years)``.
  Everything is deterministic; no random numbers are drawn. New dwellings enter
  ``city.dwellings`` at the levers hook, so they are vacancies for the next year's movers
  and arrivals. The model does not add families for them (arrivals replace exits), so
  infill widens the choice of dwellings rather than the population.
* **Amenity investment.** Amenity (parks, services, public space) rises in every land cell
  of the target districts by ``amenity_gain / construction_years`` in each construction
  year, clipped to [0, 1], so the full gain is reached when construction ends (it grows
  with the projects rather than at once). ``price_gain`` (price-level units, 1 = the centre;
  default 0) optionally raises prices in the same cells in the same way.

If ``end_year`` falls inside the construction period, construction and amenity work stop
there (only the part built so far is counted and paid).

Costs, booked in each construction year at model scale (Helsinki-scale amounts times the
same ``scale``): ``cost_per_dwelling_eur`` per built dwelling and ``amenity_cost_eur`` per
target district (when ``amenity_gain > 0``). Defaults are **assumptions**: 30,000 EUR per
dwelling is the city's public cost of infill (streets, utilities, land development); the
construction itself is financed by builders and residents (about 350,000 EUR for a family
dwelling in Helsinki, to use for gross investment). 2,000,000 EUR per renewal area and year
for the amenity programme at Helsinki scale.

Zero strength (``dwellings_per_year``, ``amenity_gain`` and ``price_gain`` all 0) changes
nothing and books nothing: all metrics are bit-identical to the baseline.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np

from scenarios.base import Lever, is_real, register
from sim.config import preset_families

if TYPE_CHECKING:
    from sim.model import SegregationModel



def _round(x: float) -> int:
    """Round half up (not to even), so totals do not depend on parity."""
    return int(math.floor(x + 0.5))


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder method).

    Args:
        total: Non-negative integer to split.
        weights: Non-negative weights with a positive sum.

    Returns:
        Integers summing to ``total``; ties in the remainders go to the lower index.
    """
    w = np.asarray(weights, dtype=np.float64)
    quota = total * w / w.sum()
    out = np.floor(quota).astype(np.int64)
    short = total - int(out.sum())
    if short > 0:
        order = np.argsort(-(quota - out), kind="stable")
        out[order[:short]] += 1
    return out


@register("urban_renewal")
class UrbanRenewal(Lever):
    """Mixed-tenure infill construction and amenity investment in target districts.

    Args:
        districts: ``"renewal"`` (the urban-renewal districts) or a list of district ids
            (integers ``0 .. n_districts - 1``).
        dwellings_per_year: New family dwellings a year at Helsinki scale, >= 0;
            assumption (300: about a tenth of Helsinki's yearly new family dwellings).
        construction_years: Number of years with construction, an integer >= 1.
        tenure_mix: Shares of the new dwellings by tenure (social rental, private rental,
            owner-occupied); three non-negative numbers summing to 1.
        amenity_gain: Total rise of amenity in the target districts' cells, >= 0.
        price_gain: Total rise of the price level there, >= 0 (default none).
        cost_per_dwelling_eur: Public euros per new dwelling, >= 0; assumption.
        amenity_cost_eur: Euros per target district per construction year at Helsinki
            scale, >= 0; assumption.
        reference_families: Families with children in Helsinki, the scale of the
            Helsinki-scale amounts, > 0; ``None``: ``n_families`` of the ``helsinki``
            preset (``conf/city/helsinki.yaml``).
        start_year: First year of the programme (1 = first simulated year).
        end_year: Last year it may act; ``None`` for no limit.
    """

    def __init__(self, districts: Any = "renewal", dwellings_per_year: float = 300.0,
                 construction_years: int = 5, tenure_mix: Any = (0.3, 0.3, 0.4),
                 amenity_gain: float = 0.1, price_gain: float = 0.0,
                 cost_per_dwelling_eur: float = 30_000.0,
                 amenity_cost_eur: float = 2_000_000.0, reference_families: float | None = None,
                 start_year: int = 1, end_year: int | None = None) -> None:
        super().__init__(start_year, end_year, "all")
        if isinstance(districts, list | tuple):
            districts = list(districts)
            if not districts:
                self.fail("districts", districts, "'renewal' or a non-empty list of ids")
            for d in districts:
                if not isinstance(d, Integral) or isinstance(d, bool) or d < 0:
                    self.fail("districts", d, "district ids: integers >= 0")
        elif districts != "renewal":
            self.fail("districts", districts, "'renewal' or a list of district ids")
        for key, value in (("dwellings_per_year", dwellings_per_year),
                           ("amenity_gain", amenity_gain), ("price_gain", price_gain),
                           ("cost_per_dwelling_eur", cost_per_dwelling_eur),
                           ("amenity_cost_eur", amenity_cost_eur)):
            if not is_real(value) or value < 0:
                self.fail(key, value, "a number >= 0")
        if (not isinstance(construction_years, Integral) or isinstance(construction_years, bool)
                or construction_years < 1):
            self.fail("construction_years", construction_years, "an integer >= 1")
        if reference_families is None:
            reference_families = preset_families("helsinki")
        if not is_real(reference_families) or reference_families <= 0:
            self.fail("reference_families", reference_families, "a number > 0")
        mix = list(tenure_mix) if isinstance(tenure_mix, list | tuple) else None
        if mix is None or len(mix) != 3:
            self.fail("tenure_mix", tenure_mix, "3 shares (social, private, owner-occupied)")
        if not all(is_real(x) and x >= 0 for x in mix) or abs(sum(mix) - 1.0) > 1e-6:
            self.fail("tenure_mix", tenure_mix, "non-negative shares that sum to 1")
        self.districts = districts
        self.dwellings_per_year = dwellings_per_year
        self.construction_years = int(construction_years)
        self.tenure_mix = [float(x) for x in mix]
        self.amenity_gain = amenity_gain
        self.price_gain = price_gain
        self.cost_per_dwelling_eur = cost_per_dwelling_eur
        self.amenity_cost_eur = amenity_cost_eur
        self.reference_families = reference_families
        # Set by ``init``:
        self.target_districts = np.zeros(0, dtype=np.int64)
        self.cells = np.zeros(0, dtype=np.int64)  # land cells of the target districts
        self.scale = 1.0
        self.plan = np.zeros((0, 3), dtype=np.int64)  # planned new dwellings, cell x tenure
        self.seq_cell = np.zeros(0, dtype=np.int64)  # build order: cell of each dwelling
        self.seq_tenure = np.zeros(0, dtype=np.int64)  # and its tenure
        self.built: dict[int, np.ndarray] = {}  # year -> dwellings added (n_cells, 3)

    # ------------------------------------------------------------ planning
    def init(self, model: SegregationModel) -> None:
        """Check the district ids and plan the construction programme."""
        city = model.city
        if self.districts == "renewal":
            self.target_districts = np.flatnonzero(city.renewal).astype(np.int64)
            if not len(self.target_districts):
                self.fail("districts", "renewal", "a list of district ids: this city has no "
                          "urban-renewal areas (city.n_renewal_areas=0)")
        else:
            for d in self.districts:
                if d >= city.n_districts:
                    self.fail("districts", d, f"a district id 0..{city.n_districts - 1}")
            self.target_districts = np.array(sorted(set(self.districts)), dtype=np.int64)
        self.cells = np.flatnonzero(np.isin(city.district, self.target_districts))
        self.scale = model.city.initial_families(model.cfg.city) / self.reference_families
        total = _round(self.dwellings_per_year * self.scale * self.construction_years)
        self.plan = np.zeros((len(self.cells), 3), dtype=np.int64)
        if total == 0 or len(self.cells) == 0:
            return
        stock = city.dwellings[self.cells].sum(1).astype(np.float64)
        weights = stock if stock.sum() > 0 else np.ones(len(self.cells))
        for t, n_t in enumerate(largest_remainder(total, np.asarray(self.tenure_mix))):
            self.plan[:, t] = largest_remainder(int(n_t), weights)
        self._order_plan()

    def _order_plan(self) -> None:
        """Order the planned dwellings so every year gets its share of tenures and places.

        Within a tenure, the i-th of a cell's ``A`` dwellings is due at ``(i + u) / A``, where
        ``u`` in [0, 1) is a golden-ratio offset of the cell (so cells getting one dwelling
        are spread over the whole period, not bunched by cell id); the m-th dwelling of a
        tenure with ``N`` in total is due at ``(m + 0.5) / N`` in the common order.
        """
        golden = (math.sqrt(5.0) - 1.0) / 2.0
        offset = ((np.arange(len(self.cells)) + 1) * golden) % 1.0
        cells, tenures, due = [], [], []
        for t in range(3):
            a = self.plan[:, t]
            c = np.repeat(np.arange(len(a)), a)
            i = np.arange(len(c)) - np.repeat(np.cumsum(a) - a, a)
            order = np.lexsort((c, (i + offset[c]) / np.maximum(a[c], 1)))
            cells.append(c[order])
            tenures.append(np.full(len(c), t))
            due.append((np.arange(len(c)) + 0.5) / max(len(c), 1))
        c, t, d = np.concatenate(cells), np.concatenate(tenures), np.concatenate(due)
        order = np.lexsort((t, d))
        self.seq_cell = self.cells[c[order]]
        self.seq_tenure = t[order].astype(np.int64)

    def construction_year(self, year: int) -> int:
        """1-based construction year of ``year``; 0 if nothing is built then."""
        k = year - self.start_year + 1
        return k if self.active(year) and 1 <= k <= self.construction_years else 0

    # ------------------------------------------------------------ the hook
    def act(self, model: SegregationModel) -> None:
        """Build this year's share of the dwellings and of the amenity gain; book costs."""
        k = self.construction_year(model.year)
        if k == 0:
            return
        y = self.construction_years
        total = len(self.seq_cell)
        lo, hi = _round(total * (k - 1) / y), _round(total * k / y)
        add = np.zeros_like(model.city.dwellings)
        np.add.at(add, (self.seq_cell[lo:hi], self.seq_tenure[lo:hi]), 1)
        if hi > lo:
            model.add_dwellings(add)
            self.built[model.year] = add
        model.improve_cells(self.cells, amenity=self.amenity_gain / y, price=self.price_gain / y)
        cost = self.cost_per_dwelling_eur * (hi - lo)
        if self.amenity_gain > 0:
            cost += self.amenity_cost_eur * self.scale * len(self.target_districts)
        if cost > 0:
            self.book(model, cost)
