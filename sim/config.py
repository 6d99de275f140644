"""Typed, validated configuration tree (Hydra structured configs).

Every default cites its source or says ``assumption``. Sources in ``calibration/targets.csv``
(copied from the city's published statistics) are cited by their ``key``. Per-class parameters
are lists indexed by socio-economic status (``ses``: 0 low, 1 middle, 2 high income/education),
by language group (``lang``: 0 native Finnish/Swedish, 1 foreign-language), or by tenure
(``tenure``: 0 city-owned social rental, 1 private rental, 2 owner-occupied).

``validate`` is the single place that checks ranges and cross-field rules; it raises a
``ValueError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

N_SES = 3
N_LANG = 2
N_TENURE = 3
PRESETS = ("small", "helsinki")
START_MODES = ("settled", "fresh")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class CityConfig:
    """Synthetic Helsinki-like city. Defaults are the ``small`` preset."""

    preset: str = "small"
    # The city is generated from its own seed, not the run seed: replicates and scenarios of
    # a study share one city (ids of schools, cells and districts mean the same places).
    # Vary it to check that results do not hinge on one synthetic layout. Assumption.
    seed: int = 0
    width: int = 44  # cells east-west; assumption (250 m cells, about 11 km)
    height: int = 36  # cells north-south; assumption
    cell_size_m: float = 250.0  # assumption
    n_families: int = 3000  # small preset: a first run in seconds; assumption
    dwellings_per_family: float = 1.06  # family-dwelling stock / families: ~6% vacancy; assumption
    # 40 so that the four renewal districts hold about 8% of the children, near
    # renewal_areas_children_share_of_city=0.074 (targets.csv; 20 districts gave 15%)
    n_districts: int = 40
    n_renewal_areas: int = 4  # Kaikkien koulu: four urban-renewal areas (seed document)
    n_lower_schools: int = 14  # grades 1-6; scaled from comprehensive_schools=100 (targets.csv)
    n_upper_schools: int = 7  # grades 7-9; assumption (about half as many upper units)
    n_daycares: int = 36  # scaled from 300+ daycares (conf/city/helsinki.yaml); assumption
    private_daycare_share: float = 0.15  # assumption (private ECEC providers' share of units)
    sea_share: float = 0.18  # share of grid that is sea to the south; assumption
    social_share: float = 0.2  # city-owned social rental share of family dwellings; assumption
    owner_share: float = 0.45  # owner-occupied share; assumption
    renewal_social_share: float = 0.6  # social rental share in renewal areas; assumption
    foreign_share: float = 0.2  # foreign_language_share_age_1_6=0.21, _pupils=0.19 (targets.csv)
    ses_shares_native: list[float] = field(default_factory=lambda: [0.22, 0.46, 0.32])  # assumption
    ses_shares_foreign: list[float] = field(default_factory=lambda: [0.6, 0.3, 0.1])  # assumption
    low_edu_by_ses: list[float] = field(default_factory=lambda: [0.45, 0.1, 0.02])  # assumption
    unemployed_by_ses: list[float] = field(default_factory=lambda: [0.2, 0.05, 0.02])  # assumption
    unemployed_foreign_extra: float = 0.1  # assumption
    school_capacity_slack: float = 1.4  # seats / initial catchment pupils; assumption (COMPASS 2)
    emphasis_school_share: float = 0.35  # share of schools with an emphasised class; assumption
    emphasis_seat_share: float = 0.25  # emphasised seats as share of a school's intake; assumption
    daycare_capacity_slack: float = 1.15  # assumption


@dataclass
class DemographyConfig:
    """Ageing, births, exits, out-migration and arrivals."""

    birth_prob: float = 0.1  # yearly birth probability while parent < max age; assumption
    birth_max_parent_age: int = 40  # assumption
    max_children: int = 3  # issue #2: 1-3 children per family
    # New families (initial and arriving): number of children 1/2/3, age of the youngest
    # (geometric, truncated at 15), sibling gaps 1..sibling_gap_max years, parents
    # parent_age_min..parent_age_max years older than the eldest. Calibrated to about 1.83
    # children aged 0-15 per family; with conf/city/helsinki.yaml's families that is about
    # 100,000 children aged 0-15 (children_age_0_6 + 9/11 * children_age_7_17 = 99,718,
    # targets.csv: ages 7-15 are 9 of the 11 years 7-17); shape parameters are assumptions.
    children_probs: list[float] = field(default_factory=lambda: [0.3, 0.45, 0.25])
    youngest_decay: float = 0.03  # initial population: cohorts nearly flat, as in Helsinki
    # Arrivals are in-movers and families formed in the city by a first birth: mostly with
    # a baby or toddler. Assumption, set so that the age structure stays near-flat over 20
    # years (measured on city=small: 1.81 children per family, cohorts within +-20%).
    arrival_youngest_decay: float = 0.5
    sibling_gap_max: int = 4
    parent_age_min: int = 25
    parent_age_max: int = 35
    arrival_ratio: float = 1.0  # arrivals per exit; 1 keeps the population stable; assumption
    arrival_foreign_share: float = 0.25  # in-movers' foreign share; assumption (above stock 0.2)
    foreign_renewal_taste: float = 1.0  # co-ethnic network pull of renewal areas; assumption
    # Yearly logit of leaving the city, by youngest-child age band (0-6, 7-12, 13-15) x ses.
    # Calibrated so about a third of children leave during childhood, mostly before school age,
    # pre-school leavers mostly middle/high income, school-age leavers more often low income
    # (children_leaving_city_during_childhood_share=0.33, preschool_leavers_income, targets.csv).
    outmig_logit: list[list[float]] = field(
        default_factory=lambda: [[-3.7, -3.1, -2.9], [-4.2, -4.5, -4.6], [-4.6, -5.0, -5.2]]
    )
    outmig_dissatisfaction: float = 1.0  # logit per unit dissatisfaction; assumption
    outmig_foreign: float = -0.4  # foreign-language families leave less for suburbs; assumption


@dataclass
class PreferenceConfig:
    """Residential preferences (conditional logit), per ses class unless noted."""

    # Sampled vacancies per mover; Sage & Flache 2021 use 8, more here because tenure and
    # price rule many out (assumption).
    n_candidates: int = 12
    # Families also search near home (most moves are local: kaupunkitieto.hel.fi node/776):
    # this many draws of a random cell within local_radius_km of home; assumption.
    n_local_candidates: int = 8
    local_radius_km: float = 1.0  # assumption
    x0: float = 0.5  # preferred own-group share; Sage & Flache 2021 / Dignum et al. 2022
    m_homog: float = 0.6  # satisfaction left at full homogeneity (M); assumption
    local_weight: float = 0.5  # b: weight of district vs own-cell composition; Dignum et al. 2022
    w_comp_ses: list[float] = field(default_factory=lambda: [0.3, 0.8, 1.5])  # assumption
    w_comp_lang: list[float] = field(default_factory=lambda: [1.2, 0.6])  # by lang; assumption
    w_school: list[float] = field(default_factory=lambda: [0.1, 0.6, 1.5])  # Kauppinen et al. 2021
    w_amenity: list[float] = field(default_factory=lambda: [0.4, 0.6, 1.0])  # assumption
    w_afford: float = 8.0  # logit per unit of cost above budget; assumption
    budget: list[float] = field(default_factory=lambda: [0.45, 0.72, 1.05])  # assumption
    # Housing cost relative to the cell's price level, by tenure; assumption
    tenure_cost: list[float] = field(default_factory=lambda: [0.35, 0.8, 1.0])
    tenure_taste: list[list[float]] = field(  # ses x tenure; assumption (owners: detached suburbs)
        default_factory=lambda: [[0.8, 0.3, 0.0], [0.0, 0.2, 0.6], [-1.5, 0.0, 1.0]]
    )
    social_max_ses: int = 1  # social rental is income-tested: ses <= this; assumption
    w_distance: float = 0.5  # logit per km from current home; most moves local (node/776)
    stay_bonus: float = 0.5  # moving cost in utility units; assumption


@dataclass
class MobilityConfig:
    """Whether a family considers moving within the city (logistic)."""

    base_logit: float = -2.4  # assumption, calibrated to ~8% yearly moves
    # Logit shifts; signs from kaupunkitieto.hel.fi (first_moves_before_school_age_share=0.8,
    # within_city_moves_income in targets.csv: low-income and renters move most), sizes are
    # assumptions. By youngest child's age band (0-6, 7-12, 13-15), tenure, status:
    age_band: list[float] = field(default_factory=lambda: [0.6, -0.5, -0.9])
    tenure: list[float] = field(default_factory=lambda: [0.0, 0.4, -0.9])
    ses: list[float] = field(default_factory=lambda: [0.4, 0.0, -0.1])
    dissatisfaction: float = 1.2  # assumption
    crowding: float = 0.8  # per child over dwelling space; assumption
    space: list[float] = field(default_factory=lambda: [2.0, 1.5, 3.0])  # by tenure; assumption


@dataclass
class DaycareConfig:
    """Early childhood education (ages 1-6)."""

    # Yearly join probability for a non-participant, by age 1..6, native; gives stock shares
    # ~0.60 at ages 1-2 and ~0.93 at 3-6 (ecec_participation_age_1_2, _age_3_6 in targets.csv)
    join_prob: list[float] = field(default_factory=lambda: [0.52, 0.45, 0.85, 0.6, 0.6, 0.6])
    foreign_join_factor: float = 0.8  # assumption: lower participation among foreign-language
    n_nearest: int = 8  # candidate daycares (nearest); assumption
    w_distance: float = 1.5  # logit per km; assumption
    w_reputation: list[float] = field(default_factory=lambda: [0.3, 0.6, 1.0])  # assumption
    w_private: list[float] = field(default_factory=lambda: [-2.0, -0.8, 0.2])  # price; assumption
    w_resources: float = 1.0  # perceived quality per unit of extra resources; assumption
    rechoose_km: float = 2.0  # movers farther than this re-choose their daycare; assumption


@dataclass
class SchoolConfig:
    """School choice at grades 1 (age 7) and 7 (age 13) and admissions."""

    enabled: bool = True  # False: every child attends the catchment school (no choice)
    # Probability of applying beyond the catchment school, by ses; calibrated to about 85%
    # local first-graders city-wide (local_school_share_grade1=0.85, targets.csv)
    look_prob: list[float] = field(default_factory=lambda: [0.15, 0.35, 0.55])
    # Looking rises as the local school's reputation falls, more so for higher status
    # (middle-class avoidance: Bernelius & Vaattovaara 2016); assumption on the values
    look_reputation: list[float] = field(default_factory=lambda: [0.6, 1.0, 1.5])
    g7_look_factor: float = 1.6  # more choice at grade 7 (seed document, targets.csv)
    info_mean: list[float] = field(default_factory=lambda: [0.8, 0.6])  # by lang; assumption
    info_concentration: float = 4.0  # Beta(k*mean, k*(1-mean)) spread of info; assumption
    n_ranked: int = 3  # programmes ranked before the catchment school; assumption
    max_km: float = 5.0  # schools considered within this distance; assumption
    w_reputation: list[float] = field(default_factory=lambda: [0.3, 1.0, 2.0])  # assumption
    w_composition: list[float] = field(default_factory=lambda: [0.2, 0.6, 1.0])  # assumption
    # Per km; COMPASS uses a distance-decay with p = 1-2 km (shared/literature.md): the
    # linear-logit sizes are assumptions, larger for lower status.
    w_distance: list[float] = field(default_factory=lambda: [1.2, 0.7, 0.5])
    w_emphasis: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])  # assumption
    local_bonus: float = 0.3  # familiarity with the catchment school; assumption
    aptitude_ses_corr: float = 0.4  # aptitude-status correlation; assumption


@dataclass
class OutcomeConfig:
    """Yearly learning outcomes in school-year equivalents (relative to the grade norm)."""

    ses_effect: list[float] = field(default_factory=lambda: [-0.8, 0.0, 0.7])  # assumption
    foreign_effect: float = -0.5  # assumption
    peer_effect: float = 1.0  # per unit of school mean background; assumption
    resource_effect: float = 0.5  # per unit of extra resources/pupil (base=1); assumption
    turnover_effect: float = 1.0  # per unit turnover rate; assumption
    turnover_base: float = 0.08  # teacher turnover; assumption
    turnover_disadvantage: float = 0.25  # per low-ses share; assumption
    turnover_resources: float = 0.2  # per unit extra resources; assumption
    adjustment: float = 0.3  # yearly partial adjustment lambda; Millington et al. 2014 style
    noise_sd: float = 0.3  # assumption
    # Learning gap between top and bottom school deciles, about 2.5 school years
    # (learning_gap_top_bottom_school_decile_years, targets.csv) is the calibration target.


@dataclass
class ReputationConfig:
    """Lagged, inertial perception of outcomes and intake composition."""

    feedback: bool = True  # False freezes reputations at their initial values
    inertia: float = 0.8  # weight of last year's reputation; assumption
    w_outcome: float = 1.0  # assumption
    w_composition: list[float] = field(default_factory=lambda: [1.0, 0.8])  # by lang; assumption
    outcome_scale: float = 1.0  # school-years of mean outcome per reputation unit; assumption
    composition_scale: float = 0.6  # composition-index difference per unit; assumption


@dataclass
class BehaviourConfig:
    """All behavioural parameters."""

    demography: DemographyConfig = field(default_factory=DemographyConfig)
    preferences: PreferenceConfig = field(default_factory=PreferenceConfig)
    mobility: MobilityConfig = field(default_factory=MobilityConfig)
    daycare: DaycareConfig = field(default_factory=DaycareConfig)
    school: SchoolConfig = field(default_factory=SchoolConfig)
    outcomes: OutcomeConfig = field(default_factory=OutcomeConfig)
    reputation: ReputationConfig = field(default_factory=ReputationConfig)


@dataclass
class OutputConfig:
    """What a run writes."""

    figures: bool = True
    cells_in_areas: bool = True  # cell rows in areas.parquet (needed to recompute cell indices)
    progress: bool = True


@dataclass
class ScenarioConfig:
    """A named list of policy levers (``conf/scenario/<name>.yaml``; see ``scenarios``)."""

    name: str = "baseline"
    description: str = "No policy change."
    levers: list[Any] = field(default_factory=list)  # [{lever: <name>, **args}, ...]


@dataclass
class Config:
    """Root of the configuration tree."""

    seed: int = 0
    years: int = 20  # assumption: two decades, the horizon strategy staff ask about
    # numba threads for the kernels that run per family or pupil in parallel. 1 keeps
    # sweeps at one process per core; more helps a single long run. Results do not depend
    # on it. Assumption.
    threads: int = 1
    # Where year 0 starts (issue #8). "settled": burn_in_years unrecorded years with the
    # levers off run before year 0, so that year 0 is a city that has sorted itself
    # ("today"); "fresh": year 0 is the generated city (studies of the transient).
    start: str = "settled"
    # Years before year 0. Chosen by the convergence rule in README ("A settled start"):
    # every key index within 5% of its long-run mean, measured on city=small and helsinki.
    burn_in_years: int = 40
    # Cache of settled states (sim/checkpoint.py), used by the entry points; "" = none.
    # Assumption: a folder beside the outputs, out of git.
    checkpoint_dir: str = "outputs/checkpoints"
    city: CityConfig = field(default_factory=CityConfig)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)


def register_configs() -> None:
    """Register the schema with Hydra's ConfigStore (``base_config``)."""
    ConfigStore.instance().store(name="base_config", node=Config)


register_configs()


def load_config(overrides: list[str] | None = None) -> Config:
    """Compose ``conf/config.yaml`` with Hydra overrides, validate and return a typed config.

    Args:
        overrides: Hydra-style overrides such as ``["seed=3", "city=helsinki"]``.

    Returns:
        The validated config as a ``Config`` dataclass.

    Raises:
        ValueError: If an override names an unknown preset, key or an invalid value.

    """
    overrides = list(overrides or [])
    for ov in overrides:
        key, _, value = ov.partition("=")
        if key == "city" and value not in PRESETS:
            raise ValueError(f"city={value!r} is not a preset; allowed: {', '.join(PRESETS)}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            dcfg = compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ValueError(f"config error: {exc}{cause}") from exc
    finally:
        GlobalHydra.instance().clear()
    return validate(dcfg)


@functools.cache
def preset_families(preset: str) -> int:
    """Families of a city preset, read from ``conf/city/<preset>.yaml``.

    The one place a city's scale is set: levers whose amounts are given at Helsinki scale
    (``reference_families``) and the report's cost shares read it from here.
    """
    return int(OmegaConf.load(CONF_DIR / "city" / f"{preset}.yaml").n_families)


def to_object(cfg: Config | DictConfig | dict) -> Config:
    """Return ``cfg`` as a ``Config`` dataclass (from a DictConfig, dict or Config)."""
    if isinstance(cfg, Config):
        return cfg
    merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def as_dict(cfg: Config) -> dict:
    """Plain-dict view of a config (for summary.json and hashing)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


class _Checker:
    """Collects range checks; raises on the first failure with key, value and rule."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def get(self, key: str) -> Any:
        obj: Any = self.cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    @staticmethod
    def fail(key: str, value: Any, allowed: str) -> None:
        raise ValueError(f"config error: {key}={value!r} is not allowed; expected {allowed}")

    def real(self, key: str, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
        value = self.get(key)
        values = value if isinstance(value, list) else [value]
        flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
        for v in flat:
            bad = not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo)
            if bad:
                left = "(" if lo_open else "["
                self.fail(key, value, f"values in {left}{lo}, {hi}]")

    def share(self, key: str) -> None:
        self.real(key, 0.0, 1.0)

    def positive_int(self, key: str, hi: int = 10**9) -> None:
        value = self.get(key)
        if not isinstance(value, int) or value < 1 or value > hi:
            self.fail(key, value, f"an integer in [1, {hi}]")

    def length(self, key: str, n: int, inner: int | None = None) -> None:
        value = self.get(key)
        ok = len(value) == n and (inner is None or all(len(r) == inner for r in value))
        if not ok:
            shape = f"{n} x {inner}" if inner else str(n)
            self.fail(key, value, f"a list of length {shape}")

    def sums_to_one(self, key: str) -> None:
        value = self.get(key)
        if abs(sum(value) - 1.0) > 1e-6:
            self.fail(key, value, "shares that sum to 1")


def validate(cfg: Config | DictConfig | dict) -> Config:
    """Check ranges and cross-field rules of a whole config tree.

    Args:
        cfg: A config as dataclass, DictConfig or dict.

    Returns:
        The config as a typed ``Config``.

    Raises:
        ValueError: Naming the offending key, its value and what is allowed.

    """
    try:
        obj = to_object(cfg)
    except Exception as exc:  # OmegaConf type errors name the key already
        raise ValueError(f"config error: {exc}") from exc
    c = _Checker(obj)
    if obj.city.preset not in PRESETS:
        c.fail("city.preset", obj.city.preset, f"one of {list(PRESETS)}")
    for key in ("seed", "city.seed"):
        if not isinstance(c.get(key), int) or c.get(key) < 0:
            c.fail(key, c.get(key), "a non-negative integer")
    c.positive_int("years", 500)
    if obj.start not in START_MODES:
        c.fail("start", obj.start, f"one of {list(START_MODES)}")
    c.real("burn_in_years", 0, 500)
    if not isinstance(obj.burn_in_years, int):
        c.fail("burn_in_years", obj.burn_in_years, "an integer in [0, 500]")
    c.positive_int("threads", os.cpu_count() or 1)
    for key in ("width", "height", "n_families", "n_districts", "n_lower_schools",
                "n_upper_schools", "n_daycares"):
        c.positive_int(f"city.{key}")
    c.real("city.n_renewal_areas", 0, 10**6)
    c.real("city.cell_size_m", 1.0)
    for key in ("private_daycare_share", "sea_share", "social_share", "owner_share",
                "renewal_social_share", "foreign_share", "emphasis_school_share",
                "emphasis_seat_share", "ses_shares_native", "ses_shares_foreign"):
        c.share(f"city.{key}")
    if obj.city.sea_share > 0.6:
        c.fail("city.sea_share", obj.city.sea_share, "at most 0.6 so the city has land")
    if obj.city.social_share + obj.city.owner_share > 1.0:
        c.fail("city.owner_share", obj.city.owner_share,
               f"at most 1 - city.social_share = {1 - obj.city.social_share:g}")
    for key in ("low_edu_by_ses", "unemployed_by_ses"):
        c.length(f"city.{key}", N_SES)
        c.share(f"city.{key}")
    c.real("city.unemployed_foreign_extra", 0.0, 0.5)
    for key in ("ses_shares_native", "ses_shares_foreign"):
        c.length(f"city.{key}", N_SES)
        c.sums_to_one(f"city.{key}")
    c.real("city.dwellings_per_family", 1.0, 3.0, lo_open=True)
    c.real("city.school_capacity_slack", 1.0, 5.0)
    c.real("city.daycare_capacity_slack", 1.0, 5.0)
    if obj.city.n_renewal_areas >= obj.city.n_districts:
        c.fail("city.n_renewal_areas", obj.city.n_renewal_areas,
               f"fewer than city.n_districts = {obj.city.n_districts}")
    land = obj.city.width * obj.city.height * (1 - obj.city.sea_share)
    for key in ("n_districts", "n_lower_schools", "n_upper_schools", "n_daycares"):
        if getattr(obj.city, key) > land / 4:
            c.fail(f"city.{key}", getattr(obj.city, key),
                   f"at most a quarter of the land cells ({int(land / 4)})")

    b = "behaviour"
    c.share(f"{b}.demography.birth_prob")
    c.real(f"{b}.demography.birth_max_parent_age", 18, 60)
    c.real(f"{b}.demography.max_children", 1, 3)
    c.real(f"{b}.demography.arrival_ratio", 0.0, 3.0)
    c.share(f"{b}.demography.arrival_foreign_share")
    c.length(f"{b}.demography.outmig_logit", 3, N_SES)
    c.length(f"{b}.demography.children_probs", 3)
    c.share(f"{b}.demography.children_probs")
    c.sums_to_one(f"{b}.demography.children_probs")
    c.real(f"{b}.demography.youngest_decay", 0.0, 1.0, lo_open=True)
    c.real(f"{b}.demography.arrival_youngest_decay", 0.0, 1.0, lo_open=True)
    c.real(f"{b}.demography.sibling_gap_max", 1, 10)
    c.real(f"{b}.demography.parent_age_min", 15, 60)
    c.real(f"{b}.demography.parent_age_max", obj.behaviour.demography.parent_age_min, 70)
    c.real(f"{b}.demography.outmig_logit", -20, 5)

    p = f"{b}.preferences"
    c.positive_int(f"{p}.n_candidates", 256)
    c.real(f"{p}.n_local_candidates", 0, 256)
    c.real(f"{p}.local_radius_km", 0.0, 50.0, lo_open=True)
    c.real(f"{p}.x0", 0.0, 1.0, lo_open=True)
    if obj.behaviour.preferences.x0 >= 1.0:
        c.fail(f"{p}.x0", obj.behaviour.preferences.x0, "a value in (0, 1)")
    for key in ("m_homog", "local_weight"):
        c.share(f"{p}.{key}")
    for key, n in (("w_comp_ses", N_SES), ("w_school", N_SES), ("w_amenity", N_SES),
                   ("budget", N_SES), ("w_comp_lang", N_LANG), ("tenure_cost", N_TENURE)):
        c.length(f"{p}.{key}", n)
    c.length(f"{p}.tenure_taste", N_SES, N_TENURE)
    c.real(f"{p}.budget", 0.0, 10.0, lo_open=True)
    c.real(f"{p}.tenure_cost", 0.0, 10.0)
    c.real(f"{p}.w_afford", 0.0, 1000.0)
    c.real(f"{p}.w_distance", 0.0, 100.0)
    c.real(f"{p}.social_max_ses", 0, N_SES - 1)

    m = f"{b}.mobility"
    for key, n in (("age_band", 3), ("tenure", N_TENURE), ("ses", N_SES), ("space", N_TENURE)):
        c.length(f"{m}.{key}", n)
    c.real(f"{m}.space", 0.0, 10.0, lo_open=True)

    d = f"{b}.daycare"
    c.length(f"{d}.join_prob", 6)
    c.share(f"{d}.join_prob")
    c.share(f"{d}.foreign_join_factor")
    c.positive_int(f"{d}.n_nearest", 64)
    c.length(f"{d}.w_reputation", N_SES)
    c.length(f"{d}.w_private", N_SES)
    c.real(f"{d}.rechoose_km", 0.0)

    s = f"{b}.school"
    c.length(f"{s}.look_prob", N_SES)
    c.share(f"{s}.look_prob")
    c.length(f"{s}.info_mean", N_LANG)
    c.real(f"{s}.info_mean", 0.0, 1.0, lo_open=True)
    c.real(f"{s}.info_concentration", 0.0, 1000.0, lo_open=True)
    c.real(f"{s}.g7_look_factor", 0.0, 10.0)
    c.positive_int(f"{s}.n_ranked", 16)
    c.real(f"{s}.max_km", 0.0, 1000.0, lo_open=True)
    for key in ("w_reputation", "w_composition", "w_distance", "w_emphasis", "look_reputation"):
        c.length(f"{s}.{key}", N_SES)
    c.real(f"{s}.w_distance", 0.0, 100.0)
    c.real(f"{s}.aptitude_ses_corr", -1.0, 1.0)

    o = f"{b}.outcomes"
    c.length(f"{o}.ses_effect", N_SES)
    for key in ("adjustment", "turnover_base"):
        c.share(f"{o}.{key}")
    c.real(f"{o}.noise_sd", 0.0, 10.0)

    # The levers themselves are built and checked by the policy layer (``scenarios``).
    levers = obj.scenario.levers
    if not isinstance(levers, list) or not all(
            isinstance(lv, dict) and isinstance(lv.get("lever"), str) for lv in levers):
        c.fail("scenario.levers", levers, "a list of mappings, each with a 'lever' name")

    r = f"{b}.reputation"
    c.share(f"{r}.inertia")
    c.length(f"{r}.w_composition", N_LANG)
    c.real(f"{r}.outcome_scale", 0.0, 100.0, lo_open=True)
    c.real(f"{r}.composition_scale", 0.0, 100.0, lo_open=True)
    return obj


def flat_fields(dc: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten a dataclass tree into dotted keys (for docs and sweeps)."""
    out: dict[str, Any] = {}
    for f in fields(dc):
        value = getattr(dc, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            out.update(flat_fields(value, key + "."))
        else:
            out[key] = value
    return out
