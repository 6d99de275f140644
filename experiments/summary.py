"""The comparison report's rules: which cells are clear, sizes people use, the summary text.

Everything the report says in words is generated here from the numbers, by the rules below
(documented for readers in ``docs/report.md``); nothing is written by hand.

* **Cells.** The report's table has one cell per scenario (other than the baseline), metric
  of ``REPORTED`` and horizon. Each cell's p-value is the two-sided paired t-test of the
  replicate differences (``experiments.compare.paired_effects``).
* **Clear.** A cell is *clear* when its Benjamini-Hochberg adjusted p-value (q-value) over
  all the report's cells is at most ``FDR`` (5%): among the cells called clear, at most
  about one in twenty is expected to be chance, however many cells the table has. Cells
  without an interval (fewer than two replicate pairs) are not counted.
* **Direction.** A clear cell is *better* or *worse* by the city's goal for that metric
  (``METRICS``: lower segregation, a smaller learning gap, more pupils at their local school,
  fewer families leaving).
* **Over time.** A metric whose change is clear at an earlier horizon but not at the last one
  *fades*; one that is clear at two horizons with opposite signs *reverses*.
* **Sizes.** Shares in percentages and percentage points; the learning gap in school years
  and as a share of the baseline gap; families leaving as families a year; a Theil index
  change as the share of the way from the baseline to a fully mixed city (H = 0), and for
  school segregation by status also as low-status pupils: the dissimilarity index D is the
  share of low-status pupils who would have to change school for every school to have the
  city's mix, so a change of D times the low-status pupils is the change in that number.
* **Cost.** The scenario's mean yearly cost over years 1 to the horizon; for a clear
  improvement also that cost per unit of effect.
* **How sure.** Where a scenario shows no clear change, the summary gives the smallest
  changes its replicates could have shown (the half-width of the 95% interval).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.i18n import Text


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "translate later")
    """Mark ``message`` for the catalogue; it is translated where it is shown."""
    return message


# False-discovery rate over the report's cells: the usual 5% (Benjamini & Hochberg 1995).
FDR = 0.05


@dataclass(frozen=True)
class Metric:
    """How the report names and sizes one metric."""

    label: str
    kind: str  # H (a Theil index), share, years (school years), eur
    goal: int  # -1: lower is better, 1: higher is better, 0: neither


METRICS: dict[str, Metric] = {
    "outcome_gap_decile": Metric(N_("Learning gap between the top and bottom tenth of schools"),
                                 "years", -1),
    "local_school_share_g1_renewal": Metric(
        N_("First-graders in renewal areas at their local school"), "share", 1),
    "outmigration_rate": Metric(N_("Families leaving the city each year"), "share", -1),
    "seg_school_ses_H": Metric(N_("School segregation by family status"), "H", -1),
    "seg_school_lang_H": Metric(N_("School segregation by language"), "H", -1),
    "seg_res_ses_H": Metric(N_("Residential segregation by family status"), "H", -1),
    "seg_res_lang_H": Metric(N_("Residential segregation by language"), "H", -1),
    "seg_daycare_ses_H": Metric(N_("Daycare segregation by family status"), "H", -1),
    "excess_school_ses_H": Metric(N_("Excess school segregation (schools vs their areas)"),
                                  "H", -1),
    "local_school_share_g1": Metric(N_("First-graders at their local school"), "share", 1),
    "local_school_share_g7": Metric(N_("Seventh-graders at their local school"), "share", 1),
    "local_school_share_g7_renewal": Metric(
        N_("Seventh-graders in renewal areas at their local school"), "share", 1),
    "move_rate": Metric(N_("Families moving within the city each year"), "share", 0),
    "policy_cost_eur": Metric(N_("Policy cost"), "eur", 0),
}
HEADLINE = ("outcome_gap_decile", "local_school_share_g1_renewal", "outmigration_rate")
INDICES = ("seg_school_ses_H", "seg_school_lang_H", "seg_res_ses_H", "excess_school_ses_H")
REPORTED = HEADLINE + INDICES  # the report's table, headline outcomes first


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN entries stay NaN, not counted.

    ``q_(i) = min_{j >= i} p_(j) m / j`` over the m sorted p-values, capped at 1.
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def report_cells(effects: pd.DataFrame, hs: list[int],
                 metrics: tuple[str, ...] = REPORTED) -> pd.DataFrame:
    """The report's cells with their q-values and verdicts.

    Args:
        effects: Paired effects with ``p_value`` (``experiments.compare.paired_effects``).
        hs: The horizons the report shows.
        metrics: The metrics of the table.

    Returns:
        One row per scenario, metric and horizon (scenario order kept, metrics in
        ``metrics`` order) with ``q_value``, ``clear`` and ``verdict``: ``better``,
        ``worse``, ``higher``, ``lower`` (clear changes of a metric without a goal),
        ``none`` (no clear change) or ``no_interval``.
    """
    cells = effects[effects["metric"].isin(metrics) & effects["year"].isin(hs)].copy()
    scen = {s: k for k, s in enumerate(dict.fromkeys(effects["scenario"]))}
    cells["_s"] = cells["scenario"].map(scen)
    cells["_m"] = cells["metric"].map({m: k for k, m in enumerate(metrics)})
    cells = cells.sort_values(["_s", "_m", "year"], kind="stable").drop(columns=["_s", "_m"])
    cells = cells.reset_index(drop=True)
    cells["q_value"] = bh_adjust(cells["p_value"].to_numpy())
    cells["clear"] = cells["q_value"] <= FDR
    goal = cells["metric"].map(lambda m: METRICS[m].goal)
    up = cells["mean_diff"] > 0
    verdict = np.where(goal == 0, np.where(up, "higher", "lower"),
                       np.where(up == (goal > 0), "better", "worse"))
    cells["verdict"] = np.where(cells["p_value"].isna(), "no_interval",
                                np.where(cells["clear"], verdict, "none"))
    return cells


def horizon_pattern(cells: pd.DataFrame) -> str:
    """How one metric's change of one scenario behaves over the horizons (cells by year).

    ``steady`` (clear at the last horizon, and never clear the other way), ``fades`` (clear
    at an earlier horizon, not at the last), ``reverses`` (clear at two horizons with
    opposite signs) or ``none`` (clear nowhere).
    """
    clear = cells[cells["clear"]]
    if clear.empty:
        return "none"
    if (clear["mean_diff"] > 0).nunique() > 1:
        return "reverses"
    return "steady" if bool(cells["clear"].iloc[-1]) else "fades"


@dataclass
class Context:
    """What the sizes need besides the cell: baseline levels of the same run."""

    raw: pd.DataFrame  # per-replicate metrics (``replicates.parquet``)
    effects: pd.DataFrame

    def baseline(self, metric: str, year: int) -> float:
        """Baseline mean of ``metric`` at ``year`` (NaN if absent)."""
        if metric not in self.raw.columns:
            return float("nan")
        b = self.raw[(self.raw["scenario"] == "baseline") & (self.raw["year"] == year)]
        return float(b[metric].mean())

    def diff(self, scenario: str, metric: str, year: int) -> float:
        """Mean paired difference of ``metric`` (NaN if it is not in the effects)."""
        e = self.effects[(self.effects["scenario"] == scenario)
                         & (self.effects["metric"] == metric) & (self.effects["year"] == year)]
        return float(e["mean_diff"].iloc[0]) if len(e) else float("nan")

    def yearly_cost(self, scenario: str, year: int) -> float:
        """Mean yearly policy cost over years 1..``year`` (replicate mean)."""
        s = self.raw[(self.raw["scenario"] == scenario) & self.raw["year"].between(1, year)]
        if s.empty or "policy_cost_eur" not in s.columns:
            return 0.0
        return float(s.groupby("replicate")["policy_cost_eur"].mean().mean())


def size(cell: pd.Series, ctx: Context, t: Text) -> tuple[str, str]:
    """A cell's change in the unit people use, and its translation (may be empty).

    Returns:
        ``(main, translation)``, e.g. ``("-0.12 school years", "5.0 % of the baseline gap")``.
    """
    _ = t.gettext
    metric, d, year = cell["metric"], float(cell["mean_diff"]), int(cell["year"])
    base = ctx.baseline(metric, year)
    kind = METRICS[metric].kind
    if kind == "share":
        main = t.pp(d)
        extra = _("baseline {level}").format(level=t.pct(base))
        if metric == "outmigration_rate":
            families = d * ctx.baseline("n_families", year)
            extra += "; " + _("{n} families a year").format(n=t.num(families, 0, sign=True))
        return main, extra
    if kind == "years":
        main = f"{t.num(d, 2, sign=True)} {_('school years')}"
        return main, _("{share} of the baseline gap").format(share=t.pct(d / base, sign=True))
    if kind == "eur":
        return t.meur(d), ""
    main = f"{t.num(d, 3, sign=True)} (H)"
    if not base > 0:
        return main, ""
    share = t.pct(abs(d) / base)
    extra = (_("{share} of the way to a fully mixed city") if d < 0 else
             _("{share} further from a fully mixed city")).format(share=share)
    if metric == "seg_school_ses_H":
        pupils = ctx.diff(cell["scenario"], "seg_school_ses_D", year) * ctx.baseline(
            "pupils_ses0", year)
        if np.isfinite(pupils):
            extra += "; " + (_("by the dissimilarity index, {n} fewer low-status pupils would "
                               "need to change school for an even mix") if pupils < 0 else
                             _("by the dissimilarity index, {n} more low-status pupils would "
                               "need to change school for an even mix")).format(
                n=t.num(abs(pupils), 0))
    return main, extra


def unit_cost(cell: pd.Series, ctx: Context, t: Text) -> str:
    """Yearly cost per unit of a clear improvement (empty if the scenario costs nothing)."""
    _ = t.gettext
    cost = ctx.yearly_cost(cell["scenario"], int(cell["year"]))
    d = abs(float(cell["mean_diff"]))
    if cost <= 0 or d == 0:
        return ""
    kind = METRICS[cell["metric"]].kind
    if kind == "share":
        if cell["metric"] == "outmigration_rate":
            fam = d * ctx.baseline("n_families", int(cell["year"]))
            return _("{cost} a year per family fewer leaving").format(
                cost=t.meur(cost / fam, 3)) if fam > 0 else ""
        return _("{cost} a year per percentage point").format(cost=t.meur(cost / (100 * d)))
    if kind == "years":
        return _("{cost} a year per 0.1 school years").format(cost=t.meur(cost / (10 * d)))
    base = ctx.baseline(cell["metric"], int(cell["year"]))
    if not base > 0:
        return ""
    return _("{cost} a year per 1 % of the way to a fully mixed city").format(
        cost=t.meur(cost / (100 * d / base)))


def scenario_summary(name: str, cells: pd.DataFrame, ctx: Context, t: Text,
                     label: Callable[[str], str]) -> list[str]:
    """Sentences on one scenario: what changes clearly, how much, at what cost, how sure.

    Args:
        name: The scenario.
        cells: The report's cells of this scenario (``report_cells``).
        ctx: Baseline levels and costs.
        t: The reader's language.
        label: The metric's plain name in that language.
    """
    _ = t.gettext
    hs = sorted(cells["year"].unique())
    last = hs[-1]
    cost = ctx.yearly_cost(name, last)
    lines = []
    for metric, mc in cells.groupby("metric", sort=False):
        mc = mc.sort_values("year")
        pattern = horizon_pattern(mc)
        if pattern == "none":
            continue
        at_last = mc.iloc[-1]
        clear = mc[mc["clear"]]
        word = {"better": _("better"), "worse": _("worse"), "higher": _("higher"),
                "lower": _("lower")}
        if pattern == "steady":
            main, extra = size(at_last, ctx, t)
            years = _(" and ").join(str(int(y)) for y in clear["year"])
            text = _("{metric}: {verdict}, {main} ({extra}) after {years} years.").format(
                metric=label(metric), verdict=word[at_last["verdict"]], main=main,
                extra=extra, years=years)
            if at_last["verdict"] == "better":
                per = unit_cost(at_last, ctx, t)
                if per:
                    text += " " + _("Cost: {per}.").format(per=per)
        elif pattern == "fades":
            first = clear.iloc[0]
            main, extra = size(first, ctx, t)
            text = _("{metric}: {verdict}, {main} ({extra}) after {year} years, but the change "
                     "fades: no clear change after {last} years.").format(
                metric=label(metric), verdict=word[first["verdict"]], main=main, extra=extra,
                year=int(first["year"]), last=last)
        else:
            a, b = clear.iloc[0], clear.iloc[-1]
            text = _("{metric}: the change reverses, {first} after {y1} years but {second} "
                     "after {y2} years.").format(
                metric=label(metric), first=size(a, ctx, t)[0], y1=int(a["year"]),
                second=size(b, ctx, t)[0], y2=int(b["year"]))
        lines.append(text)
    cost_text = (_("It costs {cost} a year on average.").format(cost=t.meur(cost)) if cost > 0
                 else _("It costs nothing in the model's ledger."))
    n_clear = int(cells.loc[cells["year"] == last, "clear"].sum())
    n_metrics = cells["metric"].nunique()
    sure = how_sure(cells[cells["year"] == last], ctx, t, label)
    if not lines:
        lead = _("{name}: no clear change in any of the {n} indicators after {years} years."
                 ).format(name=name, n=n_metrics, years=_(" and ").join(str(int(h)) for h in hs))
        return [f"{lead} {cost_text}", *([sure] if sure else [])]
    if n_clear:
        lead = t.ngettext("{name}: clearly changes {k} of {n} indicators after {years} years.",
                          "{name}: clearly changes {k} of {n} indicators after {years} years.",
                          n_clear).format(name=name, k=n_clear, n=n_metrics, years=last)
    else:  # changes that faded or reversed before the last horizon
        lead = _("{name}: no indicator is clearly changed after {years} years.").format(
            name=name, years=last)
    return [f"{lead} {cost_text}", *lines, *([sure] if sure else [])]


def how_sure(last: pd.DataFrame, ctx: Context, t: Text, label: Callable[[str], str]) -> str:
    """The smallest changes the replicates could show: 95% half-widths of two headline cells."""
    _ = t.gettext
    parts = []
    for metric in ("outcome_gap_decile", "seg_school_ses_H"):
        c = last[last["metric"] == metric]
        if c.empty or pd.isna(c["ci_high"].iloc[0]):
            continue
        half = float(c["ci_high"].iloc[0] - c["ci_low"].iloc[0]) / 2
        unit = (f"{t.num(half, 2)} {_('school years')}" if metric == "outcome_gap_decile"
                else f"{t.num(half, 3)} (H)")
        parts.append(f"{label(metric)} \u00b1{unit}")
    if not parts:
        return ""
    return _("With these replicates, smaller changes than these would not show: {parts}."
             ).format(parts="; ".join(parts))


def summary(cells: pd.DataFrame, ctx: Context, t: Text,
            label: Callable[[str], str]) -> tuple[str, list[list[str]]]:
    """The report's bottom line and the sentences per scenario.

    Returns:
        ``(lead, per_scenario)``: one sentence over all scenarios, then each scenario's
        sentences (``scenario_summary``).
    """
    _ = t.gettext
    per = []
    changed = []
    for name, sc in cells.groupby("scenario", sort=False):
        per.append(scenario_summary(name, sc, ctx, t, label))
        if sc["clear"].any():
            changed.append(name)
    n = cells["scenario"].nunique()
    if n == 0:
        lead = _("Only the baseline was run: there is nothing to compare it with.")
    elif changed:
        lead = t.ngettext("{k} of {n} scenarios clearly changes at least one indicator: "
                          "{names}.", "{k} of {n} scenarios clearly change at least one "
                          "indicator: {names}.", len(changed)).format(
            k=len(changed), n=n, names=", ".join(changed))
    else:
        lead = t.ngettext("The scenario changes no indicator clearly.",
                          "None of the {n} scenarios changes any indicator clearly.",
                          n).format(n=n)
    return lead, per
