"""Published studies replicated inside the model: their designs and their estimators.

A study's estimate becomes a calibration moment when the model's simulated register is put
through the study's own design and estimator (docs/studies.md). A *design* (``designs:`` in
``calibration/targets.yaml``) is the run a study needs besides the plain settled decade: for
Silliman (2017), the old area-based "positive discrimination" funding switched on in a given
year. A moment names its design (``design: <name>``) and is computed on that run's tables;
moments without one read the plain run. Every design run of a seed starts from the plain
run's settled state (the same checkpoint), so a design differs from the plain run only by
its levers, with common random numbers.

A design's levers are scenario-file lever specs (``conf/scenario/*.yaml``). They are built by
the caller: ``experiments.calibrate`` passes ``scenarios.build_levers``, since the calibration
layer does not import the policy layer.

Estimators (extraction functions of ``calibration.registry``):

* ``silliman_did``: Silliman (2017, VATT Working Paper 91) estimates the effect of the
  funding on grade-9 leavers' transitions by differences in differences: funded schools
  against the others, cohorts before against cohorts after the funding began, separately for
  native and immigrant-background pupils. Here: the pupil-weighted 2 x 2 difference in
  differences of a transition share (``dropout``: no upper-secondary education;
  ``general``: general upper secondary) of the upper schools funded at the first allocation
  (``start``, the lever's ``start_year``) against those that were not, the years up to
  ``start`` against the years after it. It equals the OLS coefficient of treated x post in a
  pupil-level linear probability model with treated and post dummies, the study's
  specification without its covariates.
* ``bv_net_moves`` (and ``bv_age_gap``, ``bv_flow_ratio``): Bernelius & Vilkama (2019,
  Urban Studies 56(15); Kvartti 3/2019) follow the moves of families with children between
  Helsinki's school catchment areas in 2005-2014, the catchments classified by the income
  and education level of their residents, and report the net flows of Finnish-speaking
  children under school age and of school age by class. Here: the lower-school catchments
  ranked by the low-status share of their families in the year before the sample, the
  quarter with the highest share (``low``, the lowest status) and the quarter with the
  lowest (``high``); per class, the children of an age band and language group moving in
  within the city minus those moving out, over the sample years, per child of that group
  living there (a yearly net rate; ``areas`` columns ``net_moves_*``).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.registry import Outputs, extractor, in_years
from sim import checkpoint
from sim.config import Config
from sim.model import SegregationModel
from sim.surface import Lever

DESIGN_FIELDS = {"description", "levers", "source"}
GROUPS = {"native": 0, "foreign": 1}
TRANSITIONS = ("dropout", "general")
# Age bands of the catchment flows: the areas table's bands that make each one up.
FLOW_AGES = {"0_6": ("0_6",), "7_12": ("7_12",), "7_15": ("7_12", "13_15")}
QUARTERS = ("low", "high")  # the quarter of catchments of the lowest / highest status
# The extraction functions that are published studies' estimators (``experiments.replicate``).
ESTIMATORS = ("silliman_did", "bv_net_moves", "bv_age_gap", "bv_flow_ratio")

BuildLevers = Callable[[list, str], list[Lever]]


class DesignError(ValueError):
    """A design of the targets file that cannot be used."""


@dataclass(frozen=True)
class Design:
    """A study's run: the levers it switches on (scenario-file specs) and its source."""

    name: str
    description: str
    levers: tuple[dict[str, Any], ...]
    source: str


def check_designs(doc: Any, where: str, keys: set[str]) -> dict[str, Design]:
    """Check the ``designs`` mapping of the targets file.

    Args:
        doc: The ``designs`` entry (``None`` if absent).
        where: The file's name, for messages.
        keys: The source keys of ``targets.csv``.

    Raises:
        DesignError: The first design that cannot be used, with the reason.
    """
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise DesignError(f"{where}: designs must be a mapping of name to design")
    out = {}
    for name, entry in doc.items():
        at = f"{where} design {name}"
        if not isinstance(entry, dict) or set(entry) != DESIGN_FIELDS:
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise DesignError(f"{at}: expected the fields {sorted(DESIGN_FIELDS)}, got {got}")
        levers = entry["levers"]
        if not (isinstance(levers, list) and levers
                and all(isinstance(x, dict) and "lever" in x for x in levers)):
            raise DesignError(f"{at}: levers must be a non-empty list of lever specs, "
                              "each a mapping such as {lever: tp_funding, budget_eur: 2.5e6}")
        if entry["source"] not in keys:
            raise DesignError(f"{at}: source={entry['source']!r} is not a key of targets.csv")
        out[name] = Design(name, str(entry["description"]), tuple(dict(x) for x in levers),
                           entry["source"])
    return out


def simulate(cfg: Config, designs: Mapping[str, Design], build_levers: BuildLevers | None,
             anchor: Config | None = None) -> tuple[dict[str | None, Outputs], int]:
    """The tables of the plain run (key ``None``) and of each design's run of ``cfg``.

    Every run starts from the same settled state: ``cfg``'s own, or, with ``anchor``, the
    state re-settled warm from the anchor's (``sim.settle``). The anchor's state is kept in
    ``cfg.checkpoint_dir``; the candidate's own is kept only while its designs run.

    Args:
        cfg: The candidate's config, with its seed.
        designs: The designs the moments need.
        build_levers: Builds levers from specs (``scenarios.build_levers``); needed if any
            design is.
        anchor: A config of the same city and seed to settle warm from (``None``: cold).

    Returns:
        The tables by design, and the years the state was re-settled (0: cold).

    Raises:
        ValueError: Designs are needed and no ``build_levers`` is given.
    """
    if designs and build_levers is None:
        raise ValueError(f"the moments need the study designs {sorted(designs)}: pass "
                         "build_levers (experiments.calibrate passes scenarios.build_levers)")
    out: dict[str | None, Outputs] = {}
    with tempfile.TemporaryDirectory(prefix="designs-") as tmp:
        # Cold candidates' states and warm ones' live in the temporary folder; the anchor's
        # state in the checkpoint folder, where the next candidate finds it.
        folder = (cfg.checkpoint_dir or tmp) if anchor is not None else tmp
        resettled = 0
        for name in (None, *sorted(designs)):
            levers = [] if name is None else build_levers(list(designs[name].levers),
                                                          f"design {name}")
            model = SegregationModel(cfg, levers=levers, checkpoints=folder, anchor=anchor,
                                     keep_warm=bool(designs))
            if name is None:
                resettled = model.resettled_years
            model.run()
            out[name] = Outputs.from_model(model)
        if anchor is not None and designs:
            checkpoint.path_for(cfg, folder, anchor).unlink(missing_ok=True)
    return out, resettled


def check_levers(designs: Mapping[str, Design], build_levers: BuildLevers) -> None:
    """Build every design's levers once, so a bad spec is refused before any run."""
    for name, d in designs.items():
        build_levers(list(d.levers), f"design {name}")


# --------------------------------------------------------------------------- estimators
def did_2x2(rate: Callable[[np.ndarray, np.ndarray], float], treated: np.ndarray,
            post: np.ndarray) -> float:
    """``(T post - T pre) - (C post - C pre)`` of ``rate(rows_of_treated, rows_of_post)``."""
    return (rate(treated, post) - rate(treated, ~post)) - (rate(~treated, post)
                                                          - rate(~treated, ~post))


@extractor(valid=(-1.0, 1.0), choices={"outcome": TRANSITIONS, "group": tuple(GROUPS)})
def silliman_did(out: Outputs, years: tuple[int, int], outcome: str, group: str,
                 start: int) -> float:
    """Silliman's (2017) difference in differences of a grade-9 transition share.

    Args:
        out: The design run's tables.
        years: First and last cohort (year) of the sample.
        outcome: ``dropout`` or ``general``.
        group: ``native`` or ``foreign`` (home language).
        start: The year of the first funding allocation: the last pre-period year.

    Returns:
        The estimate in shares (-0.03 is 3 percentage points less); NaN if a cell of the
        2 x 2 table has no pupil.
    """
    u = in_years(out.units, years)
    u = u[u["kind"] == "school_upper"]
    first = u[(u["year"] == start) & (u["funding_eur"] > 0)]["index"]
    treated = u["index"].isin(first).to_numpy()
    post = (u["year"] > start).to_numpy()
    k = GROUPS[group]
    num = u[f"g9_{outcome}_lang{k}"].to_numpy(float)
    den = u[f"g9_leavers_lang{k}"].to_numpy(float)

    def rate(a: np.ndarray, b: np.ndarray) -> float:
        n = den[a & b].sum()
        return num[a & b].sum() / n if n > 0 else float("nan")

    return float(did_2x2(rate, treated, post))


def silliman_effect(plain: Outputs, design: Outputs, years: tuple[int, int], outcome: str,
                    group: str, start: int) -> float:
    """The design's true effect on its funded schools: the design run minus its twin.

    The pupil-weighted transition share of the schools funded at ``start``, over the years
    after it, in the design run minus the same schools and years in the plain run (same
    seed and settled state): the effect on the treated that the difference in differences
    estimates.
    """
    k = GROUPS[group]
    d = in_years(design.units, years)
    first = d[(d["kind"] == "school_upper") & (d["year"] == start)
              & (d["funding_eur"] > 0)]["index"]
    shares = []
    for out in (design, plain):
        u = in_years(out.units, years)
        u = u[(u["kind"] == "school_upper") & (u["year"] > start) & u["index"].isin(first)]
        n = u[f"g9_leavers_lang{k}"].sum()
        shares.append(u[f"g9_{outcome}_lang{k}"].sum() / n if n > 0 else float("nan"))
    return float(shares[0] - shares[1])


def catchment_quarter(out: Outputs, years: tuple[int, int], quarter: str) -> np.ndarray:
    """Ids of the lower-school catchments in the ``low`` or ``high`` status quarter.

    Ranked by the low-status share of their families in the year before the sample (the
    first sample year if the run has none before it), ties by id; a quarter is a quarter of
    the catchments with families, rounded, at least one.
    """
    a = out.areas[out.areas["kind"] == "catchment_lower"]
    first = years[0] - 1 if (a["year"] == years[0] - 1).any() else years[0]
    a = a[a["year"] == first]
    fam = a[[f"families_ses{k}" for k in range(3)]].sum(axis=1)
    share = (a["families_ses0"] / fam)[fam > 0]
    ids = a.loc[share.index, "area_id"].to_numpy()
    order = np.lexsort((ids, -share.to_numpy() if quarter == "low" else share.to_numpy()))
    return ids[order[:max(1, round(len(ids) / 4))]]


def _net_rate(out: Outputs, years: tuple[int, int], ages: str, group: str,
              quarter: str) -> float:
    k = GROUPS[group]
    a = in_years(out.areas, years)
    a = a[(a["kind"] == "catchment_lower")
          & a["area_id"].isin(catchment_quarter(out, years, quarter))]
    net = sum(a[f"net_moves_age{b}_lang{k}"].sum() for b in FLOW_AGES[ages])
    school = a[f"age7_12_lang{k}"] + a[f"age13_15_lang{k}"]
    stock = {"0_6": a[f"children_lang{k}"] - school, "7_12": a[f"age7_12_lang{k}"],
             "7_15": school}[ages].sum()
    return float(net / stock) if stock > 0 else float("nan")


FLOW_CHOICES = {"ages": tuple(FLOW_AGES), "group": tuple(GROUPS), "quarter": QUARTERS}


@extractor(valid=(-1.0, 1.0), choices=FLOW_CHOICES)
def bv_net_moves(out: Outputs, years: tuple[int, int], ages: str, group: str,
                 quarter: str) -> float:
    """Bernelius & Vilkama's (2019) net flow into a status quarter of catchments.

    Args:
        out: The run's tables.
        years: First and last year of the sample.
        ages: ``0_6`` (under school age), ``7_12`` or ``7_15`` (school age).
        group: ``native`` or ``foreign`` (home language of the family).
        quarter: ``low`` or ``high`` (``catchment_quarter``).

    Returns:
        Children of the group moving in within the city minus those moving out, per child
        of the group living in the quarter and year (-0.01: a net loss of 1% a year); NaN
        if no such child lives there.
    """
    return _net_rate(out, years, ages, group, quarter)


@extractor(valid=(-2.0, 2.0), choices={"school": ("7_12", "7_15"), "group": tuple(GROUPS),
                                       "quarter": QUARTERS})
def bv_age_gap(out: Outputs, years: tuple[int, int], school: str, group: str,
               quarter: str) -> float:
    """Net rate of children under school age minus that of school age, one quarter.

    ``school`` is the school-age band (``7_12``: the lower school's pupils). Negative when
    the quarter loses its young children faster than its pupils.
    """
    return (_net_rate(out, years, "0_6", group, quarter)
            - _net_rate(out, years, school, group, quarter))


@extractor(valid=(0.0, math.inf), choices={"ages": tuple(FLOW_AGES), "group": tuple(GROUPS)})
def bv_flow_ratio(out: Outputs, years: tuple[int, int], ages: str, group: str) -> float:
    """Size of the high quarter's net rate over the low quarter's, ``|high| / |low|``.

    Below 1 when the flows of the advantaged catchments are the smaller; NaN if the low
    quarter's net rate is 0.
    """
    low = abs(_net_rate(out, years, ages, group, "low"))
    high = abs(_net_rate(out, years, ages, group, "high"))
    return float(high / low) if low > 0 else float("nan")
