"""What the dashboard draws, as plain functions of a ``TwinModel`` (testable without a browser).

* ``city_map``: the policy run's city as one of ``LAYERS``, catchment borders, the renewal
  areas outlined and the schools coloured by one of ``SCHOOL_COLOURS``; returns the PNG and
  each school's position in it (for hover details and clicks).
* ``index_charts``: the ``CHART_METRICS`` over the years, policy run and baseline twin.
* ``key_numbers``: this year's ``KEY_METRICS``, policy, baseline and their difference.
* ``school_table``: one row per school of a run, the details shown for one school.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from PIL import Image

from sim.figures import SEA, border_segments, status_grid

if TYPE_CHECKING:
    from experiments.twin import TwinModel
    from sim.model import SegregationModel

LAYERS = ("status", "language", "catchments", "school intake")
SCHOOL_COLOURS = {  # name -> (school_table column, colour-bar label, colour map)
    "composition": ("low_status_share", "share of low-status pupils", "RdYlBu_r"),
    "outcome": ("mean_outcome", "mean outcome (school years vs grade norm)", "RdYlBu"),
    "reputation": ("reputation", "reputation (native families' view)", "RdYlBu"),
}
KEY_METRICS = {  # metric -> (label, scale shown)
    "seg_school_ses_H": ("School segregation by status (Theil's H)", 1.0),
    "seg_res_ses_H": ("Residential segregation by status (H)", 1.0),
    "seg_school_lang_H": ("School segregation by language (H)", 1.0),
    "local_school_share_g1_renewal": ("Grade-1 entrants at their local school, renewal "
                                      "areas", 1.0),
    "outcome_gap_decile": ("Outcome gap, top vs bottom school decile (school years)", 1.0),
    "outmigration_rate": ("Families leaving the city (share a year)", 1.0),
    "policy_cost_eur": ("Policy cost (million euros a year)", 1e-6),
}
CHART_METRICS = tuple(KEY_METRICS)[:6]  # the cost is in the numbers, not a chart
DPI = 80  # assumption: sharp enough on screen, quick to draw and send


@dataclass
class SchoolSpot:
    """A school's marker on the map image, in image pixels."""

    unit_id: str
    x: float
    y: float
    radius: float


def school_table(model: SegregationModel) -> pd.DataFrame:
    """The schools of a run now: place, pupils, composition, outcome, reputation, money."""
    units = model.recorder.unit_frames[-1]
    s = units[units["kind"].str.startswith("school")].reset_index(drop=True)
    pupils = s["enrolled"].clip(lower=1)
    x, y = np.divmod(s["cell"].to_numpy(), model.city.height)
    return pd.DataFrame({
        "unit_id": s["unit_id"], "grades": np.where(s["kind"] == "school_lower", "1-6", "7-9"),
        "x": x, "y": y, "renewal_area": model.renewal_cell[s["cell"]],
        "open": s["open"], "pupils": s["enrolled"].astype(int),
        "capacity": s["capacity"].astype(int),
        "low_status_share": s["enrol_ses0"] / pupils,
        "foreign_language_share": s["enrol_lang1"] / pupils,
        "mean_outcome": s["mean_outcome"],
        "reputation": s["reputation_native"],
        "reputation_foreign_language": s["reputation_foreign"],
        "entrants": s["intake"], "local_entrant_share": s["intake_local"] / s["intake"].clip(
            lower=1),
        "resources": s["resources"], "funding_eur": s["funding_eur"],
    })


def layer_image(model: SegregationModel, layer: str) -> tuple[np.ndarray, str, float, float,
                                                                 str]:
    """A map layer as a (height, width) image, with its colour map, range and label.

    Raises:
        ValueError: An unknown layer.
    """
    c, f = model.city, model.families
    a = f.active & (f.cell >= 0)
    n = np.bincount(f.cell[a], minlength=c.n_cells)
    if layer == "status":
        return status_grid(model), "RdYlBu", 0.0, 2.0, "mean status of families (0 low, 2 high)"
    if layer == "language":
        foreign = np.bincount(f.cell[a], weights=f.lang[a], minlength=c.n_cells)
        img = np.where(n > 0, foreign / np.maximum(n, 1), np.nan)
        label = "share of foreign-language families"
        return img.reshape(c.width, c.height).T, "PuOr_r", 0.0, 1.0, label
    if layer == "catchments":
        lab = np.where(c.land, c.catchment_lower, -1).astype(float)
        img = np.where(lab >= 0, lab % 20, np.nan)  # tab20 repeats: neighbours still differ
        return img.reshape(c.width, c.height).T, "tab20", 0.0, 19.0, "grades 1-6 catchment"
    if layer == "school intake":
        entrants, local = model.recorder.intake_school
        share = np.where(entrants > 0, local / np.maximum(entrants, 1), np.nan)
        school = model.school_of_cell[0]
        img = np.where(school >= 0, share[np.maximum(school, 0)], np.nan)
        label = "catchment school's entrants from its own catchment"
        return img.reshape(c.width, c.height).T, "viridis", 0.0, 1.0, label
    raise ValueError(f"layer={layer!r} is not allowed; expected one of {list(LAYERS)}")


def _png(fig: Figure, canvas: FigureCanvasAgg) -> bytes:
    """PNG of a drawn figure (fast compression: the page redraws every year)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(buf, format="png",
                                                           compress_level=1)
    return buf.getvalue()


def city_map(model: SegregationModel, layer: str = "status", colour_by: str = "composition",
             selected: str | None = None) -> tuple[bytes, list[SchoolSpot]]:
    """The city of a run as a PNG, and where each school's marker is in it.

    Args:
        model: The run to draw.
        layer: One of ``LAYERS``.
        colour_by: One of ``SCHOOL_COLOURS``.
        selected: A school id to ring, or ``None``.

    Returns:
        The PNG and the schools' markers in image pixels (origin top left).
    """
    c = model.city
    img, cmap, lo, hi, label = layer_image(model, layer)
    # Fixed axes (no constrained layout): the map is redrawn every year and must be quick.
    fig = Figure(figsize=(8.4, 8.4 * 0.8 * c.height / c.width + 0.4), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.01, 0.74, 0.92))
    cax_layer, cax_schools = fig.add_axes((0.77, 0.1, 0.02, 0.75)), fig.add_axes(
        (0.88, 0.1, 0.02, 0.75))
    sea = (~c.land).reshape(c.width, c.height).T
    ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]), vmin=0, vmax=1)
    im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    ax.add_collection(LineCollection(border_segments(c.catchment_lower, c), colors="black",
                                     lw=0.5, alpha=0.6))
    renewal = np.where(model.renewal_cell, 1, 0)
    ax.add_collection(LineCollection(border_segments(renewal, c), colors="magenta", lw=2.0))
    schools = school_table(model)
    col, s_label, s_cmap = SCHOOL_COLOURS[colour_by]
    size = 60 if len(schools) <= 40 else 18
    for grades, marker in (("1-6", "o"), ("7-9", "s")):
        sel = schools[(schools["grades"] == grades) & schools["open"]]
        sc = ax.scatter(sel["x"], sel["y"], c=sel[col], cmap=s_cmap, marker=marker, s=size,
                        edgecolors="black", linewidths=0.8, zorder=3)
        if colour_by == "composition":
            sc.set_clim(0, 1)
        else:  # reputations and outcomes are deviations: a range symmetric around 0
            span = float(np.nanmax(np.abs(schools[col]))) or 1.0
            sc.set_clim(-span, span)
    if selected in set(schools["unit_id"]):
        row = schools[schools["unit_id"] == selected].iloc[0]
        ax.scatter([row["x"]], [row["y"]], s=size * 4, facecolors="none", edgecolors="lime",
                   linewidths=2.5, zorder=4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{model.cfg.scenario.name}, year {model.year}: {layer}", fontsize=10)
    fig.colorbar(im, cax=cax_layer).set_label(label, fontsize=8)
    fig.colorbar(sc, cax=cax_schools).set_label(f"schools: {s_label}", fontsize=8)
    canvas.draw()
    height = canvas.get_width_height()[1]
    xy = ax.transData.transform(schools[["x", "y"]].to_numpy(dtype=float))
    radius = max(4.0, np.sqrt(size) / 72 * DPI)
    spots = [SchoolSpot(uid, float(px), float(height - py), radius)
             for uid, (px, py) in zip(schools["unit_id"], xy, strict=True)]
    return _png(fig, canvas), spots


def _series(df: pd.DataFrame, metric: str) -> list[list[float | None]]:
    """``[year, value]`` pairs for a chart; missing values (NaN) become gaps."""
    return [[int(y), None if np.isnan(v) else float(v)]
            for y, v in zip(df["year"], df[metric], strict=True)]


def index_charts(twin: TwinModel) -> dict[str, dict[str, Any]]:
    """ECharts options of the ``CHART_METRICS`` over the years: policy run and baseline twin.

    Line charts in the browser (ECharts, shipped by ``solara-assets``) instead of images: a
    redraw sends a few numbers, not a figure.
    """
    pol = twin.policy.datacollector.get_model_vars_dataframe()
    base = twin.baseline.datacollector.get_model_vars_dataframe()
    name = twin.policy.cfg.scenario.name
    return {metric: {
        "animation": False,
        "title": {"text": KEY_METRICS[metric][0], "textStyle": {"fontSize": 12}},
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["baseline", name], "bottom": 0},
        "grid": {"left": 50, "right": 15, "top": 35, "bottom": 45},
        "xAxis": {"type": "value", "min": 0, "max": twin.years, "name": "year"},
        "yAxis": {"type": "value", "scale": True},
        "series": [
            {"name": "baseline", "type": "line", "data": _series(base, metric),
             "showSymbol": False, "lineStyle": {"type": "dashed", "color": "grey"},
             "itemStyle": {"color": "grey"}},
            {"name": name, "type": "line", "data": _series(pol, metric), "showSymbol": False,
             "lineStyle": {"width": 2.5, "color": "#1f77b4"}, "itemStyle": {"color": "#1f77b4"}},
        ],
    } for metric in CHART_METRICS}


def key_numbers(twin: TwinModel) -> pd.DataFrame:
    """The ``KEY_METRICS`` now: label, baseline, policy and policy minus baseline."""
    pol, base = twin.policy.recorder.current, twin.baseline.recorder.current
    rows = [{"metric": m, "label": label, "baseline": base[m] * scale,
             "policy": pol[m] * scale, "difference": (pol[m] - base[m]) * scale}
            for m, (label, scale) in KEY_METRICS.items()]
    return pd.DataFrame(rows)
