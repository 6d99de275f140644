"""Calibration moments: the targets file, its checks, and the extraction functions.

``calibration/targets.yaml`` lists the moments. Each names an observed value (``point``),
a range (``range``) or a bound (``above`` / ``below``, for qualitative findings turned
into inequalities with a margin), an uncertainty ``sd`` with a rationale, its source row in
``calibration/targets.csv``, and its simulated counterpart: an extraction function of this
module's registry (``statistic`` with its ``args``), the years it averages over and the
presets it applies to. A moment is added in the file alone.

``load_targets`` refuses, with one clear ``TargetsError`` naming the moment, before any
simulation: a moment without an extraction function or with an unknown one; a function
the outputs cannot serve (an unknown metric column, a year beyond the run, a preset the
model does not have, wrong arguments); a target outside the function's valid range; a
missing source key, a non-positive ``sd`` or a malformed entry.

Extraction functions read a run's tables (``Outputs``): ``metrics`` (one row a year),
``units``, ``areas`` and ``ages`` (``sim.metrics.YearRecorder``). Cohort moments (first
moves, leaving the city during childhood) are computed on synthetic cohorts: the period
flows by age of a settled city, pooled over the years, stand for a birth cohort's
(``YearRecorder.ages_frame``).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from calibration import studies
from calibration.registry import EXTRACTORS, Outputs, extractor, in_years, schools_in
from sim.indices import index_set
from sim.metrics import FLOW_KEYS

HERE = Path(__file__).resolve().parent
TARGETS_YAML = HERE / "targets.yaml"
TARGETS_CSV = HERE / "targets.csv"
KINDS = ("point", "range", "above", "below")
FIELDS = {"name", "kind", "observed", "sd", "rationale", "source", "statistic", "args",
          "years", "presets", "weight", "design"}
REQUIRED = FIELDS - {"args", "weight", "kind", "design"}


class TargetsError(ValueError):
    """A targets file entry that cannot be used."""


def metric_columns() -> frozenset[str]:
    """The columns of ``metrics.parquet``, by the naming scheme of ``sim.metrics``."""
    names = {"year", "n_families", "n_children", "outcome_gap_decile", "move_rate",
             "outmigration_rate", "outmigration_preschool_share", "daycare_participation",
             "policy_cost_eur", *FLOW_KEYS}
    idx = index_set(np.ones((2, 3)), group=0, other=2)
    for unit in ("res", "cell", "catchment", "school", "school_lower", "school_upper",
                 "daycare"):
        names |= {f"seg_{unit}_{dim}_{i}" for dim in ("ses", "lang") for i in idx}
    names |= {f"excess_school_{dim}_H{s}" for dim in ("ses", "lang") for s in ("", "_res")}
    for g in ("g1", "g7"):
        names |= {f"local_school_share_{g}", f"local_school_share_{g}_renewal"}
    names |= {f"move_rate_age{b}" for b in ("0_6", "7_12", "13_15")}
    names |= {f"move_rate_ses{k}" for k in range(3)}
    names |= {f"daycare_participation_lang{k}" for k in range(2)}
    names |= {f"daycare_participation_ses{k}" for k in range(3)}
    names |= {"daycare_participation_age1_2", "daycare_participation_age3_6"}
    names |= {"foreign_share_age1_6", "born_here_share_age0_6"}
    names |= {"g9_dropout_share", "g9_general_share"}
    names |= {f"g9_{w}_share_lang{k}" for w in ("dropout", "general") for k in range(2)}
    return frozenset(names)


def _districts(out: Outputs, years: tuple[int, int]) -> pd.DataFrame:
    a = in_years(out.areas, years)
    return a[a["kind"] == "district"]


def _pooled_ages(out: Outputs, years: tuple[int, int]) -> pd.DataFrame:
    return in_years(out.ages, years).groupby("age").sum()


# --------------------------------------------------------------------------- extractors
@extractor(valid=(-math.inf, math.inf), metric_args=("metric",))
def metric_mean(out: Outputs, years: tuple[int, int], metric: str) -> float:
    """Mean of a ``metrics`` column over the years."""
    return float(in_years(out.metrics, years)[metric].mean())


@extractor(valid=(-math.inf, math.inf), metric_args=("metric", "minus"))
def metric_difference(out: Outputs, years: tuple[int, int], metric: str, minus: str) -> float:
    """Mean of ``metric - minus`` over the years (e.g. renewal areas minus the city)."""
    m = in_years(out.metrics, years)
    return float((m[metric] - m[minus]).mean())


@extractor(valid=(0.0, math.inf), metric_args=("metric", "over"))
def metric_ratio(out: Outputs, years: tuple[int, int], metric: str, over: str) -> float:
    """Ratio of the means of two ``metrics`` columns over the years."""
    m = in_years(out.metrics, years)
    return float(m[metric].mean() / m[over].mean())


@extractor(valid=(-1.0, 1.0))
def renewal_gap_widening(out: Outputs, years: tuple[int, int]) -> float:
    """How much further the renewal areas' local share falls below the city's at grade 7.

    ``(g7 renewal - g7 city) - (g1 renewal - g1 city)``; negative when the gap is larger
    at grade 7.
    """
    m = in_years(out.metrics, years)
    g7 = m["local_school_share_g7_renewal"] - m["local_school_share_g7"]
    g1 = m["local_school_share_g1_renewal"] - m["local_school_share_g1"]
    return float((g7 - g1).mean())


@extractor()
def renewal_children_share(out: Outputs, years: tuple[int, int]) -> float:
    """Share of the city's children (0-15) living in the renewal districts."""
    d = _districts(out, years)
    kids = d[[f"children_ses{k}" for k in range(3)]].sum(axis=1)
    return float(kids[d["renewal"].astype(bool)].sum() / kids.sum())


@extractor()
def renewal_foreign_share(out: Outputs, years: tuple[int, int]) -> float:
    """Foreign-language share of the children (0-15) living in the renewal districts."""
    d = _districts(out, years)
    d = d[d["renewal"].astype(bool)]
    return float(d["children_lang1"].sum() / (d["children_lang0"] + d["children_lang1"]).sum())


@extractor()
def pupil_foreign_share(out: Outputs, years: tuple[int, int]) -> float:
    """Foreign-language share of all pupils."""
    s = schools_in(out, years)
    return float(s["enrol_lang1"].sum() / s["enrolled"].sum())


def _per_year(values: pd.Series, stat: str) -> float:
    if stat not in ("min", "max"):
        raise TargetsError(f"stat={stat!r}: expected min or max")
    return float(values.groupby(level=0).agg(stat).mean())


@extractor()
def school_foreign_share(out: Outputs, years: tuple[int, int], stat: str) -> float:
    """Lowest (``stat=min``) or highest (``max``) foreign-language share over schools."""
    s = schools_in(out, years)
    return _per_year((s["enrol_lang1"] / s["enrolled"]).set_axis(s["year"]), stat)


@extractor()
def district_foreign_share(out: Outputs, years: tuple[int, int], stat: str) -> float:
    """Lowest or highest foreign-language share of children over districts."""
    d = _districts(out, years)
    share = d["children_lang1"] / (d["children_lang0"] + d["children_lang1"]).clip(lower=1)
    return _per_year(share.set_axis(d["year"]), stat)


@extractor()
def districts_above_mean(out: Outputs, years: tuple[int, int]) -> float:
    """Share of districts whose children's foreign-language share exceeds the city's."""
    d = _districts(out, years).copy()
    d["tot"] = d["children_lang0"] + d["children_lang1"]
    city = d.groupby("year")[["children_lang1", "tot"]].transform("sum")
    above = d["children_lang1"] / d["tot"].clip(lower=1) > city["children_lang1"] / city["tot"]
    return float(above.groupby(d["year"]).mean().mean())


def _children_by_age_group(out: Outputs, years: tuple[int, int]) -> pd.DataFrame:
    """Children aged 0-6 and 7-15 living in the city, per year (columns ``0_6``, ``7_15``)."""
    d = _districts(out, years)
    total = d[[f"children_ses{k}" for k in range(3)]].sum(axis=1)
    school = d[[f"{g}_ses{k}" for g in ("age7_12", "age13_15") for k in range(3)]].sum(axis=1)
    return pd.DataFrame({"0_6": total - school, "7_15": school}).groupby(d["year"]).sum()


@extractor(valid=(0.0, math.inf), presets=("helsinki",))
def children_count(out: Outputs, years: tuple[int, int], ages: str) -> float:
    """Children aged ``0_6`` or ``7_15`` living in the city (Helsinki scale only)."""
    if ages not in ("0_6", "7_15"):
        raise TargetsError(f"ages={ages!r}: expected 0_6 or 7_15")
    return float(_children_by_age_group(out, years)[ages].mean())


@extractor(valid=(0.0, math.inf))
def young_children_ratio(out: Outputs, years: tuple[int, int]) -> float:
    """Children aged 0-6 per child aged 7-15 living in the city (the age structure)."""
    n = _children_by_age_group(out, years)
    return float((n["0_6"] / n["7_15"].clip(lower=1)).mean())


@extractor(valid=(0.0, math.inf), presets=("helsinki",))
def school_size_mean(out: Outputs, years: tuple[int, int]) -> float:
    """Mean pupils per school unit: all pupils over the lower- and upper-school units.

    The source's average is over Helsinki's comprehensive schools, 97 teaching grades 1-9
    (or 1-6) and 30 teaching only grades 7-9 (targets.csv, ``comprehensive_schools``); the
    model's units stand for those schools, so its pupils are divided by all its units.
    """
    s = schools_in(out, years)
    per_year = s.groupby("year").agg(pupils=("enrolled", "sum"), units=("enrolled", "size"))
    return float((per_year["pupils"] / per_year["units"]).mean())


@extractor()
def first_move_share(out: Outputs, years: tuple[int, int], lo: int, hi: int) -> float:
    """Share of first moves within the city made at ages ``lo``-``hi`` (synthetic cohort)."""
    a = _pooled_ages(out, years)["first_moves"]
    return float(a.loc[lo:hi].sum() / a.sum())


@extractor()
def childhood_leaving(out: Outputs, years: tuple[int, int]) -> float:
    """Probability that a child born in the city leaves it before age 16 (synthetic cohort).

    ``1 - prod_a (1 - q_a)`` over the yearly hazards ``q_a`` of a first leaving: children
    born here who leave at age ``a`` over those born here, in the city and never gone.
    """
    a = _pooled_ages(out, years)
    q = (a["left_born_here"] / a["born_here"].clip(lower=1)).to_numpy()
    return float(1.0 - np.prod(1.0 - q))


@extractor()
def return_share(out: Outputs, years: tuple[int, int]) -> float:
    """Share of the children born here who leave the city that come back (stationary).

    Born-here children returning over born-here children leaving for the first time, pooled
    over the years: in a settled city the yearly flows stand for one cohort's.
    """
    a = _pooled_ages(out, years)
    return float(a["returned_born_here"].sum() / max(a["left_born_here"].sum(), 1))


@extractor(valid=(0.0, math.inf))
def return_age_ratio(out: Outputs, years: tuple[int, int], lo: int, hi: int) -> float:
    """Returns of born-here children per year of age at ``lo``-``hi`` over those at 1-15.

    Above 1 when returns come "typically" at those ages: the mean per age inside the band
    over the mean per age at the other ages 1-15 (a child cannot return at 0).
    """
    r = _pooled_ages(out, years)["returned_born_here"].loc[1:15]
    inside = r.loc[lo:hi]
    rest = r.drop(inside.index)
    return float(inside.mean() / rest.mean()) if rest.sum() > 0 else math.nan


@extractor()
def leavers_not_low_share(out: Outputs, years: tuple[int, int], lo: int, hi: int) -> float:
    """Share of middle- and high-status children among leavers aged ``lo``-``hi``."""
    a = _pooled_ages(out, years).loc[lo:hi]
    left = a[[f"left_ses{k}" for k in range(3)]].sum()
    return float((left["left_ses1"] + left["left_ses2"]) / left.sum())


@extractor(valid=(0.0, math.inf))
def leave_rate_ratio_low(out: Outputs, years: tuple[int, int], lo: int, hi: int) -> float:
    """Leaving rate of low-status children aged ``lo``-``hi`` over that of the others."""
    a = _pooled_ages(out, years).loc[lo:hi].sum()
    low = a["left_ses0"] / max(a["children_ses0"], 1)
    rest = (a["left_ses1"] + a["left_ses2"]) / max(a["children_ses1"] + a["children_ses2"], 1)
    return float(low / rest) if rest > 0 else math.nan


@extractor(valid=(-1.0, 1.0))
def composition_trend(out: Outputs, years: tuple[int, int], group: str) -> float:
    """Change per decade of a group's share of children: ``ses0`` (low status) or ``lang1``.

    A least-squares slope over the years, times ten.
    """
    d = _districts(out, years)
    kind = group[:-1]
    if group not in ("ses0", "lang1"):
        raise TargetsError(f"group={group!r}: expected ses0 or lang1")
    cols = [f"children_{kind}{k}" for k in range(3 if kind == "ses" else 2)]
    g = d.groupby("year")[cols].sum()
    share = g[f"children_{group}"] / g.sum(axis=1)
    if len(share) < 2:
        return 0.0
    return float(np.polyfit(share.index.to_numpy(float), share.to_numpy(), 1)[0] * 10)


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class Moment:
    """One checked entry of the targets file."""

    name: str
    kind: str
    observed: float | tuple[float, float]
    sd: float
    rationale: str
    source: str
    statistic: str
    args: dict[str, Any]
    years: tuple[int, int]
    presets: tuple[str, ...]
    weight: float = 1.0
    design: studies.Design | None = None  # the study design whose run it reads

    def record(self) -> dict[str, Any]:
        """The moment as JSON-able data (a study folder's context); ``from_record`` reads it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Moment:
        """The moment ``record`` wrote, after a JSON round trip (lists back to tuples)."""
        design = d.get("design")
        return cls(**{**d, "years": tuple(d["years"]), "presets": tuple(d["presets"]),
                      "observed": (tuple(d["observed"]) if isinstance(d["observed"], list)
                                   else d["observed"]),
                      "design": (studies.Design(**{**design, "levers": tuple(design["levers"])})
                                 if design else None)})

    def simulate(self, out: Outputs) -> float:
        """The simulated counterpart on one run's outputs."""
        return EXTRACTORS[self.statistic].fn(out, self.years, **self.args)

    def deviation(self, value: float) -> float:
        """Signed distance of a simulated value from the target (0 inside a range/bound)."""
        if self.kind == "point":
            return value - self.observed
        if self.kind == "range":
            lo, hi = self.observed
            return value - lo if value < lo else (value - hi if value > hi else 0.0)
        if self.kind == "above":
            return min(value - self.observed, 0.0)
        return max(value - self.observed, 0.0)

    @property
    def observed_text(self) -> str:
        """The target as shown in tables (``0.85``, ``0.42-0.64``, ``> 0.25``)."""
        if self.kind == "range":
            return f"{self.observed[0]:g}-{self.observed[1]:g}"
        sign = {"point": "", "above": "> ", "below": "< "}[self.kind]
        return f"{sign}{self.observed:g}"


def source_keys(path: Path = TARGETS_CSV) -> set[str]:
    """The keys of ``calibration/targets.csv``."""
    with path.open(encoding="utf-8") as fh:
        return {row["key"] for row in csv.DictReader(fh)}


def _fail(where: str, msg: str) -> None:
    raise TargetsError(f"{where}: {msg}")


def check_moment(entry: Any, where: str, keys: set[str], horizon: int | None,
                 designs: dict[str, studies.Design] | None = None) -> Moment:
    """Check one entry of the targets file; returns it as a ``Moment``."""
    if not isinstance(entry, dict):
        _fail(where, "expected a mapping with name, observed, sd, ...")
    unknown = set(entry) - FIELDS
    missing = REQUIRED - set(entry)
    if "statistic" in missing:
        _fail(where, "names no extraction function (statistic); known: "
              + ", ".join(sorted(EXTRACTORS)))
    if unknown or missing:
        _fail(where, f"unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
    where = f"{where} ({entry['name']})"
    stat = entry["statistic"]
    if stat not in EXTRACTORS:
        _fail(where, f"statistic={stat!r} is no extraction function; known: "
              + ", ".join(sorted(EXTRACTORS)))
    ex = EXTRACTORS[stat]
    args = dict(entry.get("args") or {})
    if set(args) != set(ex.params):
        _fail(where, f"the outputs cannot serve {stat} with args {sorted(args)}: it takes "
              f"{list(ex.params)}")
    for a, allowed in ex.choices.items():
        if args[a] not in allowed:
            _fail(where, f"{a}={args[a]!r} is not an argument {stat} takes; expected one of "
                  f"{list(allowed)}")
    design = entry.get("design")
    designs = designs or {}
    if design is not None and design not in designs:
        _fail(where, f"design={design!r} is not a design of the file; known: "
              + (", ".join(sorted(designs)) or "none"))
    cols = metric_columns()
    for a in ex.metric_args:
        if args[a] not in cols:
            _fail(where, f"the outputs cannot serve {stat}: {a}={args[a]!r} is not a column "
                  "of metrics.parquet")
    presets = tuple(entry["presets"])
    if not presets or not set(presets) <= set(ex.presets):
        _fail(where, f"the outputs cannot serve {stat} on presets {list(presets)}; it "
              f"serves {list(ex.presets)}")
    years = entry["years"]
    if not (isinstance(years, list) and len(years) == 2 and all(
            isinstance(y, int) for y in years) and 0 <= years[0] <= years[1]):
        _fail(where, f"years={years!r}: expected [first, last] with 0 <= first <= last")
    if horizon is not None and years[1] > horizon:
        _fail(where, f"the outputs cannot serve years {years}: the run has {horizon} years")
    kind = entry.get("kind", "point")
    if kind not in KINDS:
        _fail(where, f"kind={kind!r}: expected one of {list(KINDS)}")
    obs = entry["observed"]
    values = obs if kind == "range" else [obs]
    if kind == "range" and not (isinstance(obs, list) and len(obs) == 2 and obs[0] <= obs[1]):
        _fail(where, f"observed={obs!r}: a range is [low, high]")
    lo, hi = ex.valid
    for v in values:
        if not isinstance(v, int | float) or not lo <= v <= hi:
            _fail(where, f"observed={obs!r} is outside the valid range [{lo}, {hi}] of {stat}")
    sd = entry["sd"]
    if not isinstance(sd, int | float) or not sd > 0:
        _fail(where, f"sd={sd!r}: expected a positive number")
    weight = entry.get("weight", 1.0)
    if not isinstance(weight, int | float) or weight < 0:
        _fail(where, f"weight={weight!r}: expected a number >= 0")
    if entry["source"] not in keys:
        _fail(where, f"source={entry['source']!r} is not a key of {TARGETS_CSV.name}")
    if not str(entry["rationale"]).strip():
        _fail(where, "rationale is empty: say why this sd")
    return Moment(name=entry["name"], kind=kind,
                  observed=tuple(obs) if kind == "range" else float(obs), sd=float(sd),
                  rationale=str(entry["rationale"]), source=entry["source"], statistic=stat,
                  args=args, years=(years[0], years[1]), presets=presets,
                  weight=float(weight),
                  design=None if design is None else designs[design])


def load_targets(path: Path = TARGETS_YAML, preset: str | None = None,
                 horizon: int | None = None) -> list[Moment]:
    """Read and check the targets file; the moments of ``preset`` (all if ``None``).

    Args:
        path: The targets file.
        preset: Keep the moments that apply to this preset.
        horizon: Years of the runs that will serve the moments (checked if given).

    Raises:
        TargetsError: The first entry that cannot be used, with the reason.
    """
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TargetsError(f"{path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("moments"), list):
        raise TargetsError(f"{path}: expected a mapping with a list 'moments'")
    keys = source_keys()
    try:
        designs = studies.check_designs(doc.get("designs"), Path(path).name, keys)
    except studies.DesignError as exc:
        raise TargetsError(str(exc)) from exc
    moments, seen = [], set()
    for k, entry in enumerate(doc["moments"]):
        m = check_moment(entry, f"{Path(path).name} moment {k + 1}", keys, horizon, designs)
        if m.name in seen:
            _fail(f"{Path(path).name} moment {k + 1}", f"name {m.name!r} appears twice")
        seen.add(m.name)
        moments.append(m)
    return [m for m in moments if preset is None or preset in m.presets]


def horizon_of(moments: list[Moment]) -> int:
    """The last year any of the moments reads."""
    return max(m.years[1] for m in moments)
