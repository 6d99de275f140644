"""Self-contained HTML report of a scenario comparison, written for non-modellers.

One file, PNG figures embedded as base64, in Finnish, Swedish or English
(``experiments.i18n``): first a summary generated from the numbers by the rules of
``experiments.summary`` with how far to trust it (``experiments.trust``), then a table of
effects at the 10- and 20-year horizons with costs (headline outcomes first, sizes in the
units people use), time series with replicate bands, maps of the change in where families
of each status live with the districts that change most, and catchment maps before and after
for catchment scenarios.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from experiments.front_report import front_section  # noqa: E402
from experiments.i18n import Text, default_language  # noqa: E402
from experiments.summary import (  # noqa: E402
    FDR,
    HEADLINE,
    INDICES,
    METRICS,
    N_,
    REPORTED,
    Context,
    report_cells,
    size,
    summary,
)
from experiments.trust import (  # noqa: E402
    NOT_MODELLED,
    fit_statement,
    lever_assumptions,
    uncertainty_statement,
)
from sim.city import City  # noqa: E402
from sim.config import Config, preset_families  # noqa: E402
from sim.figures import SEA, border_segments  # noqa: E402
from sim.geodata import build_city  # noqa: E402
from sim.io import write_text  # noqa: E402

UNITS = {"H": N_("Theil's H"), "share": "%", "years": N_("school years"),
         "eur": N_("million euros a year")}
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
SERIES = (*REPORTED, "local_school_share_g1", "local_school_share_g7_renewal", "move_rate",
          "policy_cost_eur")  # the time-series figure: the table's metrics and a few more


def png(fig: plt.Figure) -> str:
    """Figure as an embedded ``<img>`` tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def horizons(years: int, wanted: list[int]) -> list[int]:
    """The requested horizons that the run reached (or the last year if none did)."""
    hs = [h for h in wanted if h <= years]
    return hs or [years]


def verdict_words(t: Text) -> dict[str, str]:
    """The table's word for each verdict of ``experiments.summary.report_cells``."""
    _ = t.gettext
    return {"better": _("clearly better"), "worse": _("clearly worse"),
            "higher": _("clearly higher"), "lower": _("clearly lower"),
            "none": _("no clear change"),
            "no_interval": _("no interval (fewer than 2 replicates)")}


def effects_table(cells: pd.DataFrame, ctx: Context, hs: list[int], t: Text) -> str:
    """HTML table: per scenario the cost, then each metric's change per horizon."""
    _ = t.gettext
    words = verdict_words(t)
    head = "".join(f"<th>{_('after {n} years').format(n=h)}</th>" for h in hs)
    rows = []
    for scen, sc in cells.groupby("scenario", sort=False):
        cost = "".join(f"<td>{t.meur(ctx.yearly_cost(scen, h))} {_('a year')}</td>"
                       for h in hs)
        rows.append(f'<tr class="scen"><th colspan="{len(hs) + 1}">{html.escape(scen)}'
                    f"</th></tr><tr><td>{_('Cost of the levers')}</td>{cost}</tr>")
        for metric, mc in sc.groupby("metric", sort=False):
            if metric == HEADLINE[0]:
                rows.append(f'<tr class="group"><td colspan="{len(hs) + 1}">'
                            f"{_('Outcomes')}</td></tr>")
            if metric == INDICES[0]:
                rows.append(f'<tr class="group"><td colspan="{len(hs) + 1}">'
                            f"{_('Segregation indices')}</td></tr>")
            cells_html = []
            for h in hs:
                r = mc[mc["year"] == h]
                if r.empty or pd.isna(r["mean_diff"].iloc[0]):
                    cells_html.append("<td>-</td>")
                    continue
                r = r.iloc[0]
                main, extra = size(r, ctx, t)
                k, n = scale(metric), digits(metric)
                interval = ("" if pd.isna(r["ci_low"]) else
                            f"95\u00a0%: {t.num(r['ci_low'] * k, n, True)} \u2026 "
                            f"{t.num(r['ci_high'] * k, n, True)}; ")
                cells_html.append(
                    f'<td class="{r["verdict"]}"><b>{main}</b><br><small>{extra}</small><br>'
                    f"<small>{interval}{words[r['verdict']]}</small></td>")
            unit = _(UNITS[METRICS[metric].kind])
            rows.append(f"<tr><td>{_(METRICS[metric].label)} <small>({unit})</small></td>"
                        f"{''.join(cells_html)}</tr>")
    return (f"<table><tr><th>{_('Change compared with the baseline')}</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def scale(metric: str) -> float:
    """Factor from a metric's stored value to the unit the report shows (shares in %)."""
    return 100.0 if METRICS[metric].kind == "share" else 1e-6 if metric == "policy_cost_eur" \
        else 1.0


def digits(metric: str) -> int:
    """Decimals the report shows for a metric in its unit."""
    return {"H": 3, "share": 1, "years": 2, "eur": 2}[METRICS[metric].kind]


def series_figure(raw: pd.DataFrame, scenarios: list[str], t: Text) -> str:
    """Time series of the key metrics: scenario means with 5-95% replicate bands."""
    _ = t.gettext
    metrics = [m for m in SERIES if m in raw.columns]
    ncol = 3
    nrow = int(np.ceil(len(metrics) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(15, 3.6 * nrow + 0.6), layout="constrained")
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        style = "steps-mid" if metric == "policy_cost_eur" else "default"
        for k, scen in enumerate(scenarios):
            d = raw[raw["scenario"] == scen].pivot(index="year", columns="replicate",
                                                   values=metric) * scale(metric)
            c = COLOURS[k % len(COLOURS)]
            ax.plot(d.index, d.mean(axis=1), color=c, label=scen, drawstyle=style, lw=1.8)
            ax.fill_between(d.index, d.quantile(0.05, axis=1), d.quantile(0.95, axis=1),
                            color=c, alpha=0.15, lw=0, step="mid" if style != "default" else None)
        ax.set_title(textwrap.fill(_(METRICS[metric].label), 42), fontsize=11)
        ax.set_ylabel(_(UNITS[METRICS[metric].kind]), fontsize=10)
        ax.set_xlabel(_("simulated year"), fontsize=10)
        ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole years
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=min(8, len(labels)),
               fontsize=11)
    return png(fig)


def district_status(results: list[dict], scen: str, city: City) -> np.ndarray:
    """Mean family status (0-2) of each district in the final year, pooled over replicates."""
    cnt = sum(r["status"] for r in results if r["scenario"] == scen)
    by_d = np.zeros((city.n_districts, 3))
    np.add.at(by_d, city.district[city.district >= 0], cnt[city.district >= 0])
    return (by_d @ np.arange(3)) / np.maximum(by_d.sum(1), 1)


def district_names(city: City, t: Text) -> list[str]:
    """Districts' names: the data's names, or numbered synthetic districts (``area_id``)."""
    _ = t.gettext
    if "district" in city.labels:
        return [str(n) for n in city.label("district", city.n_districts)[1]]
    return [_("district {number}").format(number=i) for i in range(city.n_districts)]


def change_maps(results: list[dict], scenarios: list[str], city: City, sea: np.ndarray,
                t: Text) -> str:
    """Maps of the change in mean family status per district, and the districts that move most.

    Scenario minus baseline; the largest changes are named (the data's district names, or
    the synthetic city's numbered districts) and renewal areas marked.
    """
    _ = t.gettext
    others = scenarios[1:]
    base = district_status(results, "baseline", city)
    names = district_names(city, t)
    ncol = min(4, len(others))
    nrow = -(-len(others) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow),
                             layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(others):]:
        ax.axis("off")
    im, lines = None, []
    lab = np.maximum(city.district, 0)
    for ax, scen in zip(axes.ravel(), others, strict=False):
        diff = district_status(results, scen, city) - base
        img = np.where(city.district >= 0, diff[lab], np.nan).reshape(city.width, city.height).T
        im = ax.imshow(img, cmap="PuOr", vmin=-0.3, vmax=0.3)
        ax.add_collection(LineCollection(border_segments(city.district, city), colors="grey",
                                         lw=0.6))
        ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]))
        ax.set_title(scen, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        top = np.argsort(-np.abs(diff), kind="stable")[:3]
        named = ", ".join(
            f"{html.escape(names[d])}{' (' + _('renewal area') + ')' if city.renewal[d] else ''}"
            f" {t.num(diff[d], 2, True)}" for d in top)
        lines.append(f"<li><b>{html.escape(scen)}</b>: {named}</li>")
    label = _("change in the district's mean family status,\nfinal year (orange: lower, purple: "
              "higher)")
    fig.colorbar(im, ax=axes, shrink=0.9).set_label(
        "\n".join(textwrap.fill(line, 34) for line in label.splitlines()), fontsize=9)
    return (png(fig) + f"<p>{_('Districts whose mean family status changes most:')}</p>"
            f"<ul>{''.join(lines)}</ul>")


def catchment_maps(results: list[dict], city: City, sea: np.ndarray, t: Text) -> str:
    """Before/after lower-grade catchments for scenarios that change them (replicate 0)."""
    _ = t.gettext
    parts = []
    for r in results:
        if r["replicate"] != 0:
            continue
        changed = any(not np.array_equal(a, b) for a, b in zip(r["catchments0"],
                                                                 r["catchments"], strict=True))
        shared = (r["shared"] >= 0).any()
        if not (changed or shared):
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
        for ax, lab, when, after in (
                (axes[0], r["catchments0"][0], _("grades 1-6 catchments before (year 0)"), False),
                (axes[1], r["catchments"][0], _("grades 1-6 catchments after (final year)"),
                 True)):
            grid = np.where(lab >= 0, lab % 12, np.nan).reshape(city.width, city.height).T
            ax.imshow(grid, cmap="Set3", vmin=0, vmax=11)
            ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]))
            ax.add_collection(LineCollection(border_segments(lab, city), colors="black",
                                             lw=1.0))
            if shared and after:
                sh = (r["shared"][0] >= 0).reshape(city.width, city.height).T
                ax.contourf(sh, levels=[0.5, 1.5], hatches=["///"], colors="none")
            ax.set_title(f"{r['scenario']}: {when}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        parts.append(png(fig))
    return "".join(parts) or f"<p>{_('No scenario in this comparison changes catchments.')}</p>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}tr.scen th{background:#eef}tr.group td{background:#f6f6f6;
font-weight:600}td.better{background:#e6f4ea}td.worse{background:#fde8e8}img{max-width:100%}
small{color:#555}section.summary{background:#f4f7fb;border-left:4px solid #3b6ea5;
padding:0.4em 1.2em;margin:1em 0}section.summary li{margin:0.3em 0}p.lead{font-size:1.1em}"""
SCRIPT = """<script>window.addEventListener('load',function(){var i=[].slice.call(document.images);
document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&
x.naturalWidth>0}).length+'/'+i.length);});</script>"""


def summary_section(cells: pd.DataFrame, ctx: Context, base: Config,
                    scenario_specs: dict[str, dict], t: Text) -> str:
    """The report's first section: the generated summary and how far to trust it."""
    _ = t.gettext
    lead, per = summary(cells, ctx, t, lambda m: _(METRICS[m].label))
    items = "".join(f"<li><b>{html.escape(lines[0])}</b>"
                    + ("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines[1:])
                       + "</ul>" if len(lines) > 1 else "") + "</li>" for lines in per)
    n_cells = int(cells["p_value"].notna().sum())
    rule = _("A change counts as clear when it holds after controlling the false-discovery "
             "rate at {fdr} over all {n} cells of the table below (Benjamini-Hochberg): among "
             "the changes called clear, at most about one in twenty is expected to be chance. "
             "These sentences are generated from the numbers by documented rules "
             "(docs/report.md).").format(fdr=t.pct(FDR, 0), n=n_cells)
    assumptions = lever_assumptions(scenario_specs, base, t)
    assumed = ("<p>" + _("The levers' effect sizes rest on assumptions:") + "</p><ul>"
               + "".join(f"<li>{html.escape(a)}</li>" for a in assumptions) + "</ul>"
               if assumptions else "")
    missing = "".join(f"<li>{html.escape(_(x))}</li>" for x in NOT_MODELLED)
    years = cells["year"] if len(cells) else ctx.effects.get("year", pd.Series([0]))
    last = int(years.max()) if len(years) else 0
    return (f'<section class="summary" id="summary"><h2>{_("Summary")}</h2>'
            f'<p class="lead">{html.escape(lead)}</p><ul>{items}</ul>'
            f"<p><small>{html.escape(rule)}</small></p>"
            f"<h3>{_('How far to trust this, and what the model cannot say')}</h3>"
            f"<p>{html.escape(fit_statement(base, t))}</p>"
            f"<p>{html.escape(uncertainty_statement(ctx.effects, last, t))}</p>"
            f"{assumed}"
            f"<p>{_('Not modelled:')}</p><ul>{missing}</ul></section>")


def write_report(results: list[dict], raw: pd.DataFrame, effects: pd.DataFrame,
                 opts: dict[str, Any], base: Config, path: Path,
                 scenario_specs: dict[str, dict] | None = None) -> Path:
    """Write the report in ``opts["lang"]`` (the locale's language if it is missing).

    Args:
        results: Per-run outputs of ``experiments.tasks.run_scenario_task``.
        raw: Per-replicate metrics.
        effects: Paired effects (``experiments.compare.paired_effects``).
        opts: Comparison settings (scenarios, replicates, horizons, lang).
        base: The shared model config.
        path: Output file.
        scenario_specs: The compared scenarios (name -> scenario dict), for the levers'
            assumptions.

    Returns:
        ``path``.
    """
    t = Text(opts.get("lang") or default_language())
    _ = t.gettext
    scenarios = opts["scenarios"]
    city = build_city(base.city)
    sea = (~city.land).reshape(city.width, city.height).T
    hs = horizons(base.years, opts["horizons"])
    cells = report_cells(effects, hs)
    ctx = Context(raw, effects)
    desc = {r["scenario"]: (r["description"], r["levers"]) for r in results}
    scen_list = "".join(
        f"<li><b>{html.escape(s)}</b>: {html.escape(_(desc[s][0]))}"
        + (f"<details><summary><small>{_('technical settings')}</small></summary><small>"
           f"{html.escape('; '.join(desc[s][1]))}</small></details>" if desc[s][1] else "")
        + "</li>" for s in scenarios)
    n_families = city.initial_families(base.city)
    share = n_families / preset_families("helsinki")
    scaling = ("" if base.city.preset == "helsinki" else "<p>" + _(
        "Budgets and building volumes in the scenario files are for the whole of Helsinki "
        "(about {n} families with children). This smaller city has {share} of that, so the "
        "levers spend and build {share} of the stated amounts; the costs below are this "
        "city's.").format(n=t.num(preset_families("helsinki"), 0), share=t.pct(share))
        + "</p>")
    few = ("" if opts["replicates"] >= 8 else "<p><b>" + _(
        "Only {n} replicates were run: intervals are wide and rough. Use at least 8 for "
        "results to show.").format(n=opts["replicates"]) + "</b></p>")
    n_pol = len(scenarios) - 1
    title = t.ngettext("School segregation under one policy scenario",
                       "School segregation under {n} policy scenarios", n_pol).format(n=n_pol)
    intro = _(
        "This report compares what the simulation expects to happen in a Helsinki-like city "
        "({preset} preset, {n} families with children) over {years} years under each "
        "scenario, against the baseline where today's rules continue. Every scenario was "
        "simulated {r} times with the same sequence of random events (the same families "
        "arriving, the same chance events), so differences come from the policy and not "
        "from luck.").format(preset=base.city.preset, n=t.num(n_families, 0),
                             years=base.years, r=opts["replicates"])
    table_help = _(
        "Each cell: the average change compared with the baseline in the unit people use, "
        "what it means, and the range that holds the true average change with 95% "
        "confidence. Theil's H measures segregation from 0 (every school or area has the "
        "city's mix) to 1 (groups fully separated). Green: a clear change in the direction "
        "the city wants; red: a clear change the other way; white: the simulation cannot "
        "tell the scenario from the baseline.")
    body = f"""
<h1>{html.escape(title)}</h1>
{summary_section(cells, ctx, base, scenario_specs or {}, t)}
<p>{html.escape(intro)}</p>
<h2>{_('The scenarios')}</h2><ul>{scen_list}</ul>{scaling}
<h2>{_('Effects')}</h2>
<p>{html.escape(table_help)}</p>{few}
{effects_table(cells, ctx, hs, t)}
{front_section(path.parent, t)}
<h2>{_('How the indicators develop')}</h2>
<p>{_('Lines are averages over the simulated replicates; shaded bands hold 90% of them.')}</p>
{series_figure(raw, scenarios, t)}
<h2>{_('Where families live: change compared with the baseline')}</h2>
<p>{_('Mean socio-economic status of the families in each district (0 low, 1 middle, 2 high) '
      'in the final year, scenario minus baseline, pooled over replicates. Purple districts '
      'gained higher-status families under the scenario; orange ones lost them.')}</p>
{change_maps(results, scenarios, city, sea, t) if len(scenarios) > 1 else ''}
<h2>{_('Catchment areas before and after')}</h2>
<p>{_('Each colour is one school catchment (grades 1-6); hatching marks shared catchments '
      'where places are allocated to balance the schools\' intakes.')}</p>
{catchment_maps(results, city, sea, t)}
<p><small>{_('Seeds {first}..{last}. Full numbers: effects.csv and replicates.parquet beside '
             'this file.').format(first=base.seed, last=base.seed + opts['replicates'] - 1)}
</small></p>"""
    page = (f"<!DOCTYPE html><html lang='{t.lang}'><head><meta charset='utf-8'>"
            f"<title>{_('Scenario comparison')}</title><style>{CSS}</style></head>"
            f"<body>{body}{SCRIPT}</body></html>")
    write_text(page, path)
    return path
