"""Self-contained HTML report of a scenario comparison, written for non-modellers.

One file, PNG figures embedded as base64: a summary table of effects at the 10- and 20-year
horizons with costs, time series with replicate bands, maps of the change in where families
of each status live, and catchment maps before and after for catchment scenarios.
"""

from __future__ import annotations

import base64
import html
import io
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

from sim.city import City  # noqa: E402
from sim.config import Config, preset_families  # noqa: E402
from sim.figures import SEA, border_segments  # noqa: E402
from sim.geodata import build_city  # noqa: E402
from sim.io import write_text  # noqa: E402

# Metric -> (plain label, unit wording, which direction is the city's goal: -1 lower is better)
LABELS: dict[str, tuple[str, str, int]] = {
    "seg_school_ses_H": ("School segregation by family status", "Theil's H", -1),
    "seg_school_lang_H": ("School segregation by language", "Theil's H", -1),
    "seg_res_ses_H": ("Residential segregation by family status", "Theil's H", -1),
    "seg_res_lang_H": ("Residential segregation by language", "Theil's H", -1),
    "seg_daycare_ses_H": ("Daycare segregation by family status", "Theil's H", -1),
    "excess_school_ses_H": ("Excess school segregation (schools vs their areas)", "H", -1),
    "local_school_share_g1": ("First-graders at their catchment school", "share", 1),
    "local_school_share_g1_renewal": ("First-graders at catchment school, renewal areas",
                                      "share", 1),
    "local_school_share_g7": ("Seventh-graders at their catchment school", "share", 1),
    "local_school_share_g7_renewal": ("Seventh-graders at catchment school, renewal areas",
                                      "share", 1),
    "outcome_gap_decile": ("Learning gap, top vs bottom tenth of schools", "school years", -1),
    "outmigration_rate": ("Families leaving the city each year", "share", -1),
    "move_rate": ("Families moving within the city each year", "share", 0),
    "capacity_added": ("Temporary school places added (catchment guarantee)", "places a year",
                       0),
    "policy_cost_eur": ("Policy cost", "million euros a year", 0),
}
SUMMARY = ("seg_school_ses_H", "seg_school_lang_H", "seg_res_ses_H", "excess_school_ses_H",
           "local_school_share_g1_renewal", "outcome_gap_decile", "outmigration_rate")
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


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


def verdict(row: pd.Series, direction: int) -> str:
    """Plain-words reading of a 95% interval (none with fewer than two replicate pairs)."""
    if pd.isna(row["ci_low"]):
        return "no interval (fewer than 2 replicates)"
    if row["ci_low"] > 0 or row["ci_high"] < 0:
        up = row["mean_diff"] > 0
        if direction == 0:
            return "higher" if up else "lower"
        good = up == (direction > 0)
        return ("better" if good else "worse") + (" (higher)" if up else " (lower)")
    return "no clear change"


def summary_table(effects: pd.DataFrame, raw: pd.DataFrame, hs: list[int]) -> str:
    """HTML table: effect with interval per scenario, metric and horizon, and costs."""
    head = "".join(f"<th>after {h} years</th>" for h in hs)
    rows = []
    for scen in effects["scenario"].unique():
        e = effects[effects["scenario"] == scen]
        cost = raw[(raw["scenario"] == scen)].groupby("replicate")
        cum = [cost.apply(lambda d, h=h: d.loc[d["year"] <= h, "policy_cost_eur"].sum()).mean()
               for h in hs]
        cost_cells = "".join(f"<td>{c / 1e6:,.2f} M€ in total</td>" for c in cum)
        rows.append(f'<tr class="scen"><th colspan="{len(hs) + 1}">{html.escape(scen)}'
                    f"</th></tr><tr><td>Cost of the levers</td>{cost_cells}</tr>")
        for metric in SUMMARY:
            label, unit, direction = LABELS[metric]
            cells = []
            for h in hs:
                r = e[(e["metric"] == metric) & (e["year"] == h)]
                if r.empty or pd.isna(r["mean_diff"].iloc[0]):
                    cells.append("<td>n/a</td>")
                    continue
                r = r.iloc[0]
                word = verdict(r, direction)
                cls = word.split()[0].replace("no", "none")
                interval = ("" if pd.isna(r["ci_low"]) else
                            f' ({r["ci_low"]:+.3f} to {r["ci_high"]:+.3f})')
                cells.append(f'<td class="{cls}">{r["mean_diff"]:+.3f}{interval}<br>'
                             f"<small>baseline {r['baseline_mean']:.3f}; {word}</small></td>")
            rows.append(f"<tr><td>{label} <small>({unit})</small></td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>Change compared with the baseline</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def series_figure(raw: pd.DataFrame, scenarios: list[str]) -> str:
    """Time series of the key metrics: scenario means with 5-95% replicate bands."""
    metrics = [m for m in LABELS if m in raw.columns]
    ncol = 3
    nrow = int(np.ceil(len(metrics) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(15, 3.6 * nrow + 0.6), layout="constrained")
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        scale = 1e-6 if metric == "policy_cost_eur" else 1.0
        style = "steps-mid" if metric in ("policy_cost_eur", "capacity_added") else "default"
        for k, scen in enumerate(scenarios):
            d = raw[raw["scenario"] == scen].pivot(index="year", columns="replicate",
                                                   values=metric) * scale
            c = COLOURS[k % len(COLOURS)]
            ax.plot(d.index, d.mean(axis=1), color=c, label=scen, drawstyle=style, lw=1.8)
            ax.fill_between(d.index, d.quantile(0.05, axis=1), d.quantile(0.95, axis=1),
                            color=c, alpha=0.15, lw=0, step="mid" if style != "default" else None)
        label, unit, _ = LABELS[metric]
        ax.set_title(label, fontsize=11)
        ax.set_ylabel(unit, fontsize=10)
        ax.set_xlabel("simulated year", fontsize=10)
        ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=min(8, len(labels)),
               fontsize=11)
    return png(fig)


def district_status(results: list[dict], scen: str, city: City) -> np.ndarray:
    """Mean family status (0-2) of each cell's district in the final year.

    Pooled over replicates; a (height, width) image, NaN on sea.
    """
    cnt = sum(r["status"] for r in results if r["scenario"] == scen)
    lab = np.maximum(city.district, 0)
    by_d = np.zeros((city.n_districts, 3))
    np.add.at(by_d, lab, cnt)
    mean = (by_d @ np.arange(3)) / np.maximum(by_d.sum(1), 1)
    img = np.where(city.district >= 0, mean[lab], np.nan)
    return img.reshape(city.width, city.height).T


def change_maps(results: list[dict], scenarios: list[str], city: City, sea: np.ndarray) -> str:
    """Maps of the change in mean family status per district, scenario minus baseline."""
    others = scenarios[1:]
    base = district_status(results, "baseline", city)
    ncol = min(4, len(others))
    nrow = -(-len(others) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow),
                             layout="constrained", squeeze=False)
    for ax in axes.ravel()[len(others):]:
        ax.axis("off")
    im = None
    for ax, scen in zip(axes.ravel(), others, strict=False):
        diff = district_status(results, scen, city) - base
        im = ax.imshow(diff, cmap="PuOr", vmin=-0.3, vmax=0.3)
        ax.add_collection(LineCollection(border_segments(city.district, city), colors="grey",
                                         lw=0.6))
        ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]))
        ax.set_title(scen, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8).set_label(
        "change in the district's mean family status,\nfinal year (orange: lower, purple: higher)")
    return png(fig)


def catchment_maps(results: list[dict], city: City, sea: np.ndarray) -> str:
    """Before/after lower-grade catchments for scenarios that change them (replicate 0)."""
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
        for ax, lab, when in ((axes[0], r["catchments0"][0], "before (year 0)"),
                              (axes[1], r["catchments"][0], "after (final year)")):
            grid = np.where(lab >= 0, lab % 12, np.nan).reshape(city.width, city.height).T
            ax.imshow(grid, cmap="Set3", vmin=0, vmax=11)
            ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]))
            ax.add_collection(LineCollection(border_segments(lab, city), colors="black",
                                             lw=1.0))
            if shared and when.startswith("after"):
                sh = (r["shared"][0] >= 0).reshape(city.width, city.height).T
                ax.contourf(sh, levels=[0.5, 1.5], hatches=["///"], colors="none")
            ax.set_title(f"{r['scenario']}: grades 1-6 catchments {when}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        parts.append(png(fig))
    return "".join(parts) or "<p>No scenario in this comparison changes catchments.</p>"


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}tr.scen th{background:#eef}td.better{background:#e6f4ea}
td.worse{background:#fde8e8}img{max-width:100%}small{color:#555}"""
SCRIPT = """<script>window.addEventListener('load',function(){var i=[].slice.call(document.images);
document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&
x.naturalWidth>0}).length+'/'+i.length);});</script>"""


def write_report(results: list[dict], raw: pd.DataFrame, effects: pd.DataFrame,
                 opts: dict[str, Any], base: Config, path: Path) -> Path:
    """Write the report.

    Args:
        results: Per-run outputs of ``experiments.compare.run_one``.
        raw: Per-replicate metrics.
        effects: Paired effects (``experiments.compare.paired_effects``).
        opts: Comparison settings (scenarios, replicates, horizons).
        base: The shared model config.
        path: Output file.

    Returns:
        ``path``.
    """
    scenarios = opts["scenarios"]
    city = build_city(base.city)
    sea = (~city.land).reshape(city.width, city.height).T
    hs = horizons(base.years, opts["horizons"])
    desc = {r["scenario"]: (r["description"], r["levers"]) for r in results}
    scen_list = "".join(
        f"<li><b>{html.escape(s)}</b>: {html.escape(desc[s][0])}"
        + (f"<details><summary><small>technical settings</small></summary><small>"
           f"{html.escape('; '.join(desc[s][1]))}</small></details>" if desc[s][1] else "")
        + "</li>" for s in scenarios)
    n_families = city.initial_families(base.city)
    share = n_families / preset_families("helsinki")
    scaling = ("" if base.city.preset == "helsinki" else
               f"<p>Budgets and building volumes in the scenario files are for the whole of "
               f"Helsinki (about {preset_families('helsinki'):,} families with children). This "
               f"smaller city has "
               f"{share:.1%} of that, so the levers spend and build {share:.1%} of the "
               f"stated amounts; the costs below are this city's.</p>")
    few = ("" if opts["replicates"] >= 8 else
           f"<p><b>Only {opts['replicates']} replicates were run: intervals are wide and "
           f"rough. Use at least 8 for results to show.</b></p>")
    body = f"""
<h1>School segregation under {len(scenarios) - 1} policy scenario(s)</h1>
<p>This report compares what the simulation expects to happen in a Helsinki-like city
({html.escape(base.city.preset)} preset, {n_families:,} families with children)
over {base.years} years under each scenario, against the <b>baseline</b> where today's rules
continue. Every scenario was simulated {opts['replicates']} times with the same sequence of
random events (the same families arriving, the same chance events), so differences come from
the policy and not from luck. A change is shown with a 95% interval: if the interval does not
include zero the scenario made a clear difference; otherwise the simulation cannot tell the
scenario from the baseline.</p>
<h2>The scenarios</h2><ul>{scen_list}</ul>{scaling}
<h2>Summary of effects</h2>
<p>Each cell: the average change compared with the baseline, and in brackets the range that
holds the true average change with 95% confidence. Theil's H measures segregation from 0
(every school or area has the city's mix) to 1 (groups fully separated). Green: a clear change
in the direction the city wants; red: a clear change the other way. With many indicators,
scenarios and years, an occasional green or red cell can be chance: trust changes that
persist across both horizons and agree with the time series below.</p>{few}
{summary_table(effects, raw, hs)}
<h2>How the indicators develop</h2>
<p>Lines are averages over the simulated replicates; shaded bands hold 90% of them.</p>
{series_figure(raw, scenarios)}
<h2>Where families live: change compared with the baseline</h2>
<p>Mean socio-economic status of the families in each district (0 low, 1 middle, 2 high) in
the final year, scenario minus baseline, pooled over replicates. Purple districts gained
higher-status families under the scenario; orange ones lost them.</p>
{change_maps(results, scenarios, city, sea) if len(scenarios) > 1 else ''}
<h2>Catchment areas before and after</h2>
<p>Each colour is one school's catchment (grades 1-6); hatching marks shared catchments
where places are allocated to balance the schools' intakes.</p>
{catchment_maps(results, city, sea)}
<p><small>Seeds {base.seed}..{base.seed + opts['replicates'] - 1}. Full numbers:
effects.csv and replicates.parquet beside this file.</small></p>"""
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Scenario comparison</title><style>{CSS}</style></head>"
            f"<body>{body}{SCRIPT}</body></html>")
    write_text(page, path)
    return path
