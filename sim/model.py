"""The vicious-circle model: families, daycares and schools on a gridded city.

``SegregationModel.step`` documents the order of one simulated year; ``SETUP`` and ``YEAR``
below are that order as data, one function per phase, each in a module of ``sim.phases``
named for what it does. Identity and structure are Mesa's (``Model``, agents,
``OrthogonalMooreGrid`` with property layers, ``DataCollector``); hot state lives in the numpy
pools of ``sim.state`` and the unit arrays of ``sim.units``, which the numba kernels of
``sim.kernels`` read and write in bulk.

Policy levers act only through the operations of ``sim.surface.LeverSurface``, which this
class inherits: the model's declared surface.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import mesa
import numpy as np
from mesa.discrete_space import OrthogonalMooreGrid
from numba import set_num_threads
from scipy.spatial import cKDTree
from tqdm import tqdm

from agents import Daycare, Family, School
from sim import checkpoint, settle
from sim import kernels as numba_kernels
from sim.city import City
from sim.config import Config, config_from_params, memory_estimate, validate
from sim.geodata import build_city
from sim.kernels import youngest_age
from sim.ledger import Ledger
from sim.metrics import YearRecorder, record
from sim.phases import (
    capacity,
    daycare,
    demography,
    housing,
    outcomes,
    policy,
    population,
    reputation,
    schooling,
    transitions,
)
from sim.rng import Streams
from sim.state import new_children, new_families
from sim.surface import Lever, LeverSurface
from sim.units import KINDS, LEVEL_NAMES, LOWER, UPPER, Daycares, Schools

Phase = Callable[["SegregationModel"], None]


# Models not collected yet, by weak reference (see ``_gc_frozen``).
_UNCOLLECTED: weakref.WeakSet[SegregationModel] = weakref.WeakSet()
# A model's first frozen block starts with a full collection when the other models not
# collected yet would need this much memory by ``sim.config.memory_estimate``: a full
# collection costs about 0.12 s of CPU (most of it scanning the interpreter's own
# objects), so a Helsinki model (0.44 GB by the estimate) sweeps its predecessor every
# time and city=small (34 MB by the estimate, about 6 MB in fact) every eighth model.
# Assumption.
SWEEP_BYTES = 256 * 2**20


def _model_bytes(model: SegregationModel) -> int:
    """The model's own memory by ``memory_estimate`` (the interpreter's not counted)."""
    est = memory_estimate(model.cfg)
    return est["city.n_families"] + est["city.width"]


@contextmanager
def _gc_frozen(model: SegregationModel) -> Iterator[Callable[[], None]]:
    """Keep long-lived objects out of the cyclic garbage collector's scans while a block runs.

    Yields ``gc.freeze`` for the yearly loop to call at the start of every year: the objects
    alive then (the grid's cells, the agents, last year's arrivals) move to the permanent
    generation, so a collection scans only the objects of the running year. A year leaves
    no cyclic garbage (agents that leave are freed by reference counting), so nothing is
    held back; ``gc.unfreeze`` hands everything back to the collector at the end.

    A model that finished earlier in the process is cyclic garbage (its Mesa agents point
    back at it) until a full collection. Frozen with the live objects, it would outlast the
    block, and after the block Python seldom runs a full collection (it waits for the
    oldest generation to grow by a quarter), so a study's process would keep every model it
    ran. A model's first block therefore collects first when the models waiting for it
    exceed ``SWEEP_BYTES``.
    """
    if not model.gc_swept:
        model.gc_swept = True
        if sum(_model_bytes(m) for m in _UNCOLLECTED if m is not model) >= SWEEP_BYTES:
            gc.collect()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


# The set-up: the generated city, before the burn-in (start=settled) or year 1 (fresh).
SETUP: tuple[Phase, ...] = (
    population.initial_population,  # families drawn and sorted into dwellings by choice
    capacity.initial_capacities,  # school and daycare seats from the initial demand
    reputation.from_catchments,  # reputations before anyone is enrolled
    daycare.initial_places,  # children in early childhood education get places
    schooling.initial_assignment,  # every pupil applies once (all grades)
    outcomes.initial_outcomes,  # achievement at its target level
    reputation.initial_reputation,  # reputations from the first pupils, no inertia
)

# One simulated year, in order (see ``SegregationModel.step``).
YEAR: tuple[Phase, ...] = (
    demography.demography,
    housing.relocation,
    daycare.daycare_choice,
    schooling.school_choice,
    outcomes.outcomes,
    transitions.after_grade9,
    reputation.reputation,
    policy.apply_levers,
    record,
)

# A burn-in year: the same year without recording it. Levers are bound only after the
# burn-in, so ``policy.apply_levers`` acts on no lever then and only refreshes perception.
# The grade-9 transitions change no state; they run in the burn-in too, so that year 0
# books the last burn-in year's leavers, as it does its other flows.
BURN_IN: tuple[Phase, ...] = tuple(p for p in YEAR if p is not record)


class SegregationModel(LeverSurface, mesa.Model):
    """Yearly loop of residential sorting, choice, outcomes and reputation.

    Built either from a ``Config`` or, as Mesa's tools do (``mesa.batch_run``, SolaraViz),
    from keyword parameters: ``SegregationModel(seed=3, city="helsinki",
    **{"city.n_families": 2000})`` (see ``sim.config.config_from_params``). The model stops
    (``running`` False) after ``cfg.years`` steps; ``datacollector`` holds the yearly
    metrics, collected at year 0 and after every step.

    Args:
        cfg: Configuration (validated here).
        levers: Policy levers (see ``sim.surface.Lever``), built by the caller, e.g. with
            ``scenarios.build_levers``; each is bound to the model (and checked against
            the city) before anything runs.
        kernels: Module providing the choice kernels; defaults to the numba kernels
            (tests pass the plain-Python reference).
        checkpoints: Folder of settled-state checkpoints (``sim.checkpoint``). With
            ``start=settled``, the settled state is restored from there if present and
            saved there after the burn-in if not; ``None`` always runs the burn-in.
        anchor: Warm start (``sim.settle``): a config of the same city, seed, start and
            burn-in whose behaviour differs; the settled state is then the anchor's
            (from ``checkpoints``, or computed and saved there) re-settled under this
            config's behaviour by the convergence rule. Ignored when the behaviours are
            equal or the start is fresh.
        keep_warm: Save a warm state in ``checkpoints`` too (False for candidates that are
            never run again, as a calibration's: only the anchor's state is kept).
        seed: Run seed, when built from keyword parameters.
        rng: Integer seed under Mesa's other name.
        **params: Config overrides by dotted path or ``__`` path, when ``cfg`` is not given.

    Raises:
        ValueError: An invalid config, a lever whose arguments or targets do not fit the
            city, a checkpoint that belongs to another config, or an anchor of another
            city, seed, start or burn-in.
        TypeError: Both ``cfg`` and keyword parameters are given.
    """

    def __init__(self, cfg: Config | None = None, levers: Sequence[Lever] = (),
                 kernels: ModuleType | None = None, checkpoints: str | Path | None = None, *,
                 anchor: Config | None = None, keep_warm: bool = True,
                 seed: int | None = None,
                 rng: int | None = None, **params: Any) -> None:
        if cfg is None:
            cfg = config_from_params(seed=seed, rng=rng, **params)  # validated there
        elif seed is not None or rng is not None or params:
            raise TypeError("give either cfg or keyword parameters (seed, rng, overrides)")
        else:
            cfg = validate(cfg)
        super().__init__(rng=cfg.seed)
        self.cfg = cfg
        self.k = kernels or numba_kernels
        set_num_threads(cfg.threads)
        # Year 0 is "today": with a settled start the set-up happens burn_in_years earlier.
        self.year = -checkpoint.burn_in_years(cfg)
        self.streams = Streams(cfg.seed)
        self.ledger = Ledger()
        self.funding_sources: dict[str, dict] = {kind: {} for kind in KINDS}
        self.city: City = build_city(cfg.city)
        self._build_grid()
        self._build_units()
        cap = int(cfg.city.n_families * 1.4) + 16
        self.families = new_families(cap)
        self.children = new_children(int(cap * 2.2))
        # Family agent per family slot. A list, not a numpy object array: the cyclic garbage
        # collector does not look inside numpy arrays, so agents held in one (each pointing
        # back at the model) would keep every finished model alive.
        self._agent_of_slot: list[Family | None] = [None] * cap
        self.recorder = YearRecorder(self)
        self.phases = YEAR
        self.levers: list[Lever] = []
        if not settle.is_warm(cfg, anchor):
            anchor = None
        # Years the settled state was re-settled from the anchor's (0: settled cold).
        self.resettled_years = 0
        self.gc_swept = False  # see ``_gc_frozen``
        _UNCOLLECTED.add(self)
        state = (checkpoint.load(cfg, checkpoints, anchor) if checkpoints is not None
                 else None)
        if state is not None:
            checkpoint.restore(self, state)
            self.resettled_years = int(state.get("resettled_years", 0))
        elif anchor is not None:
            checkpoint.restore(self, self._anchor_state(anchor, checkpoints))
            self.resettle()
            if checkpoints is not None and keep_warm:
                checkpoint.save(self, checkpoints, anchor)
        else:
            for phase in SETUP:
                phase(self)
            self.burn_in()
            if checkpoints is not None and self.year == 0 and cfg.start == "settled":
                checkpoint.save(self, checkpoints)
        self.levers = list(levers)
        self._bind_levers()
        record(self)
        self.datacollector = self.recorder.datacollector  # Mesa's tools read it here

    # ------------------------------------------------------------------ structure
    def _build_grid(self) -> None:
        """Mesa grid with property layers; the city arrays become views of the layers."""
        c = self.city
        self.grid = OrthogonalMooreGrid((c.width, c.height), torus=False, random=self.random)
        for name in ("price", "amenity", "district", "catchment_lower", "catchment_upper"):
            arr = getattr(c, name)
            layer = self.grid.create_property_layer(name, 0, dtype=arr.dtype.type)
            layer.data = arr.reshape(c.width, c.height)
            setattr(c, name, layer.data.reshape(-1))  # a view: the surface edits the layer
        self.renewal_cell = c.renewal_cell
        self.school_of_cell = np.full((2, c.n_cells), -1, dtype=np.int64)

    def _build_units(self) -> None:
        """School and daycare arrays, their Mesa agents and the daycares near each cell."""
        c, cfg = self.city, self.cfg
        n_l, n_u = len(c.lower_cells), len(c.upper_cells)
        self.schools = Schools.create(
            cell=np.concatenate([c.lower_cells, c.upper_cells]),
            level=np.repeat([LOWER, UPPER], [n_l, n_u]),
            emphasis=np.concatenate([c.lower_emphasis, c.upper_emphasis]),
            turnover=cfg.behaviour.outcomes.turnover_base)
        n_d = len(c.daycare_cells)
        self.daycares = Daycares.create(
            cell=c.daycare_cells.copy(), private=c.daycare_private.copy(),
            quality=self.streams.get("daycare_quality").normal(0.0, 0.5, n_d))
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
        self.school_agents = [School(self, i, LEVEL_NAMES[lev])
                              for i, lev in enumerate(self.schools.level)]
        self.daycare_agents = [Daycare(self, i) for i in range(n_d)]

    def _bind_levers(self) -> None:
        """Give each lever a unique ledger label and bind it (levers check their targets)."""
        seen: set[str] = set()
        for k, lever in enumerate(self.levers):
            if lever.label in seen:
                lever.label = f"{lever.label}#{k + 1}"
            seen.add(lever.label)
            lever.bind(self)

    def cell_of(self, cell_id: int) -> mesa.discrete_space.Cell:
        """The Mesa cell of a flat cell id."""
        return self.grid._cells[divmod(int(cell_id), self.city.height)]

    def refresh_catchments(self) -> None:
        """Recompute the cell-to-school map from the catchment layers.

        ``city.catchment_lower`` / ``catchment_upper`` hold the k-th school *of the level*
        (-1 on sea); ``school_of_cell`` maps them to global school indices. Cells in a shared
        catchment keep their nominal school here; admission balances them.
        """
        c = self.city
        for lev, lab in ((LOWER, c.catchment_lower), (UPPER, c.catchment_upper)):
            ids = self.level_ids(lev)
            self.school_of_cell[lev] = np.where(lab >= 0, ids[np.maximum(lab, 0)], -1)

    # ------------------------------------------------------------------ queries
    def level_ids(self, level: int) -> np.ndarray:
        """Global indices of the schools of a level (lower 0, upper 1), in catchment order."""
        return np.flatnonzero(self.schools.level == level)

    def child_counts(self) -> np.ndarray:
        """Number of children per family slot."""
        ch = self.children
        return np.bincount(ch.family[ch.active], minlength=self.families.capacity)

    def children_of(self, fam: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """Mask over child slots: the children of the families at slots ``fam``.

        ``among`` (default: the children in the city) is the mask of child slots to look in;
        ``children.away`` finds the children of families away.
        """
        ch = self.children
        chosen = np.zeros(self.families.capacity, dtype=bool)
        chosen[fam] = True
        # Free child slots (family -1) are in neither mask.
        return (ch.active if among is None else among) & chosen[ch.family]

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
        youngest_age(ch.family, ch.age, ch.active, out)
        return out

    def family_level(self) -> np.ndarray:
        """School level a family cares about: 0 lower (youngest <= 12), 1 upper, -1 none."""
        y = self.youngest()
        return np.where(y <= 12, LOWER, np.where(y <= 15, UPPER, -1)).astype(np.int64)

    # ------------------------------------------------------------------ the year
    def step(self) -> None:
        """Advance one year: ``YEAR``, in this order.

        1. **Demography** (``phases.demography``): children and parents age; children
           turning 16 leave the model; families with no child left leave (booked
           ``aged_out``); out-migration to the suburbs (booked ``left_city``); births;
           arrivals into vacancies (booked ``arrivals``).
        2. **Moves** (``phases.housing.relocation``): who considers moving (child age,
           tenure, income, dissatisfaction, crowding), then the conditional-logit choice
           over searched vacancies (kernel ``relocate``).
        3. **Daycare choice** (``phases.daycare``): children aged 1-6 joining early
           childhood education or re-choosing after a move (kernel ``daycare_choice``).
        4. **School choice** (``phases.schooling``) at grade 1 (age 7) and grade 7 (age 13):
           applications (kernel ``rank_programmes``) and capacity-constrained deferred
           acceptance with catchment priority (kernel ``deferred_acceptance``).
        5. **Outcomes** (``phases.outcomes``): pupils' learning from background, peers,
           resources and teacher turnover; then grade-9 leavers' transitions
           (``phases.transitions``: no upper secondary, vocational or general), booked.
        6. **Reputation** (``phases.reputation``): lagged, inertial perception of outcomes
           and intake composition, by language group.
        7. **Levers** (``phases.policy``): each lever's ``apply(model)``, in scenario order,
           through the lever surface; perceived reputations are then recomputed so that
           trust and resources set by levers count in the next year's choices.
        8. **Metrics** (``sim.metrics.record``): indices, flows and the unit/area tables.

        The set-up is ``SETUP``: the initial population sorted into the city by the same
        dwelling choice, seats, first reputations, daycare places, every pupil's school,
        outcomes and reputations. With ``start=settled`` (the default) ``burn_in_years``
        unrecorded years (``BURN_IN``, years ``-burn_in_years + 1`` to 0) follow, or their
        end state is restored from a checkpoint (``sim.checkpoint``); then the levers are
        bound and year 0, "today", is recorded.
        """
        self._advance(self.phases)

    def _advance(self, phases: Sequence[Phase]) -> None:
        """One year: the year number moves on, the flow accounts reset, ``phases`` run."""
        self.year += 1
        self.recorder.start_year()
        for phase in phases:
            phase(self)
        self.running = self.year < self.cfg.years  # batch_run and SolaraViz stop here

    def burn_in(self) -> None:
        """Run the burn-in years (``BURN_IN``) from the set-up up to year 0, unrecorded.

        Burn-in years have their own (negative) year numbers, so their random streams are
        not those of years 0 on. Nothing happens with ``start=fresh``.
        """
        with _gc_frozen(self) as freeze:
            while self.year < 0:
                freeze()
                self._advance(BURN_IN)

    def _anchor_state(self, anchor: Config,
                      checkpoints: str | Path | None) -> dict[str, np.ndarray]:
        """The settled state of ``anchor``: from ``checkpoints``, or settled (and saved)."""
        state = checkpoint.load(anchor, checkpoints) if checkpoints is not None else None
        if state is None:
            state = checkpoint.capture(SegregationModel(anchor, kernels=self.k,
                                                        checkpoints=checkpoints))
        return state

    def resettle(self) -> None:
        """Re-settle a restored settled state under this model's behaviour (``sim.settle``).

        Runs burn-in years (``BURN_IN``, numbered from ``settle.YEAR_BASE``) until the
        online convergence rule holds, at most ``burn_in_years``; the last of them is year 0.
        """
        settle.shift_years(self, settle.YEAR_BASE - self.year)
        history: list[np.ndarray] = []
        with _gc_frozen(self) as freeze:
            while self.year < settle.YEAR_BASE + self.cfg.burn_in_years:
                freeze()
                self._advance(BURN_IN)
                history.append(settle.key_indices(self))
                if settle.settled(history):
                    break
        self.resettled_years = len(history)
        settle.shift_years(self, -self.year)

    def finalize(self) -> None:
        """Let levers finish (end of run)."""
        for lever in self.levers:
            lever.finalize(self)

    def run(self, years: int | None = None, progress: bool = False) -> None:
        """Run ``years`` steps (default: ``cfg.years``), optionally with a progress bar.

        While it runs, the objects that exist at the start of each year (the grid's cells,
        the agents) are frozen for Python's cyclic garbage collector (``gc.freeze``), which
        would otherwise rescan hundreds of thousands of long-lived objects every few thousand
        allocations; they are unfrozen when the run ends. Results do not depend on it.
        """
        n = self.cfg.years if years is None else years
        with _gc_frozen(self) as freeze:
            for _ in tqdm(range(n), desc="years", unit="yr", disable=not progress):
                freeze()
                self.step()
        self.finalize()

    # ------------------------------------------------------------------ families
    @property
    def family_agents(self) -> dict[int, Family]:
        """The Mesa agent of each housed family by family slot, in slot order (a new dict)."""
        return {s: a for s, a in enumerate(self._agent_of_slot) if a is not None}

    def add_family_agents(self, slots: np.ndarray) -> None:
        """Mesa agents for newly housed families (in slot order).

        A family that had an agent before (one coming back to the city, or restored from a
        checkpoint) gets its old ``unique_id`` from ``families.uid``; a new family's id is
        stored there.
        """
        agents = Family.join(self, slots)
        f = self.families
        known = f.uid[slots] >= 0
        ids = np.fromiter((a.unique_id for a in agents), dtype=np.int64, count=len(agents))
        f.uid[slots[~known]] = ids[~known]
        for k in np.flatnonzero(known).tolist():
            agents[k].unique_id = int(f.uid[slots[k]])
        agent_of = self._agent_of_slot
        agent_of.extend([None] * (self.families.capacity - len(agent_of)))  # the pool grew
        for s, agent in zip(slots.tolist(), agents, strict=True):
            agent_of[s] = agent

    def remove_family_agents(self, slots: np.ndarray) -> None:
        """Remove the Mesa agents of families that leave."""
        agent_of, gone = self._agent_of_slot, slots.tolist()
        agents = [agent_of[s] for s in gone]
        for s in gone:
            agent_of[s] = None
        Family.leave(self, agents)

