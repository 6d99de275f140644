"""The vicious-circle model: families, daycares and schools on a gridded city.

``SegregationModel.step`` documents the order of one simulated year. Identity and structure are
Mesa's (``Model``, agents, ``OrthogonalMooreGrid`` with property layers, ``DataCollector``);
hot state lives in the numpy pools of ``sim.state`` and the unit arrays below, which the numba
kernels of ``sim.kernels`` read and write in bulk.
"""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import mesa
import numpy as np
from mesa.discrete_space import OrthogonalMooreGrid
from scipy.spatial import cKDTree
from scipy.special import ndtri
from scipy.stats import beta as beta_dist

from agents import Daycare, Family, School
from sim import kernels as numba_kernels
from sim.city import City, house_counted_families
from sim.config import Config, validate
from sim.geodata import build_city
from sim.metrics import YearRecorder
from sim.metrics import counts as counts2d
from sim.rng import Streams, counter_uniform
from sim.state import new_children, new_families

AGE_BANDS = np.array([0] * 7 + [1] * 6 + [2] * 3)  # youngest age 0-15 -> 0-6, 7-12, 13-15
NEW_FAMILY_DRAWS = 14  # uniforms per new family (see _new_families)
LOWER, UPPER = 0, 1
ENTRY_AGE = (7, 13)  # grade 1 and grade 7
LEVEL_AGES = ((7, 12), (13, 15))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def schelling_v(x: np.ndarray, x0: float, m: float) -> np.ndarray:
    """Vectorised single-peaked satisfaction (same rule as ``kernels.schelling_v``)."""
    return np.where(x <= x0, x / x0, m + (1.0 - x) * (1.0 - m) / (1.0 - x0))


def relative(x: np.ndarray, scale: float, used: np.ndarray) -> np.ndarray:
    """Deviation from the mean over the ``used`` units (those with pupils), in ``scale``s.

    Not standardised: as schools drift apart their reputations drift apart too, which is
    what lets the feedback loop amplify itself. Units without pupils get 0.
    """
    if not used.any():
        return np.zeros_like(x, dtype=float)
    return np.where(used, (x - x[used].mean()) / scale, 0.0)


class SegregationModel(mesa.Model):
    """Yearly loop of residential sorting, choice, outcomes and reputation.

    Args:
        cfg: Configuration (validated here).
        levers: Policy levers (``scenarios.base.Lever``) applied at the levers hook;
            ``None`` builds them from ``cfg.scenario``.
        kernels: Module providing the choice kernels; defaults to the numba kernels
            (tests and benchmarks pass the plain-Python reference).

    """

    def __init__(
        self, cfg: Config, levers: list | None = None, kernels: ModuleType | None = None
    ) -> None:
        cfg = validate(cfg)
        super().__init__(rng=cfg.seed)
        self.cfg = cfg
        self.k = kernels or numba_kernels
        self.year = 0
        self.streams = Streams(cfg.seed)
        self.city: City = build_city(cfg.city)
        self._build_grid()
        self._init_units()
        cap = int(cfg.city.n_families * 1.4) + 16
        self.families = new_families(cap)
        self.children = new_children(int(cap * 2.2))
        self.family_agents: dict[int, Family] = {}
        self.recorder = YearRecorder(self)
        self._init_population()
        if levers is None:
            from scenarios.base import build_levers

            levers = build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")
        self.levers = list(levers)
        for lever in self.levers:
            lever.init(self)
        self.recorder.collect()

    # ------------------------------------------------------------------ structure
    def _build_grid(self) -> None:
        """Mesa grid with property layers; the city arrays become views of the layers."""
        c = self.city
        self.grid = OrthogonalMooreGrid((c.width, c.height), torus=False, random=self.random)
        for name in ("price", "amenity", "district", "catchment_lower", "catchment_upper"):
            arr = getattr(c, name)
            layer = self.grid.create_property_layer(name, 0, dtype=arr.dtype.type)
            layer.data = arr.reshape(c.width, c.height)
            setattr(c, name, layer.data.reshape(-1))  # a view: levers edit the layer
        self.renewal_cell = c.renewal_cell
        self.school_of_cell = np.full((2, c.n_cells), -1, dtype=np.int64)

    def cell_of(self, cell_id: int) -> mesa.discrete_space.Cell:
        """The Mesa cell of a flat cell id."""
        return self.grid._cells[divmod(int(cell_id), self.city.height)]

    def level_ids(self, level: int) -> np.ndarray:
        """Global indices of the schools of a level (lower 0, upper 1), in catchment order."""
        return np.flatnonzero(self.schools.level == level)

    def refresh_catchments(self) -> None:
        """Recompute the cell-to-school map after catchments change (levers call this).

        ``city.catchment_lower`` / ``catchment_upper`` hold the k-th school *of the level*
        (-1 on sea); ``school_of_cell`` maps them to global school indices. Cells in a shared
        catchment keep their nominal school here; admission balances them (``shared``).
        """
        c = self.city
        for lev, lab in ((LOWER, c.catchment_lower), (UPPER, c.catchment_upper)):
            ids = self.level_ids(lev)
            self.school_of_cell[lev] = np.where(lab >= 0, ids[np.maximum(lab, 0)], -1)

    def rebuild_catchments(self, level: int) -> None:
        """Redraw a level's catchments as nearest-open-school (Voronoi) partitions."""
        c = self.city
        ids = self.level_ids(level)
        open_k = np.flatnonzero(self.schools.open[ids])
        _, idx = cKDTree(self.school_xy[ids[open_k]]).query(c.xy[c.land])
        lab = c.catchment_lower if level == LOWER else c.catchment_upper
        lab[c.land] = open_k[idx]
        self.refresh_catchments()

    def add_school(self, cell: int, level: int, capacity: int, is_open: bool = False) -> int:
        """Append a school (e.g. a planned one, closed until a lever opens it)."""
        sch = self.schools
        defaults = {"cell": cell, "level": level, "emphasis": False, "capacity": capacity,
                    "design_capacity": capacity,
                    "resources": 1.0, "open": is_open, "optout": 1.0,
                    "turnover": self.cfg.behaviour.outcomes.turnover_base}
        for name, arr in vars(sch).items():
            fill = defaults.get(name, 0)
            pad = np.full((*arr.shape[:-1], 1), fill, dtype=arr.dtype)
            setattr(sch, name, np.concatenate([arr, pad], axis=-1))
        self.school_xy = self.city.xy[sch.cell]
        index = len(sch.cell) - 1
        self.school_agents.append(School(self, index, "lower" if level == LOWER else "upper"))
        self.recorder.grow_schools(len(sch.cell))
        return index

    def _init_units(self) -> None:
        """School and daycare arrays and their Mesa agents."""
        c, cfg = self.city, self.cfg
        n_l, n_u = len(c.lower_cells), len(c.upper_cells)
        n_s, n_d = n_l + n_u, len(c.daycare_cells)
        self.schools = SimpleNamespace(
            cell=np.concatenate([c.lower_cells, c.upper_cells]),
            level=np.repeat([LOWER, UPPER], [n_l, n_u]),
            emphasis=np.concatenate([c.lower_emphasis, c.upper_emphasis]),
            capacity=np.zeros(n_s, dtype=np.int64),  # seats now, incl. temporary places
            design_capacity=np.zeros(n_s, dtype=np.int64),  # planned seats (levers set this)
            rep_outcome=np.zeros(n_s),
            rep_comp=np.zeros(n_s),
            rep_perceived=np.zeros((2, n_s)),
            mean_outcome=np.zeros(n_s),
            resources=np.ones(n_s),  # per-pupil resources, base funding = 1
            needs_funding=np.zeros(n_s),  # euros a year from needs-based levers
            turnover=np.full(n_s, cfg.behaviour.outcomes.turnover_base),
            open=np.ones(n_s, dtype=bool),  # closed schools take no new intake
            trust=np.zeros(n_s),  # engagement: added to the local families' perception
            optout=np.ones(n_s),  # engagement: factor on local families' looking elsewhere
        )
        self.daycares = SimpleNamespace(
            cell=c.daycare_cells.copy(),
            private=c.daycare_private.copy(),
            capacity=np.zeros(n_d, dtype=np.int64),
            quality=self.streams.get("daycare_quality").normal(0.0, 0.5, n_d),
            rep_comp=np.zeros(n_d),
            rep_perceived=np.zeros((2, n_d)),
            resources=np.ones(n_d),
            needs_funding=np.zeros(n_d),
            trust=np.zeros(n_d),
        )
        self.refresh_catchments()
        # Shared ("flexible") catchments: per level, cell -> group id (-1 none), and the
        # schools of each group; admission balances status across the group (levers set it).
        self.shared_cell = np.full((2, c.n_cells), -1, dtype=np.int64)
        self.shared_schools: list[np.ndarray] = []
        self.school_xy = c.xy[self.schools.cell]
        m = min(cfg.behaviour.daycare.n_nearest, n_d)
        km, idx = cKDTree(c.xy[c.daycare_cells]).query(c.xy, k=m)
        self.near_daycare = np.asarray(idx, dtype=np.int64).reshape(len(c.xy), m)
        self.near_daycare_km = np.asarray(km).reshape(len(c.xy), m)
        self.school_agents = [
            School(self, i, "lower" if i < n_l else "upper") for i in range(n_s)
        ]
        self.daycare_agents = [Daycare(self, i) for i in range(n_d)]

    # ------------------------------------------------------------------ helpers
    def child_counts(self) -> np.ndarray:
        """Number of children per family slot."""
        ch = self.children
        return np.bincount(ch.family[ch.active], minlength=self.families.capacity)

    def enrolment(self, kind: str = "school") -> np.ndarray:
        """Children enrolled per school (``kind="school"``) or per daycare."""
        unit = self.children.school if kind == "school" else self.children.daycare
        n = len(self.schools.cell if kind == "school" else self.daycares.cell)
        return np.bincount(unit[unit >= 0], minlength=n)

    def background(self, fam: np.ndarray) -> np.ndarray:
        """Family-background term of achievement (school years) for family slots ``fam``."""
        o = self.cfg.behaviour.outcomes
        f = self.families
        return np.asarray(o.ses_effect)[f.ses[fam]] + o.foreign_effect * f.lang[fam]

    def youngest(self) -> np.ndarray:
        """Age of the youngest child per family slot (99 if none)."""
        ch = self.children
        out = np.full(self.families.capacity, 99, dtype=np.int64)
        np.minimum.at(out, ch.family[ch.active], ch.age[ch.active])
        return out

    def recount(self) -> None:
        """Recount families by status and language per cell and district (kernel inputs)."""
        f = self.families
        n_c, n_d = self.city.n_cells, self.city.n_districts
        a = f.active & (f.cell >= 0)
        cell, ses, lang = f.cell[a], f.ses[a], f.lang[a]
        self.cell_ses = np.bincount(cell * 3 + ses, minlength=3 * n_c).reshape(n_c, 3)
        self.cell_lang = np.bincount(cell * 2 + lang, minlength=2 * n_c).reshape(n_c, 2)
        dist = self.city.district[cell]
        self.dist_ses = np.bincount(dist * 3 + ses, minlength=3 * n_d).reshape(n_d, 3)
        self.dist_lang = np.bincount(dist * 2 + lang, minlength=2 * n_d).reshape(n_d, 2)

    def family_level(self) -> np.ndarray:
        """School level a family cares about: 0 lower (youngest <= 12), 1 upper, -1 none."""
        y = self.youngest()
        return np.where(y <= 12, LOWER, np.where(y <= 15, UPPER, -1)).astype(np.int64)

    def dissatisfaction(self) -> np.ndarray:
        """Dissatisfaction with neighbourhood composition and the catchment school's reputation.

        The same composition rule as the relocation utility (own-cell and district shares,
        single-peaked satisfaction), plus the shortfall of the perceived reputation of the
        family's catchment school below the mean (reputations are deviations from the mean
        of the level's schools, see ``relative``).
        """
        f, p = self.families, self.cfg.behaviour.preferences
        self.recount()
        out = np.zeros(f.capacity)
        a = np.flatnonzero(f.active & (f.cell >= 0))
        cell, s, g = f.cell[a], f.ses[a], f.lang[a]
        d = self.city.district[cell]
        b = p.local_weight
        c_tot, d_tot = self.cell_ses[cell].sum(1), self.dist_ses[d].sum(1)
        x_s = (1 - b) * self.cell_ses[cell, s] / c_tot + b * self.dist_ses[d, s] / d_tot
        x_l = (1 - b) * self.cell_lang[cell, g] / c_tot + b * self.dist_lang[d, g] / d_tot
        level = self.family_level()[a]
        rep = self.schools.rep_perceived[g, self.school_of_cell[np.maximum(level, 0), cell]]
        out[a] = (
            np.asarray(p.w_comp_ses)[s] * (1 - schelling_v(x_s, p.x0, p.m_homog))
            + np.asarray(p.w_comp_lang)[g] * (1 - schelling_v(x_l, p.x0, p.m_homog))
            + np.asarray(p.w_school)[s] * np.maximum(0.0, -rep) * (level >= 0)
        )
        return out

    def dwelling_params(self) -> np.ndarray:
        """Pack the residential-utility weights for ``kernels.dwelling_utility``."""
        p = self.cfg.behaviour.preferences
        return np.array(
            [p.x0, p.m_homog, p.local_weight, p.w_afford, p.social_max_ses, p.w_distance,
             self.cfg.behaviour.demography.foreign_renewal_taste,
             *p.w_comp_ses, *p.w_comp_lang, *p.w_school, *p.w_amenity, *p.budget,
             *p.tenure_cost],
            dtype=np.float64,
        )

    def vacancies(self) -> np.ndarray:
        """Vacant dwelling slots (``cell * 3 + tenure``), one entry per vacant dwelling."""
        f = self.families
        a = f.active & (f.cell >= 0)
        occ = np.bincount(f.cell[a] * 3 + f.tenure[a], minlength=3 * self.city.n_cells)
        free = np.maximum(self.city.dwellings.reshape(-1) - occ, 0)
        return np.repeat(np.arange(len(free), dtype=np.int64), free)

    def choose_dwellings(self, order: np.ndarray, arriving: bool, stream: str) -> np.ndarray:
        """Run the relocation kernel for families ``order``; returns the moved/placed mask.

        Draws are made per family slot, so the same family gets the same numbers whoever
        else is choosing (common random numbers across scenarios).
        """
        f, p = self.families, self.cfg.behaviour.preferences
        rng = self.streams.get(stream, self.year)
        k, n_local = p.n_candidates, p.n_local_candidates
        u_cand = rng.random((f.capacity, k))[order]
        u_local = rng.random((f.capacity, n_local, 3))[order]
        gumbel = rng.gumbel(size=(f.capacity, k + 1 + n_local))[order]
        radius = max(1, round(p.local_radius_km / self.city.cell_km))
        self.recount()
        vac = self.vacancies()
        moved, _ = self.k.relocate(
            order, arriving, p.stay_bonus, f.ses, f.lang, self.family_level(), f.cell,
            f.tenure, vac, len(vac), self.cell_ses, self.cell_lang, self.dist_ses,
            self.dist_lang, self.city.district, self.city.xy, self.city.price,
            self.city.amenity, self.renewal_cell, self.school_of_cell,
            self.schools.rep_perceived, self.dwelling_params(),
            np.asarray(p.tenure_taste, dtype=np.float64), self.city.height, radius, u_cand,
            u_local, gumbel,
        )
        return moved

    # ------------------------------------------------------------------ population
    def _new_families(self, n: int, stream: str, foreign_share: float, year: int,
                      youngest_decay: float, ses_lang: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Create ``n`` unhoused families with children.

        Every family's attributes come from its own row of a fixed-width block of uniforms,
        so the k-th new family is the same whatever the number of new families (common
        random numbers across scenarios).

        Returns:
            The new family slots and a random key per family (their order of house-hunting).
        """
        cfg, f = self.cfg, self.families
        dem, sc = cfg.behaviour.demography, cfg.behaviour.school
        u = self.streams.get(stream, year).random((n, NEW_FAMILY_DRAWS))
        slots = f.alloc(n)
        lang = (u[:, 0] < foreign_share).astype(np.int64)
        cum = np.cumsum([cfg.city.ses_shares_native, cfg.city.ses_shares_foreign], axis=1)
        ses = np.minimum((u[:, 1, None] >= cum[lang]).sum(1), 2)
        if ses_lang is not None:  # given per family (sim.city.house_counted_families)
            ses, lang = ses_lang[:, 0], ses_lang[:, 1]
        mean = np.asarray(sc.info_mean)[lang]
        k = sc.info_concentration
        f.ses[slots], f.lang[slots] = ses, lang
        f.info[slots] = beta_dist.ppf(u[:, 2], k * mean + 0.1, k * (1 - mean) + 0.1)
        f.arrived[slots] = year
        # Guardian indicators of the needs-based (TP) funding index.
        d = cfg.city
        f.low_edu[slots] = u[:, 3] < np.asarray(d.low_edu_by_ses)[ses]
        p_unemp = np.asarray(d.unemployed_by_ses)[ses] + d.unemployed_foreign_extra * lang
        f.unemployed[slots] = u[:, 4] < p_unemp
        n_kids = 1 + (u[:, 5, None] >= np.cumsum(dem.children_probs)[:2]).sum(1)
        n_kids = np.minimum(n_kids, dem.max_children)
        q = 1.0 - youngest_decay  # geometric age of the youngest, truncated at 15
        youngest = np.floor(np.log1p(-u[:, 6] * (1 - q**16)) / np.log(q)).astype(np.int64)
        gaps = (1 + np.floor(u[:, 7:9] * dem.sibling_gap_max)).astype(np.int64).cumsum(1)
        ages = np.column_stack([youngest, youngest + gaps[:, 0], youngest + gaps[:, 1]])
        keep = (np.arange(3)[None, :] < n_kids[:, None]) & (ages <= 15)
        span = dem.parent_age_max - dem.parent_age_min + 1
        f.parent_age[slots] = (np.where(keep, ages, 0).max(1) + dem.parent_age_min
                               + np.floor(u[:, 9] * span).astype(np.int64))
        self._add_children(np.repeat(slots, keep.sum(1)), ages[keep], u[:, 10:13][keep])
        return slots, u[:, 13]

    def _add_children(self, fam: np.ndarray, ages: np.ndarray, u_apt: np.ndarray) -> None:
        """Add children to families.

        Aptitude is correlated with family status (from uniforms ``u_apt``); achievement
        starts at the family-background level.
        """
        ch, f = self.children, self.families
        slots = ch.alloc(len(fam))
        ch.family[slots], ch.age[slots] = fam, ages
        rho = self.cfg.behaviour.school.aptitude_ses_corr
        z = (f.ses[fam] - 1) / 0.8  # status class standardised (sd of 0/1/2 is about 0.8)
        ch.aptitude[slots] = rho * z + np.sqrt(1 - rho**2) * ndtri(u_apt)
        ch.outcome[slots] = self.background(fam)

    def _remove_families(self, slots: np.ndarray) -> None:
        """Remove families (and their children) from the city."""
        ch = self.children
        self.recorder.book_exit(slots)
        ch.free(np.flatnonzero(ch.active & np.isin(ch.family, slots)))
        for s in slots:
            self.family_agents.pop(int(s)).remove()
        self.families.free(slots)

    def _house(self, slots: np.ndarray, keys: np.ndarray, rng_name: str) -> np.ndarray:
        """Place new families in vacancies in the order of ``keys``.

        Families that find no dwelling are dropped. Returns the placed slots.
        """
        order = slots[np.argsort(keys, kind="stable")]
        placed = self.choose_dwellings(order, True, rng_name)
        lost = order[~placed]
        if len(lost):
            self.children.free(np.flatnonzero(self.children.active
                                              & np.isin(self.children.family, lost)))
            self.families.free(lost)
        ok = np.sort(order[placed])
        for s in ok:
            self.family_agents[int(s)] = Family(self, int(s))
        return ok

    def _init_population(self) -> None:
        """Initial families, sorted into the city by the same choice rule as later moves."""
        cfg = self.cfg
        rng = self.streams.get("init_population")
        house_counted_families(self)
        slots, keys = self._new_families(self.city.n_by_choice(cfg.city), "init_families",
                                         cfg.city.foreign_share, 0,
                                         cfg.behaviour.demography.youngest_decay)
        self._house(slots, keys, "init_housing")
        ch = self.children
        dc = cfg.behaviour.daycare
        # Daycare stock at the participation targets (ecec_participation_* in targets.csv).
        stock = 1 - np.cumprod(1 - np.asarray(dc.join_prob))
        a = ch.active & (ch.age >= 1) & (ch.age <= 6)
        factor = np.where(self.families.lang[ch.family] == 1, dc.foreign_join_factor, 1.0)
        p = np.where(a, stock[np.clip(ch.age - 1, 0, 5)] * factor, 0.0)
        ch.ecec[:] = rng.random(ch.capacity) < p
        self._init_capacities()
        self._init_reputation_from_catchments()
        self._daycare_choice()
        self._school_choice(initial=True)
        self._outcomes(initial=True)
        self._reputation(initial=True)

    def _init_capacities(self) -> None:
        """Seats: slack times the initial catchment pupils (schools) or nearby demand."""
        cfg, f, ch = self.cfg, self.families, self.children
        home = f.cell[ch.family]
        for lev, (lo, hi) in enumerate(LEVEL_AGES):
            a = ch.active & (ch.age >= lo) & (ch.age <= hi)
            n = np.bincount(self.school_of_cell[lev, home[a]], minlength=len(self.schools.cell))
            sel = self.schools.level == lev
            cap = np.ceil(cfg.city.school_capacity_slack * np.maximum(n, 10))
            self.schools.design_capacity[sel] = cap[sel].astype(np.int64)
        self.schools.capacity[:] = self.schools.design_capacity
        a = ch.active & (ch.age >= 1) & (ch.age <= 6) & ch.ecec
        near = self.near_daycare[home[a], 0]
        n = np.bincount(near, minlength=len(self.daycares.cell))
        cap = np.ceil(cfg.city.daycare_capacity_slack * np.maximum(n, 8))
        self.daycares.capacity[:] = cap.astype(np.int64)

    def _init_reputation_from_catchments(self) -> None:
        """Before any pupil is enrolled, reputations reflect the catchments' residents."""
        f, r = self.families, self.cfg.behaviour.reputation
        a = f.active & (f.cell >= 0)
        bg = self.background(np.flatnonzero(a))
        n_s = len(self.schools.cell)
        for lev in (LOWER, UPPER):
            sch = self.school_of_cell[lev, f.cell[a]]
            n = np.bincount(sch, minlength=n_s)
            mean_bg = np.bincount(sch, weights=bg, minlength=n_s) / np.maximum(n, 1)
            sel = self.schools.level == lev
            self.schools.rep_outcome[sel] = relative(mean_bg[sel], r.outcome_scale,
                                                     n[sel] > 0)
        self._perceive()

    # ------------------------------------------------------------------ the year
    def step(self) -> None:
        """Advance one year, in this order.

        1. **Demography** (``_demography``): children and parents age; children turning 16
           leave the model; families with no child left leave (booked ``aged_out``); births;
           out-migration to the suburbs (booked ``left_city``); arrivals into vacancies
           (booked ``arrivals``).
        2. **Moves** (``_relocation``): who considers moving (child age, tenure, income,
           dissatisfaction, crowding), then the conditional-logit choice over sampled
           vacancies (kernel ``relocate``).
        3. **Daycare choice** (``_daycare_choice``): children aged 1-6 joining early
           childhood education or re-choosing after a move (kernel ``daycare_choice``).
        4. **School choice** (``_school_choice``) at grade 1 (age 7) and grade 7 (age 13):
           applications (kernel ``rank_programmes``) and capacity-constrained deferred
           acceptance with catchment priority (kernel ``deferred_acceptance``).
        5. **Outcomes** (``_outcomes``): pupils' learning from background, peers,
           resources and teacher turnover.
        6. **Reputation** (``_reputation``): lagged, inertial perception of outcomes and
           intake composition, by language group.
        7. **Levers**: each lever's ``apply(model)`` (``scenarios``), in scenario order;
           perceived reputations are then recomputed so that trust and resources set by
           levers count in the next year's choices.
        8. **Metrics** (``recorder.collect``): indices, flows and the unit/area tables.
        """
        self.year += 1
        self.recorder.start_year()
        self._demography()
        self._relocation()
        self._daycare_choice()
        self._school_choice()
        self._outcomes()
        self._reputation()
        for lever in self.levers:
            lever.apply(self)
        self._perceive()  # levers' trust and resources count from next year's choices
        self.recorder.collect()

    def finalize(self) -> None:
        """Let levers finish (end of run)."""
        for lever in self.levers:
            lever.finalize(self)

    def _demography(self) -> None:
        cfg, f, ch, rec = self.cfg, self.families, self.children, self.recorder
        dem = cfg.behaviour.demography
        rng = self.streams.get("demography", self.year)
        u_birth, u_apt = rng.random(f.capacity), rng.random(f.capacity)
        u_round = rng.random()
        ch.age[ch.active] += 1
        f.parent_age[f.active] += 1
        ch.free(np.flatnonzero(ch.active & (ch.age >= 16)))  # adults leave the child model
        ch.daycare[ch.active & (ch.age >= 7)] = -1
        grade7 = ch.active & (ch.age == ENTRY_AGE[UPPER]) & (ch.school >= 0)
        ch.school[grade7 & (self.schools.level[np.maximum(ch.school, 0)] == LOWER)] = -1
        n_kids = self.child_counts()
        aged_out = np.flatnonzero(f.active & (n_kids == 0))
        rec.flows["aged_out"] = len(aged_out)
        self._remove_families(aged_out)

        # Out-migration to the suburbs, by youngest child's age band x status, dissatisfaction.
        band = AGE_BANDS[np.minimum(self.youngest(), 15)]
        logit = np.asarray(dem.outmig_logit)[band, np.maximum(f.ses, 0)]
        logit += dem.outmig_dissatisfaction * self.dissatisfaction() + dem.outmig_foreign * f.lang
        u_out = self.streams.get("outmigration", self.year).random(f.capacity)
        leave = np.flatnonzero(f.active & (u_out < sigmoid(logit)))
        rec.book_leavers(leave, band[leave])
        self._remove_families(leave)

        n_kids = self.child_counts()
        born = f.active & (f.parent_age < dem.birth_max_parent_age)
        born &= (n_kids < dem.max_children) & (u_birth < dem.birth_prob)
        fam_born = np.flatnonzero(born)
        self._add_children(fam_born, np.zeros(len(fam_born), dtype=np.int64), u_apt[fam_born])
        rec.flows["births"] = len(fam_born)

        n_exit = rec.flows["aged_out"] + rec.flows["left_city"]
        want = dem.arrival_ratio * n_exit
        n_arr = int(want) + int(u_round < want - int(want))
        slots, keys = self._new_families(n_arr, "arrivals", dem.arrival_foreign_share, self.year,
                                         dem.arrival_youngest_decay)
        placed = self._house(slots, keys, "arrival_housing")
        rec.book_arrivals(placed)

    def _relocation(self) -> None:
        cfg, f, ch = self.cfg, self.families, self.children
        mob = cfg.behaviour.mobility
        rng = self.streams.get("move_decision", self.year)
        u = rng.random(f.capacity)
        prio = rng.random(f.capacity)
        band = AGE_BANDS[np.minimum(self.youngest(), 15)]
        a = ch.active
        need = np.bincount(ch.family[a], weights=0.5 + 0.5 * ch.age[a] / 15.0,
                           minlength=f.capacity)
        ten = np.maximum(f.tenure, 0)
        crowd = np.maximum(0.0, need - np.asarray(mob.space)[ten])
        logit = (mob.base_logit + np.asarray(mob.age_band)[band] + np.asarray(mob.tenure)[ten]
                 + np.asarray(mob.ses)[np.maximum(f.ses, 0)]
                 + mob.dissatisfaction * self.dissatisfaction() + mob.crowding * crowd)
        consider = f.active & (f.arrived < self.year) & (u < sigmoid(logit))
        order = np.flatnonzero(consider)
        order = order[np.argsort(prio[order], kind="stable")]
        old_cell = f.cell[order].copy()
        moved = self.choose_dwellings(order, False, "relocation")
        self.recorder.book_moves(order[moved], old_cell[moved], band)

    def _daycare_choice(self) -> None:
        cfg, f, ch, dcs = self.cfg, self.families, self.children, self.daycares
        dc = cfg.behaviour.daycare
        rng = self.streams.get("daycare", self.year)
        u_join = rng.random(ch.capacity)
        prio = rng.random(ch.capacity)
        age_ok = ch.active & (ch.age >= 1) & (ch.age <= 6)
        home = f.cell[ch.family]
        # Movers whose daycare is now far re-choose (a family keeps a daycare it can reach).
        enrolled = age_ok & (ch.daycare >= 0)
        far = np.zeros(ch.capacity, dtype=bool)
        e = np.flatnonzero(enrolled)
        dxy = self.city.xy[home[e]] - self.city.xy[dcs.cell[ch.daycare[e]]]
        far[e] = np.hypot(dxy[:, 0], dxy[:, 1]) > dc.rechoose_km
        ch.daycare[far] = -1
        factor = np.where(f.lang[ch.family] == 1, dc.foreign_join_factor, 1.0)
        p_join = np.asarray(dc.join_prob)[np.clip(ch.age - 1, 0, 5)] * factor
        ch.ecec |= age_ok & (ch.daycare < 0) & (u_join < p_join)
        ch.ecec &= age_ok
        seeking = np.flatnonzero(ch.ecec & (ch.daycare < 0))
        seeking = seeking[np.argsort(prio[seeking], kind="stable")]
        seats = (dcs.capacity - self.enrolment("daycare")).astype(np.int64)
        m = self.near_daycare.shape[1]
        gumbel = rng.gumbel(size=(ch.capacity, m))[seeking]
        fam = ch.family[seeking]
        got = self.k.daycare_choice(
            np.arange(len(seeking)), f.ses[fam], f.lang[fam],
            self.near_daycare[home[seeking]], self.near_daycare_km[home[seeking]],
            dcs.private, dcs.rep_perceived, dc.w_distance, np.asarray(dc.w_reputation, float),
            np.asarray(dc.w_private, float), gumbel, seats,
        )
        ch.daycare[seeking] = got
        self.recorder.flows["daycare_waitlist"] = int((got < 0).sum())

    def _school_choice(self, initial: bool = False) -> None:
        """Applications and admissions at both levels (all pupils at initialisation)."""
        cfg, f, ch, sch = self.cfg, self.families, self.children, self.schools
        sc = cfg.behaviour.school
        rng = self.streams.get("school_choice", self.year)
        u_look = rng.random(ch.capacity)
        lottery = rng.random(ch.capacity)
        key = self.streams.key("school_choice_shocks", self.year)
        n_s = len(sch.cell)
        # Temporary places last only while pupils occupy them.
        sch.capacity = np.maximum(sch.design_capacity, self.enrolment())
        for lev, (lo, hi) in enumerate(LEVEL_AGES):
            app = np.flatnonzero(ch.active & (ch.age >= lo) & (ch.age <= hi) & (ch.school < 0))
            fam = ch.family[app]
            ses, lang, home = f.ses[fam], f.lang[fam], f.cell[fam]
            nominal = self.school_of_cell[lev, home]
            entry = (ch.age[app] == ENTRY_AGE[lev]) | initial
            local = (self._shared_admission(lev, app, nominal, ses, lottery)
                     if len(self.shared_schools) else nominal)
            # Look beyond the local school: rises with status, falls with less information,
            # rises as the local school's perceived reputation falls.
            rep_local = sch.rep_perceived[lang, local] + sch.trust[local]
            p_look = np.asarray(sc.look_prob)[ses] * f.info[fam] / sc.info_mean[0]
            p_look *= np.exp(-np.asarray(sc.look_reputation)[ses] * rep_local)
            p_look *= (sc.g7_look_factor if lev == UPPER else 1.0) * sch.optout[local]
            looks = entry & (u_look[app] < p_look) & sc.enabled
            ids = np.flatnonzero((sch.level == lev) & sch.open)
            progs = np.column_stack([2 * ids, 2 * ids + 1]).ravel()
            gumbel = -np.log(-np.log(counter_uniform(key, app, progs)))
            prefs = self.k.rank_programmes(
                looks, ses, lang, self.city.xy[home], local, ids, self.school_xy,
                sch.emphasis, sch.rep_perceived, self.pupil_lang_share(),
                np.asarray(sc.w_reputation, float), np.asarray(sc.w_composition, float),
                np.asarray(sc.w_distance, float), np.asarray(sc.w_emphasis, float),
                sc.local_bonus + sch.trust, sc.max_km, sc.n_ranked, gumbel,
            )
            # Priority: catchment children first at a general class, then lottery;
            # emphasised classes by aptitude.
            p_sch = np.maximum(prefs, 0) // 2
            is_emph = (prefs % 2) == 1
            prio = np.where(is_emph, ch.aptitude[app][:, None],
                            2.0 * (p_sch == local[:, None]) + lottery[app][:, None])
            got = self.k.deferred_acceptance(prefs, prio, self._programme_seats(lev))
            # The catchment guarantee: a local child left without a seat (the local general
            # class filled with other local children) gets a temporary place there.
            short = got < 0
            got[short] = 2 * local[short]
            added = np.bincount(local[short], minlength=n_s)
            sch.capacity += added
            self.recorder.flows["capacity_added"] += int(added.sum())
            ch.school[app] = got // 2
            got_s = got[entry] // 2
            is_local = (got_s == nominal[entry]) | (got_s == local[entry])
            self.recorder.book_intake(lev, app[entry], is_local, got_s, n_s)

    def _shared_admission(self, lev: int, app: np.ndarray, local: np.ndarray, ses: np.ndarray,
                          lottery: np.ndarray) -> np.ndarray:
        """Controlled choice in shared catchments: balance status across the group's schools.

        Applicants living in a shared catchment are taken in lottery order; each gets, as
        its guaranteed school, the group's open school with a free seat where its status
        class is least represented so far (continuing pupils plus this intake), ties to the
        school with most free seats; when every school of the group is full, the least
        represented one (the guarantee then adds a temporary place). Returns the updated
        guaranteed (local) school per applicant.
        """
        grp = self.shared_cell[lev, self.families.cell[self.children.family[app]]]
        if not (grp >= 0).any():
            return local
        ch, sch = self.children, self.schools
        n_s = len(sch.cell)
        p = ch.school >= 0
        cnt = counts2d(ch.school[p], self.families.ses[ch.family[p]], n_s, 3).astype(float)
        seats = sch.capacity - cnt.sum(1)
        local = local.copy()
        for j in np.flatnonzero(grp >= 0)[np.argsort(lottery[app[grp >= 0]], kind="stable")]:
            members = self.shared_schools[grp[j]]
            members = members[sch.open[members]]
            tot = np.maximum(cnt[members].sum(1), 1.0)
            share = cnt[members, ses[j]] / tot
            full = seats[members] <= 0
            best = members[np.lexsort((-seats[members], share, full & ~full.all()))[0]]
            local[j] = best
            cnt[best, ses[j]] += 1
            seats[best] -= 1
        return local

    def _programme_seats(self, lev: int) -> np.ndarray:
        """Free seats per programme (general, emphasised) of this level's open schools."""
        sch = self.schools
        free = np.maximum(sch.capacity - self.enrolment(), 0)
        intake = sch.capacity / (LEVEL_AGES[lev][1] - LEVEL_AGES[lev][0] + 1)
        emph = np.where(sch.emphasis, np.round(self.cfg.city.emphasis_seat_share * intake), 0)
        emph = np.minimum(emph, free).astype(np.int64)
        general = free - emph
        shut = ~sch.open | (sch.level != lev)
        general[shut], emph[shut] = 0, 0
        return np.column_stack([general, emph]).reshape(-1).astype(np.int64)

    def pupil_lang_share(self) -> np.ndarray:
        """Share of each language group among each school's pupils, shape (2, n_schools)."""
        ch, f = self.children, self.families
        n_s = len(self.schools.cell)
        p = ch.school >= 0
        cnt = np.bincount(ch.school[p] * 2 + f.lang[ch.family[p]], minlength=2 * n_s)
        cnt = cnt.reshape(n_s, 2).T.astype(float)
        tot = cnt.sum(0)
        return np.where(tot > 0, cnt / np.maximum(tot, 1), 0.5)

    def _outcomes(self, initial: bool = False) -> None:
        """Pupils' achievement moves part of the way toward background + school effects."""
        cfg, f, ch, sch = self.cfg, self.families, self.children, self.schools
        o = cfg.behaviour.outcomes
        n_s = len(sch.cell)
        p = np.flatnonzero(ch.school >= 0)
        s = ch.school[p]
        fam = ch.family[p]
        bg = self.background(fam)
        n = np.maximum(np.bincount(s, minlength=n_s), 1)
        peer = np.bincount(s, weights=bg, minlength=n_s) / n
        low = np.bincount(s, weights=(f.ses[fam] == 0), minlength=n_s) / n
        extra = sch.resources - 1.0
        sch.turnover = np.clip(
            o.turnover_base + o.turnover_disadvantage * low - o.turnover_resources * extra, 0, 1
        )
        target = bg + o.peer_effect * peer[s] + o.resource_effect * extra[s]
        target -= o.turnover_effect * sch.turnover[s]
        noise = self.streams.get("outcomes", self.year).standard_normal(ch.capacity)[p]
        lam = 1.0 if initial else o.adjustment
        ch.outcome[p] = (1 - lam) * ch.outcome[p] + lam * target + o.noise_sd * noise
        sch.mean_outcome = np.bincount(s, weights=ch.outcome[p], minlength=n_s) / n

    def _composition_index(self, unit: np.ndarray, n_units: int) -> np.ndarray:
        """Status minus foreign-language share of the children in each unit (-2..1)."""
        fam = self.children.family
        m = unit >= 0
        ses, lang = self.families.ses[fam[m]], self.families.lang[fam[m]]
        n = np.maximum(np.bincount(unit[m], minlength=n_units), 1)
        val = (ses == 2).astype(float) - (ses == 0) - lang
        return np.bincount(unit[m], weights=val, minlength=n_units) / n

    def _reputation(self, initial: bool = False) -> None:
        """Inertial update of reputation components; frozen if feedback is off."""
        r = self.cfg.behaviour.reputation
        if not r.feedback and not initial:
            return
        sch, dcs, ch = self.schools, self.daycares, self.children
        keep = 0.0 if initial else r.inertia
        comp_s = self._composition_index(ch.school, len(sch.cell))
        comp_d = self._composition_index(ch.daycare, len(dcs.cell))
        has_s, has_d = self.enrolment() > 0, self.enrolment("daycare") > 0
        for lev in (LOWER, UPPER):
            sel = sch.level == lev
            out = relative(sch.mean_outcome[sel], r.outcome_scale, has_s[sel])
            comp = relative(comp_s[sel], r.composition_scale, has_s[sel])
            sch.rep_outcome[sel] = keep * sch.rep_outcome[sel] + (1 - keep) * out
            sch.rep_comp[sel] = keep * sch.rep_comp[sel] + (1 - keep) * comp
        comp = relative(comp_d, r.composition_scale, has_d)
        dcs.rep_comp = keep * dcs.rep_comp + (1 - keep) * comp
        self._perceive()

    def _perceive(self) -> None:
        """Reputation as perceived by each language group."""
        r = self.cfg.behaviour.reputation
        w = np.asarray(r.w_composition)[:, None]
        sch, dcs = self.schools, self.daycares
        sch.rep_perceived = r.w_outcome * sch.rep_outcome[None, :] + w * sch.rep_comp[None, :]
        quality = dcs.quality + self.cfg.behaviour.daycare.w_resources * (dcs.resources - 1)
        dcs.rep_perceived = (quality + dcs.trust)[None, :] + w * dcs.rep_comp[None, :]

    def run(self, years: int | None = None, progress: bool = False) -> None:
        """Run ``years`` steps (default: ``cfg.years``), optionally with a progress bar."""
        from tqdm import tqdm

        n = self.cfg.years if years is None else years
        for _ in tqdm(range(n), desc="years", unit="yr", disable=not progress):
            self.step()
        self.finalize()
