"""What the dashboard draws, as plain functions of a ``TwinModel`` (testable without a browser).

* ``city_map``: the policy run's city as one of ``LAYERS``, catchment borders, the renewal
  areas outlined and the schools coloured by one of ``SCHOOL_COLOURS``; returns the PNG,
  each school's position in it (for hover details and clicks) and the colour scales.
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
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from PIL import Image

from experiments.i18n import Text
from experiments.summary import N_
from sim.figures import SEA, status_grid

if TYPE_CHECKING:
    from experiments.twin import TwinModel
    from sim.city import City
    from sim.model import SegregationModel

# Texts are English msgids (N_), translated where the page shows them (experiments.i18n).
LAYERS = (N_("status"), N_("language"), N_("catchments"), N_("school intake"))
SCHOOL_COLOURS = {  # name -> (school_table column, colour-bar label, colour map)
    N_("composition"): ("low_status_share", N_("share of low-status pupils"), "RdYlBu_r"),
    N_("outcome"): ("mean_outcome", N_("mean outcome (school years vs grade norm)"), "RdYlBu"),
    N_("reputation"): ("reputation", N_("reputation (native families' view)"), "RdYlBu"),
}
KEY_METRICS = {  # metric -> (label, scale shown)
    "seg_school_ses_H": (N_("School segregation by status (Theil's H)"), 1.0),
    "seg_res_ses_H": (N_("Residential segregation by status (H)"), 1.0),
    "seg_school_lang_H": (N_("School segregation by language (H)"), 1.0),
    "local_school_share_g1_renewal": (N_("Grade-1 entrants at their local school, renewal "
                                         "areas"), 1.0),
    "outcome_gap_decile": (N_("Outcome gap, top vs bottom school decile (school years)"), 1.0),
    "outmigration_rate": (N_("Families leaving the city (share a year)"), 1.0),
    "policy_cost_eur": (N_("Policy cost (million euros a year)"), 1e-6),
}
SCHOOL_FIELDS = {  # school_table column -> label of the school details
    "pupils": N_("pupils"), "capacity": N_("places"),
    "low_status_share": N_("share of low-status pupils"),
    "foreign_language_share": N_("share of foreign-language pupils"),
    "mean_outcome": N_("mean outcome (school years)"),
    "reputation": N_("reputation, native families"),
    "reputation_foreign_language": N_("reputation, foreign-language families"),
    "entrants": N_("entrants"),
    "local_entrant_share": N_("share of entrants from the catchment"),
    "resources": N_("resources per pupil (base 1)"),
    "funding_eur": N_("needs-based funding, euros"),
}
CHART_METRICS = tuple(KEY_METRICS)[:6]  # the cost is in the numbers, not a chart


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
        return status_grid(model), "RdYlBu", 0.0, 2.0, N_("mean status of families (0 low, "
                                                           "2 high)")
    if layer == "language":
        foreign = np.bincount(f.cell[a], weights=f.lang[a], minlength=c.n_cells)
        img = np.where(n > 0, foreign / np.maximum(n, 1), np.nan)
        label = N_("share of foreign-language families")
        return img.reshape(c.width, c.height).T, "PuOr_r", 0.0, 1.0, label
    if layer == "catchments":
        lab = np.where(c.land, c.catchment_lower, -1).astype(float)
        img = np.where(lab >= 0, lab % 20, np.nan)  # tab20 repeats: neighbours still differ
        return img.reshape(c.width, c.height).T, "tab20", 0.0, 19.0, N_("grades 1-6 catchment")
    if layer == "school intake":
        entrants, local = model.recorder.intake_school
        share = np.where(entrants > 0, local / np.maximum(entrants, 1), np.nan)
        school = model.school_of_cell[0]
        img = np.where(school >= 0, share[np.maximum(school, 0)], np.nan)
        label = N_("catchment school's entrants from its own catchment")
        return img.reshape(c.width, c.height).T, "viridis", 0.0, 1.0, label
    raise ValueError(f"layer={layer!r} is not allowed; expected one of {list(LAYERS)}")


@dataclass
class Legend:
    """A colour scale shown next to the map."""

    label: str
    css_gradient: str
    lo: float
    hi: float


@dataclass
class CityMap:
    """The drawn map: PNG, the schools' markers in it, and the two colour scales."""

    png: bytes
    spots: list[SchoolSpot]
    layer: Legend
    schools: Legend
    width: int
    height: int


MAP_WIDTH_PX = 660  # assumption: fits the map card on a laptop screen
MAGENTA, BORDER, OUTLINE, RING = (230, 0, 230), (60, 60, 60), (0, 0, 0), (0, 230, 0)


def _rgb(cmap: str, values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Colours (uint8 RGB) of ``values`` on ``cmap`` over ``[lo, hi]``; NaN is white."""
    scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    rgb = (colormaps[cmap](np.nan_to_num(scaled))[..., :3] * 255).astype(np.uint8)
    rgb[np.isnan(values)] = 255
    return rgb


def _legend(label: str, cmap: str, lo: float, hi: float) -> Legend:
    stops = ", ".join("rgb({},{},{})".format(*c)
                      for c in _rgb(cmap, np.linspace(lo, hi, 9), lo, hi))
    return Legend(label, f"linear-gradient(to right, {stops})", lo, hi)


def _edges(labels: np.ndarray, scale: int, width: int) -> np.ndarray:
    """Pixel mask of the borders between cells of different ``labels`` (a (rows, cols) image).

    ``width`` pixels wide, on the edge between the two cells; -1 labels (sea) have none.
    """
    rows, cols = labels.shape
    mask = np.zeros((rows * scale, cols * scale), dtype=bool)
    both = (labels[:, :-1] >= 0) & (labels[:, 1:] >= 0)
    vertical = np.repeat((labels[:, :-1] != labels[:, 1:]) & both, scale, axis=0)
    both = (labels[:-1, :] >= 0) & (labels[1:, :] >= 0)
    horizontal = np.repeat((labels[:-1, :] != labels[1:, :]) & both, scale, axis=1)
    for k in range(width):
        offset = k - width // 2
        mask[:, np.arange(1, cols) * scale + offset] |= vertical
        mask[np.arange(1, rows) * scale + offset, :] |= horizontal
    return mask


def _land_image(city: City, values: np.ndarray) -> np.ndarray:
    """Per-cell integer ``values`` as a (rows, cols) image, -1 on the sea."""
    return np.where(city.land, values.astype(np.int64), -1).reshape(city.width, city.height).T


def city_map(model: SegregationModel, layer: str = "status", colour_by: str = "composition",
             selected: str | None = None) -> CityMap:
    """The city of a run as a PNG, the schools' markers in it and the colour scales.

    Drawn straight into pixels (cells as blocks, borders as pixel lines), not through a
    plotting library: the page redraws it every simulated year, in milliseconds.

    Args:
        model: The run to draw.
        layer: One of ``LAYERS``.
        colour_by: One of ``SCHOOL_COLOURS``.
        selected: A school id to ring, or ``None``.
    """
    c = model.city
    img, cmap, lo, hi, label = layer_image(model, layer)
    scale = max(3, MAP_WIDTH_PX // c.width)
    rgb = _rgb(cmap, img, lo, hi)
    rgb[_land_image(c, c.land) < 0] = np.round(np.array(to_rgb(SEA)) * 255)
    pixels = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    pixels[_edges(_land_image(c, c.catchment_lower), scale, 1)] = BORDER
    pixels[_edges(_land_image(c, model.renewal_cell), scale, 3)] = MAGENTA

    schools = school_table(model)
    col, s_label, s_cmap = SCHOOL_COLOURS[colour_by]
    if colour_by == "composition":
        s_lo, s_hi = 0.0, 1.0
    else:  # reputations and outcomes are deviations: a range symmetric around 0
        span = float(np.nanmax(np.abs(schools[col]))) or 1.0
        s_lo, s_hi = -span, span
    colours = _rgb(s_cmap, schools[col].to_numpy(dtype=float), s_lo, s_hi)
    radius = max(4, int(scale * 0.7))  # visible even on helsinki's 5-pixel cells
    yy, xx = np.mgrid[-radius - 2:radius + 3, -radius - 2:radius + 3]
    spots = []
    for row, colour in zip(schools.itertuples(), colours, strict=True):
        cx, cy = int((row.x + 0.5) * scale), int((row.y + 0.5) * scale)
        spots.append(SchoolSpot(row.unit_id, float(cx), float(cy), float(radius)))
        if not row.open:
            continue
        # Discs for grades 1-6, squares for grades 7-9, a dark outline, a ring if selected.
        dist = np.hypot(xx, yy) if row.grades == "1-6" else np.maximum(abs(xx), abs(yy))
        ring = row.unit_id == selected
        for mask, paint in ((dist <= radius + (2 if ring else 1), RING if ring else OUTLINE),
                            (dist <= radius - 1, tuple(colour))):
            ys, xs = np.nonzero(mask)
            ys, xs = ys + cy - radius - 2, xs + cx - radius - 2
            ok = (ys >= 0) & (ys < pixels.shape[0]) & (xs >= 0) & (xs < pixels.shape[1])
            pixels[ys[ok], xs[ok]] = paint
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="png", compress_level=1)
    return CityMap(buf.getvalue(), spots, _legend(label, cmap, lo, hi),
                   _legend(s_label, s_cmap, s_lo, s_hi), pixels.shape[1],
                   pixels.shape[0])


def _series(df: pd.DataFrame, metric: str) -> list[list[float | None]]:
    """``[year, value]`` pairs for a chart; missing values (NaN) become gaps."""
    return [[int(y), None if np.isnan(v) else float(v)]
            for y, v in zip(df["year"], df[metric], strict=True)]


def index_charts(twin: TwinModel, t: Text | None = None) -> dict[str, dict[str, Any]]:
    """ECharts options of the ``CHART_METRICS`` over the years: policy run and baseline twin.

    Line charts in the browser (ECharts, shipped by ``solara-assets``) instead of images: a
    redraw sends a few numbers, not a figure. Once the twin's run-to-run band is ready
    (``TwinModel.request_band``), two thin grey lines show the lowest and highest baseline
    over other seeds, so a difference can be set against the noise of a single run.

    Args:
        twin: The policy run and its baseline twin.
        t: The page's language (English by default).
    """
    _ = (t or Text("en")).gettext
    pol = twin.policy.datacollector.get_model_vars_dataframe()
    base = twin.baseline.datacollector.get_model_vars_dataframe()
    band = twin.band_ready()
    name = twin.policy.cfg.scenario.name
    out = {}
    for metric in CHART_METRICS:
        series = [
            {"name": _("baseline"), "type": "line", "data": _series(base, metric),
             "showSymbol": False, "lineStyle": {"type": "dashed", "color": "grey"},
             "itemStyle": {"color": "grey"}},
            {"name": name, "type": "line", "data": _series(pol, metric), "showSymbol": False,
             "lineStyle": {"width": 2.5, "color": "#1f77b4"}, "itemStyle": {"color": "#1f77b4"}},
        ]
        if band is not None:  # the band's edges: lowest and highest baseline run each year
            b = band.reset_index()
            edge = {"type": "line", "symbol": "none", "name": _("run-to-run band"),
                    "lineStyle": {"width": 1, "color": "#b0b0b0"},
                    "itemStyle": {"color": "#b0b0b0"}}
            series += [{**edge, "data": _series(b, f"{metric}_{end}")} for end in ("lo", "hi")]
        out[metric] = {
            "animation": False,
            "title": {"text": _(KEY_METRICS[metric][0]), "textStyle": {"fontSize": 12}},
            "tooltip": {"trigger": "axis"},
            "legend": {"data": [_("baseline"), name]
                       + ([_("run-to-run band")] if band is not None else []), "bottom": 0},
            "grid": {"left": 50, "right": 15, "top": 35, "bottom": 45},
            "xAxis": {"type": "value", "min": 0, "max": twin.years, "name": _("year"),
                      "minInterval": 1},  # whole years
            "yAxis": {"type": "value", "scale": True},
            "series": series,
        }
    return out


def key_numbers(twin: TwinModel) -> pd.DataFrame:
    """The ``KEY_METRICS`` now: label, baseline, policy, policy minus baseline, and noise.

    ``spread`` is half the range of the baseline over the run-to-run band's seeds this year
    (NaN until the band is ready): a difference well inside it may be chance.
    """
    pol, base = twin.policy.recorder.current, twin.baseline.recorder.current
    band = twin.band_ready()
    year = twin.year
    rows = []
    for m, (label, scale) in KEY_METRICS.items():
        spread = (float(band.at[year, f"{m}_hi"] - band.at[year, f"{m}_lo"]) / 2 * scale
                  if band is not None and year in band.index else float("nan"))
        rows.append({"metric": m, "label": label, "baseline": base[m] * scale,
                     "policy": pol[m] * scale, "difference": (pol[m] - base[m]) * scale,
                     "spread": spread})
    return pd.DataFrame(rows)
