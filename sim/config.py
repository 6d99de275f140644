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

import difflib
import functools
import math
import os
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

N_SES = 3
N_LANG = 2
N_TENURE = 3
PRESETS = ("small", "helsinki", "from_files")
CAPACITY_RULES = ("guarantee", "hold")  # city.capacity_rule
CITY_FILES = ("grid", "catchments_lower", "catchments_upper", "districts", "renewal", "schools",
              "daycares")
OPTIONAL_CITY_FILES = ("renewal",)  # a city may have no urban-renewal areas
START_MODES = ("settled", "fresh")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class CityConfig:
    """The model city. Defaults are the synthetic ``small`` preset.

    ``preset=from_files`` builds the city from real data files instead (``sim.geodata``); the
    file keys below are used only then, and the synthetic layout keys (width, height,
    n_families, counts of districts and units, sea_share) are ignored: they come from the
    files. Shares and slack factors still fill in what the files do not give.
    """

    preset: str = "small"
    # Real-geography input files (preset from_files; docs/geography.md). Empty: unused.
    grid: str = ""  # population grid, CSV or GeoPackage (Statistics Finland 250 m style)
    catchments_lower: str = ""  # grades 1-6 catchment polygons, GeoJSON or GeoPackage
    catchments_upper: str = ""  # grades 7-9 catchment polygons
    districts: str = ""  # (sub-)district polygons
    renewal: str = ""  # urban-renewal area polygons (optional)
    schools: str = ""  # school locations, CSV or GeoJSON
    daycares: str = ""  # daycare locations, CSV or GeoJSON
    # The one school network the model runs (catchments and schools of the other language
    # are left out); the Finnish-language network serves most of Helsinki's pupils.
    # Assumption.
    school_language: str = "fi"
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
    # A local child the catchment school has no seat for (its general class full of other
    # local children): "guarantee" gives it a temporary place there, beyond the school's
    # seats (the neighbourhood-school guarantee); "hold" keeps every school within its seats
    # and places the child at the nearest school of its level with a free seat, and only
    # where no school has one, at the catchment school. Temporary places are reported
    # (capacity_added, units.parquet capacity - design_capacity, the run's log). The
    # synthetic cities size seats from demand and guarantee; city=from_files holds the
    # register's seats (conf/city/from_files.yaml). Assumption.
    capacity_rule: str = "guarantee"
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
    # Families entering per exit (first births, returners and arrivals together; arrivals
    # fill what the other two leave); 1 keeps the population stable; assumption.
    arrival_ratio: float = 1.0
    arrival_foreign_share: float = 0.25  # in-movers' foreign share; assumption (above stock 0.2)
    # Families formed in the city by a first birth, per family with children and year; the
    # level sets births per child (children_age_0_6 / 7 per child 0-15, targets.csv) with
    # birth_prob; calibrated (calibration/parameters.yaml); default an assumption.
    first_birth_rate: float = 0.045
    # Foreign-language share of those new families: the younger cohorts are more often
    # foreign-language (foreign_language_share_age_1_6 = 0.21 against 0.19 of pupils,
    # targets.csv); calibrated; default an assumption. Their status mix is the city's by
    # language (city.ses_shares_*) and they choose dwellings as arrivals do: assumptions,
    # since no source gives the mix of Helsinki's first-time parents.
    first_birth_foreign_share: float = 0.25
    # Leavers who come back (sim/phases/returns.py): yearly return logit, raised while a
    # child is 5-6 (leavers_returning_share: about 1 in 6 return, typically at 5-6,
    # targets.csv); calibrated; defaults assumptions.
    return_logit: float = -3.8
    return_school_start: float = 1.0
    foreign_renewal_taste: float = 1.0  # co-ethnic network pull of renewal areas; assumption
    # Yearly logit of leaving the city, by youngest-child age band (0-6, 7-12, 13-15) x ses.
    # Calibrated so about a third of children leave during childhood, mostly before school age,
    # pre-school leavers mostly middle/high income, school-age leavers more often low income
    # (children_leaving_city_during_childhood_share=0.33, preschool_leavers_income, targets.csv).
    # Nested lists are typed ``Any`` inside: OmegaConf refuses integers in a nested float list
    # (``[[-4, -3, -3], ...]``); ``validate`` checks the numbers and stores them as floats.
    outmig_logit: list[list[Any]] = field(
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
    # ses x tenure; assumption (owners: detached suburbs). Any inside: see outmig_logit.
    tenure_taste: list[list[Any]] = field(
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
    # Extra logit while the youngest child is 1, the year after a birth: the need for space
    # (leaving_reasons, targets.csv); over a quarter of first moves come at age 1
    # (first_moves_at_age_1_share); calibrated; default an assumption.
    youngest_age1: float = 0.5
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
    # Distance weighs this much at grade 7 relative to grade 1: older pupils travel on
    # their own, so renewal areas lose more pupils at grade 7
    # (local_school_share_grade7_renewal_areas_below_city, targets.csv); 1 is no
    # difference, an assumption the calibration fits.
    g7_distance_factor: float = 1.0
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
class TransitionConfig:
    """After grade 9: no upper-secondary education ("dropout"), vocational or general.

    Two logits on the pupil's achievement (school years against the grade norm, the
    ``outcomes`` scale), status class and home language: ``P(dropout)``, then, for those who
    continue, ``P(general | continuing)``. The intercepts and the foreign-language terms are
    fitted to Helsinki's base rates (``grade9_*`` and ``silliman_*`` moments in
    ``calibration/targets.yaml``); the slopes and status terms are assumptions.
    """

    dropout_logit: float = -3.9  # set to grade9_dropout_share (8%) on settled helsinki, seed 0
    dropout_foreign: float = 0.9  # set to grade9_dropout_foreign (27%) on the same city
    dropout_achievement: float = -1.0  # log-odds per school year of achievement; assumption
    dropout_ses: list[float] = field(default_factory=lambda: [0.4, 0.0, -0.4])  # assumption
    general_logit: float = 1.8  # set to grade9_general_share (65%) on the same city
    general_foreign: float = -0.3  # assumption
    general_achievement: float = 1.5  # log-odds per school year of achievement; assumption
    general_ses: list[float] = field(default_factory=lambda: [-0.5, 0.0, 0.6])  # assumption


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
    transitions: TransitionConfig = field(default_factory=TransitionConfig)
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
    # Years before year 0. Chosen by the convergence rule in docs/settled.md:
    # every key index within 5% of its long-run mean: 38 years on city=helsinki (shipped
    # fit, issue #15's demography); 60 leaves a margin.
    burn_in_years: int = 60
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
        ValueError: If an override names an unknown preset, key or an invalid value (one
            line, see ``one_line``).

    """
    overrides = list(overrides or [])
    for ov in overrides:
        key, _, value = ov.partition("=")
        if key == "city" and value not in PRESETS:
            raise ValueError(f"city={value!r} is not a preset; allowed: {', '.join(PRESETS)}")
    GlobalHydra.instance().clear()
    try:
        check_overrides(overrides)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            dcfg = compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ValueError(f"config error: {one_line(exc)}") from exc
    finally:
        GlobalHydra.instance().clear()
    return validate(dcfg)


def one_line(exc: BaseException) -> str:
    """The message of a user-input error on one line.

    Hydra and OmegaConf spread their messages over several lines (the key's type details,
    the config search path, an underlying OmegaConf error as ``__cause__``). This keeps the
    lines that say what is wrong, with the cause in parentheses, joined into one line.
    """
    def lines(e: BaseException) -> list[str]:
        out = []
        for line in str(e).splitlines():
            line = line.strip()
            if line.startswith(NOISE):
                break
            if line and not line.startswith(DETAILS):
                out.append(line)
        return out

    text = " ".join(lines(exc))
    cause = exc.__cause__
    if isinstance(exc, HydraException) and cause is not None and str(cause):
        text += f" ({' '.join(lines(cause))})"
    return text or type(exc).__name__


# Lines of Hydra/OmegaConf messages that add nothing for the user (``one_line``).
DETAILS = ("full_key:", "reference_type=", "object_type=", "Set the environment variable")
NOISE = ("Config search path",)

# Overrides of these keys are refused: the preset label must come with the preset's values
# (``city=helsinki``), or the outputs would name a city they do not describe.
SET_BY_GROUP = {"city.preset": "the preset chosen as a group, e.g. city=helsinki"}


def check_overrides(overrides: list[str]) -> None:
    """Refuse command-line overrides that the config tree would silently reinterpret.

    OmegaConf reads any integer as a boolean (``feedback=2`` becomes true), and the preset
    label can be set apart from the preset's values. Both are caught here, on the overrides
    as written, before Hydra converts them. Unknown keys (also with ``+``) are refused by
    ``validate``.

    Raises:
        ValueError: ``config error: <key>=<value> is not allowed; expected <rule>``.
    """
    parsed = OverridesParser.create().parse_overrides(overrides)
    flags = {k for k, v in flat_fields(Config()).items() if isinstance(v, bool)}
    for ov in parsed:
        key = ov.key_or_group
        values = ([ov.value()] if not ov.is_sweep_override()
                  else list(ov.sweep_iterator()) if ov.is_discrete_sweep() else [])
        for value in values:
            if key in flags and not isinstance(value, bool):
                _Checker.fail(key, value, "true or false")
            if key in SET_BY_GROUP and not ov.is_delete():
                _Checker.fail(key, value, SET_BY_GROUP[key])


@functools.cache
def preset_families(preset: str) -> int:
    """Families of a city preset, read from ``conf/city/<preset>.yaml``.

    The one place a city's scale is set: levers whose amounts are given at Helsinki scale
    (``reference_families``) and the report's cost shares read it from here.
    """
    return int(OmegaConf.load(CONF_DIR / "city" / f"{preset}.yaml").n_families)
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_HYDRA_WORDS = {"true", "false", "null", "inf", "nan"}


def _override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (strings quoted unless plain words)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_override_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _BARE.fullmatch(text) and text.lower() not in _HYDRA_WORDS:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_seed(seed: Any = None, rng: Any = None) -> int | None:
    """The run seed from Mesa's ``seed`` or ``rng`` keyword (``None`` if neither is given).

    Raises:
        TypeError: ``rng`` is a generator or seed sequence: the model draws from its own
            named streams (``sim.rng``) and needs an integer seed to derive them.
        ValueError: ``seed`` and ``rng`` are both given and differ.

    """
    given = [v for v in (seed, rng) if v is not None]
    for v in given:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise TypeError(f"seed/rng must be an integer seed, not {type(v).__name__}: the "
                            "model derives its named random streams from one integer")
    if len({int(v) for v in given}) > 1:
        raise ValueError(f"seed={seed!r} and rng={rng!r} disagree; give one of them")
    return int(given[0]) if given else None


def config_from_params(seed: Any = None, rng: Any = None, **params: Any) -> Config:
    """A validated config from keyword parameters, the way Mesa's tools build a model.

    The only bridge from keyword parameters to the typed config: they become Hydra overrides
    for ``load_config``, so presets, types and ranges are checked exactly as on the command
    line.

    Args:
        seed: Run seed (``Config.seed``); Mesa's ``batch_run`` passes it.
        rng: Same as ``seed`` (Mesa's other name for it); an integer.
        **params: Config overrides keyed by dotted path (``**{"city.n_families": 2000}``) or
            with double underscores instead of dots (``city__n_families=2000``); a config
            group takes a preset name (``city="helsinki"``, ``scenario="engagement"``).
            Values are Python values (numbers, strings, bools, lists).

    Returns:
        The validated config. Without ``seed`` and ``rng`` the config's own seed is kept
        (0 by default), so a model built without one is reproducible.

    Raises:
        ValueError: Unknown key, preset or invalid value (naming the key).
        TypeError: A seed that is not an integer.

    """
    overrides = [f"{key.replace('__', '.')}={_override_value(value)}"
                 for key, value in params.items()]
    chosen = run_seed(seed, rng)
    if chosen is not None:
        overrides.append(f"seed={chosen}")
    return load_config(overrides)


def to_object(cfg: Config | DictConfig | dict) -> Config:
    """Return ``cfg`` as a ``Config`` dataclass (from a DictConfig, dict or Config)."""
    if isinstance(cfg, Config):
        return cfg
    merged = OmegaConf.merge(OmegaConf.structured(Config), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def as_dict(cfg: Config) -> dict:
    """Plain-dict view of a config (for summary.json and hashing).

    A ``Config`` holds plain values only (interpolations are resolved when it is built), so
    the dataclasses' own deep copy equals OmegaConf's container (``tests/test_config.py``
    checks it) at a few hundredths of the cost: a calibration candidate on a small city
    calls this about 20 times per seed, and OmegaConf's way took half its time.
    """
    if isinstance(cfg, Config):
        return asdict(cfg)
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


# Bounds shared by many keys (``validate``). A logit weight beyond 20 turns a choice into a
# certainty (exp(20) ~ 5e8) and larger values only overflow; outcome effects are school
# years, where 10 is more than the whole gap between the top and bottom schools (2.5).
LOGIT = 20.0
EFFECT = 10.0
RESOURCE_EFFECT = 50.0
# Smallest number of families per school or daycare: below it the generator cannot place
# every unit on a distinct inhabited cell ("Cannot take a larger sample than population").
# The tiny test cities have about 20; Helsinki has 750 per lower school. Assumption.
FAMILIES_PER_UNIT = 10
# Memory a run needs (``memory_estimate``): peak RSS less the interpreter's, measured on
# 30,000 families (about 3 kB each: pools with 40% headroom, children, Mesa agent; doubled
# here for safety) and on a 200 x 200 grid over 5 and 20 years (about 2.5 kB per cell for
# the Mesa cell, property layers and neighbour lists, 0.37 kB per cell and year for the
# rows of areas.parquet, measured before its six net-move columns, which add 96 B: six
# int64 in the kept counts and in the frame). Helsinki over 30 years peaks at 571 MB
# (benchmarks/RESULTS.md), before those columns (about 34 MB more: 11,520 cells x 31 years).
BYTES_PER_FAMILY = 6_000
BYTES_PER_CELL = 3_000
BYTES_PER_CELL_YEAR = 500
BYTES_BASE = 300 * 2**20  # interpreter, numpy, numba, Mesa, pandas


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
        """Every number of ``key`` (a number or a list, possibly nested) in the range."""
        value = self.get(key)
        left = "(" if lo_open else "["
        for v in _leaves(value):
            bad = (not _is_number(v) or not math.isfinite(v) or v < lo or v > hi
                   or (lo_open and v == lo))
            if bad:
                self.fail(key, value, f"values in {left}{lo}, {hi}]")

    def share(self, key: str) -> None:
        self.real(key, 0.0, 1.0)

    def signed(self, key: str, bound: float) -> None:
        """A free-signed weight: every number within ``[-bound, bound]``."""
        self.real(key, -bound, bound)

    def positive_int(self, key: str, hi: int = 10**9) -> None:
        value = self.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > hi:
            self.fail(key, value, f"an integer in [1, {hi}]")

    def flag(self, key: str) -> None:
        value = self.get(key)
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")

    def text(self, key: str) -> None:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(key, value, "a non-empty string")

    def length(self, key: str, n: int, inner: int | None = None) -> None:
        value = self.get(key)
        ok = isinstance(value, list) and len(value) == n and (inner is None or all(
            isinstance(r, list) and len(r) == inner for r in value))
        if not ok:
            shape = f"{n} x {inner}" if inner else str(n)
            self.fail(key, value, f"a list of length {shape}")

    def sums_to_one(self, key: str) -> None:
        value = self.get(key)
        if abs(sum(value) - 1.0) > 1e-6:
            self.fail(key, value, "shares that sum to 1")


def _check_city_files(c: _Checker, city: CityConfig) -> None:
    """File keys: all required with ``preset=from_files``, none allowed otherwise."""
    if city.school_language not in ("fi", "sv"):
        c.fail("city.school_language", city.school_language, "'fi' or 'sv'")
    if city.capacity_rule not in CAPACITY_RULES:
        c.fail("city.capacity_rule", city.capacity_rule,
               " or ".join(repr(r) for r in CAPACITY_RULES))
    for key in CITY_FILES:
        path = getattr(city, key)
        if city.preset != "from_files" and path:
            c.fail(f"city.{key}", path, "'' unless city=from_files")
        if city.preset == "from_files" and not path and key not in OPTIONAL_CITY_FILES:
            c.fail(f"city.{key}", path, "a file path with city=from_files")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _leaves(value: Any) -> list[Any]:
    """The elements of a value, a list or a list of lists (``_Checker.real``)."""
    if not isinstance(value, list):
        return [value]
    return [v for row in value for v in _leaves(row)]


def check_keys(tree: Any, schema: type | None = None, prefix: str = "") -> None:
    """Refuse keys the schema does not have, and values OmegaConf would reinterpret.

    Hydra adds ``+key=value`` overrides (typos such as ``+behaviour.school.lookprob``) to
    the config even in struct mode, and converting it to the dataclass drops them silently;
    OmegaConf reads any number as a boolean and cannot merge a mapping or a string into a
    list. This names the key instead.

    Args:
        tree: A config as DictConfig, dict or dataclass.
        schema: The dataclass the tree must fit (default ``Config``).
        prefix: Dotted path of ``tree`` (for the message).

    Raises:
        ValueError: Naming the unknown key, its value and the known keys at that level.
    """
    schema = schema or Config
    if is_dataclass(tree):
        return  # a dataclass has only its fields
    if isinstance(tree, DictConfig):
        tree = OmegaConf.to_container(tree, resolve=False)
    if not isinstance(tree, dict):
        return  # a wrong type is reported by the conversion
    known = {f.name: f for f in fields(schema)}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {prefix}{near[0]}?)" if near else ""
            _Checker.fail(name, value, f"a known key; {prefix.rstrip('.') or 'the config'} "
                                       f"has {', '.join(known)}{hint}")
        factory = known[key].default_factory
        default = factory() if callable(factory) else known[key].default
        if is_dataclass(default):
            check_keys(value, type(default), name + ".")
        elif isinstance(default, bool) and not isinstance(value, bool):
            _Checker.fail(name, value, "true or false")
        elif isinstance(default, list) and not isinstance(value, list | ListConfig):
            _Checker.fail(name, value, "a list")


def _conversion_error(exc: OmegaConfBaseException, tree: Any) -> ValueError:
    """A one-line ``config error`` for a value OmegaConf cannot convert to its field's type."""
    key = re.sub(r"\[\d+\]", "", str(getattr(exc, "full_key", "") or ""))
    default = flat_fields(Config()).get(key)
    value: Any = tree
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict | DictConfig) else None
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            list: "a list"}.get(type(default), "a value of the schema's type")
    if not key:
        return ValueError(f"config error: {one_line(exc)}")
    return ValueError(f"config error: {key}={value!r} is not allowed; expected {kind}")


def machine_memory() -> int:
    """Bytes of memory of this machine.

    The whole memory, not what is free now: the check must give the same answer in every
    worker of a sweep, whatever the other workers hold at that moment.
    """
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_estimate(cfg: Config) -> dict[str, int]:
    """Bytes one run needs, by what drives them (see ``BYTES_PER_FAMILY`` and the others).

    Returns:
        ``{"city.n_families": ..., "city.width": ..., "base": ...}``: families' share,
        the grid's share (cells, and cell rows per year when ``output.cells_in_areas``),
        and the fixed part.
    """
    c = cfg.city
    per_cell = BYTES_PER_CELL + (BYTES_PER_CELL_YEAR * (cfg.years + 1)
                                 if cfg.output.cells_in_areas else 0)
    return {"city.n_families": c.n_families * BYTES_PER_FAMILY,
            "city.width": c.width * c.height * per_cell, "base": BYTES_BASE}


def validate(cfg: Config | DictConfig | dict) -> Config:
    """Check every key of a whole config tree: types, ranges and cross-field rules.

    Every number must be finite and within the range given here (each range is commented
    where it is not evident from the key's docs; tests/test_config.py refuses NaN and inf
    for every float key, so a new key without a range fails there); unknown keys are
    refused; the sizes must fit the generator and this machine's memory
    (``memory_estimate``).

    Args:
        cfg: A config as dataclass, DictConfig or dict.

    Returns:
        The config as a typed ``Config``.

    Raises:
        ValueError: ``config error: <key>=<value> is not allowed; expected <rule>``.

    """
    check_keys(cfg)
    try:
        obj = to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _conversion_error(exc, cfg) from exc
    c = _Checker(obj)
    if obj.city.preset not in PRESETS:
        c.fail("city.preset", obj.city.preset, f"one of {list(PRESETS)}")
    _check_city_files(c, obj.city)
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
    # 10 m to 5 km cells: distances (km) enter the choice logits, where larger cells turn
    # every school and daycare beyond the nearest into an impossible choice.
    c.real("city.cell_size_m", 10.0, 5000.0)
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
    units = max(obj.city.n_lower_schools, obj.city.n_upper_schools, obj.city.n_daycares)
    if obj.city.n_families < FAMILIES_PER_UNIT * units:
        c.fail("city.n_families", obj.city.n_families,
               f"at least {FAMILIES_PER_UNIT} families per school and daycare "
               f"({FAMILIES_PER_UNIT * units} for {units} units of one kind)")

    b = "behaviour"
    dem = f"{b}.demography"
    c.share(f"{dem}.birth_prob")
    c.real(f"{dem}.birth_max_parent_age", 18, 60)
    c.real(f"{dem}.max_children", 1, 3)
    c.real(f"{dem}.arrival_ratio", 0.0, 3.0)
    c.share(f"{dem}.arrival_foreign_share")
    c.length(f"{dem}.outmig_logit", 3, N_SES)
    c.length(f"{dem}.children_probs", 3)
    c.share(f"{dem}.children_probs")
    c.sums_to_one(f"{dem}.children_probs")
    # Geometric decay of the youngest child's age: at 0.001 ages are uniform within 2%;
    # smaller values round 1 - decay to 1 and the truncated geometric draw is undefined.
    c.real(f"{dem}.youngest_decay", 0.001, 1.0)
    c.real(f"{dem}.arrival_youngest_decay", 0.001, 1.0)
    c.real(f"{dem}.sibling_gap_max", 1, 10)
    c.real(f"{dem}.parent_age_min", 15, 60)
    c.real(f"{dem}.parent_age_max", obj.behaviour.demography.parent_age_min, 70)
    # Parents are at least parent_age_min years old: a lower birth age means no births.
    if obj.behaviour.demography.birth_max_parent_age <= obj.behaviour.demography.parent_age_min:
        c.fail(f"{dem}.birth_max_parent_age", obj.behaviour.demography.birth_max_parent_age,
               f"above {dem}.parent_age_min = {obj.behaviour.demography.parent_age_min}")
    c.real(f"{dem}.outmig_logit", -20, 5)
    c.signed(f"{dem}.outmig_dissatisfaction", LOGIT)
    c.signed(f"{dem}.outmig_foreign", LOGIT)
    c.signed(f"{dem}.foreign_renewal_taste", LOGIT)
    c.real(f"{dem}.first_birth_rate", 0.0, 0.5)  # 0.5: a new family per two a year
    c.share(f"{dem}.first_birth_foreign_share")
    c.signed(f"{dem}.return_logit", LOGIT)
    c.signed(f"{dem}.return_school_start", LOGIT)

    p = f"{b}.preferences"
    c.positive_int(f"{p}.n_candidates", 256)
    c.real(f"{p}.n_local_candidates", 0, 256)
    c.real(f"{p}.local_radius_km", 0.0, 50.0, lo_open=True)
    # Satisfaction is x / x0 below the preferred share and falls to m_homog above it: x0
    # at 0 or 1 divides by zero; 0.01 keeps the slope finite.
    c.real(f"{p}.x0", 0.01, 0.99)
    for key in ("m_homog", "local_weight"):
        c.share(f"{p}.{key}")
    for key, n in (("w_comp_ses", N_SES), ("w_school", N_SES), ("w_amenity", N_SES),
                   ("budget", N_SES), ("w_comp_lang", N_LANG), ("tenure_cost", N_TENURE)):
        c.length(f"{p}.{key}", n)
    c.length(f"{p}.tenure_taste", N_SES, N_TENURE)
    c.real(f"{p}.budget", 0.01, 10.0)  # cost / budget: 0.01 keeps it finite
    c.real(f"{p}.tenure_cost", 0.0, 10.0)
    c.real(f"{p}.w_afford", 0.0, 1000.0)
    c.real(f"{p}.w_distance", 0.0, 100.0)
    c.real(f"{p}.social_max_ses", 0, N_SES - 1)
    for key in ("w_comp_ses", "w_comp_lang", "w_school", "w_amenity", "tenure_taste",
                "stay_bonus"):
        c.signed(f"{p}.{key}", LOGIT)

    m = f"{b}.mobility"
    for key, n in (("age_band", 3), ("tenure", N_TENURE), ("ses", N_SES), ("space", N_TENURE)):
        c.length(f"{m}.{key}", n)
    c.real(f"{m}.space", 0.1, 10.0)  # children / space: 0.1 keeps crowding finite
    for key in ("base_logit", "age_band", "youngest_age1", "tenure", "ses", "dissatisfaction",
                "crowding"):
        c.signed(f"{m}.{key}", LOGIT)

    d = f"{b}.daycare"
    c.length(f"{d}.join_prob", 6)
    c.share(f"{d}.join_prob")
    c.share(f"{d}.foreign_join_factor")
    c.positive_int(f"{d}.n_nearest", 64)
    c.length(f"{d}.w_reputation", N_SES)
    c.length(f"{d}.w_private", N_SES)
    c.real(f"{d}.w_distance", 0.0, 100.0)  # per km, as the school's and dwelling's
    for key in ("w_reputation", "w_private", "w_resources"):
        c.signed(f"{d}.{key}", LOGIT)
    c.real(f"{d}.rechoose_km", 0.0, 100.0)  # 100 km: nobody re-chooses

    s = f"{b}.school"
    c.flag(f"{s}.enabled")
    c.length(f"{s}.look_prob", N_SES)
    c.share(f"{s}.look_prob")
    c.length(f"{s}.info_mean", N_LANG)
    c.real(f"{s}.info_mean", 0.0, 1.0, lo_open=True)
    c.real(f"{s}.info_concentration", 0.0, 1000.0, lo_open=True)
    c.real(f"{s}.g7_look_factor", 0.0, 10.0)
    c.real(f"{s}.g7_distance_factor", 0.05, 10.0)
    c.positive_int(f"{s}.n_ranked", 16)
    c.real(f"{s}.max_km", 0.0, 1000.0, lo_open=True)
    for key in ("w_reputation", "w_composition", "w_distance", "w_emphasis", "look_reputation"):
        c.length(f"{s}.{key}", N_SES)
    c.real(f"{s}.w_distance", 0.0, 100.0)
    for key in ("w_reputation", "w_composition", "w_emphasis", "look_reputation",
                "local_bonus"):
        c.signed(f"{s}.{key}", LOGIT)
    c.real(f"{s}.aptitude_ses_corr", -1.0, 1.0)

    o = f"{b}.outcomes"
    c.length(f"{o}.ses_effect", N_SES)
    for key in ("ses_effect", "foreign_effect", "peer_effect", "turnover_effect"):
        c.signed(f"{o}.{key}", EFFECT)
    # Per +100% resources, applied to funding of a few per cent: Silliman's (2017) effects
    # read through achievement need tens of school years per unit (docs/studies.md).
    c.signed(f"{o}.resource_effect", RESOURCE_EFFECT)
    for key in ("adjustment", "turnover_base"):
        c.share(f"{o}.{key}")
    # Turnover is a yearly rate: its sensitivities are rates per unit share or resources.
    c.real(f"{o}.turnover_disadvantage", -1.0, 1.0)
    c.real(f"{o}.turnover_resources", -1.0, 1.0)
    c.real(f"{o}.noise_sd", 0.0, 10.0)

    t = f"{b}.transitions"
    for key in ("dropout_ses", "general_ses"):
        c.length(f"{t}.{key}", N_SES)
    for key in ("dropout_logit", "dropout_foreign", "dropout_achievement", "dropout_ses",
                "general_logit", "general_foreign", "general_achievement", "general_ses"):
        c.signed(f"{t}.{key}", LOGIT)

    r = f"{b}.reputation"
    c.flag(f"{r}.feedback")
    c.share(f"{r}.inertia")
    c.length(f"{r}.w_composition", N_LANG)
    c.signed(f"{r}.w_outcome", LOGIT)
    c.signed(f"{r}.w_composition", LOGIT)
    # Reputation divides by the scales: 0.01 keeps it finite.
    c.real(f"{r}.outcome_scale", 0.01, 100.0)
    c.real(f"{r}.composition_scale", 0.01, 100.0)

    for key in ("figures", "cells_in_areas", "progress"):
        c.flag(f"output.{key}")

    # The levers themselves are built and checked by the policy layer (``scenarios``).
    c.text("scenario.name")
    if not isinstance(obj.scenario.description, str):
        c.fail("scenario.description", obj.scenario.description, "a string")
    if not isinstance(obj.scenario.levers, list):
        c.fail("scenario.levers", obj.scenario.levers, "a list of levers")

    need = memory_estimate(obj)
    have = machine_memory()
    if sum(need.values()) > have:
        key = max((k for k in need if k != "base"), key=need.get)
        c.fail(key, c.get(key), f"a city this machine can hold: the run needs about "
               f"{sum(need.values()) / 2**30:.1f} GiB, this machine has {have / 2**30:.1f} GiB")
    # Nested lists may hold integers (``list[list[Any]]``): store floats, as flat lists do.
    bd, bp = obj.behaviour.demography, obj.behaviour.preferences
    bd.outmig_logit = [[float(v) for v in row] for row in bd.outmig_logit]
    bp.tenure_taste = [[float(v) for v in row] for row in bp.tenure_taste]
    return obj


def get_path(tree: dict, path: str) -> Any:
    """The value at a dotted path of a plain config dict; list items by index (``a.b.2``).

    Raises:
        ValueError: If a part of the path does not exist.
    """
    node: Any = tree
    for i, part in enumerate(path.split(".")):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            where = ".".join(path.split(".")[:i]) or "the config root"
            if isinstance(node, dict):
                holds = f"keys {', '.join(node)}"
            else:
                holds = f"indices 0..{len(node) - 1}" if isinstance(node, list) else "a value"
            raise ValueError(f"{path} does not exist: {part!r} is not in {where}, which holds "
                             f"{holds}")
    return node


def set_path(tree: dict, path: str, value: Any) -> None:
    """Set an existing dotted path of a plain config dict (see :func:`get_path`)."""
    parent, _, last = path.rpartition(".")
    node = get_path(tree, parent) if parent else tree
    get_path(tree, path)  # the key must exist: a typo is an error, not a new key
    node[int(last) if isinstance(node, list) else last] = value


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
