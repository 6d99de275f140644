"""Figures of a run: status map with catchment borders, school composition, index series."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from sim.io import atomic_write  # noqa: E402
from sim.units import add_labels  # noqa: E402

if TYPE_CHECKING:
    from sim.city import City
    from sim.model import SegregationModel

SERIES = {
    "Status, residential (districts)": "seg_res_ses_H",
    "Status, schools": "seg_school_ses_H",
    "Status, catchments' school-age residents": "seg_catchment_ses_H",
    "Status, daycares": "seg_daycare_ses_H",
    "Language, schools": "seg_school_lang_H",
    "Language, residential (districts)": "seg_res_lang_H",
}


def _save(fig: plt.Figure, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def status_grid(model: SegregationModel) -> np.ndarray:
    """Mean status (0 low .. 2 high) of families per cell as a (height, width) image."""
    f, c = model.families, model.city
    a = f.active & (f.cell >= 0)
    n = np.bincount(f.cell[a], minlength=c.n_cells)
    s = np.bincount(f.cell[a], weights=f.ses[a], minlength=c.n_cells)
    img = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return img.reshape(c.width, c.height).T


def border_segments(labels: np.ndarray, city: City) -> list:
    """Line segments (in image coordinates) between land cells with different labels."""
    lab = labels.reshape(city.width, city.height)  # [x, y]
    land = city.land.reshape(city.width, city.height)
    segs = []
    xs, ys = np.nonzero((lab[:-1, :] != lab[1:, :]) & land[:-1, :] & land[1:, :])
    segs += [[(x + 0.5, y - 0.5), (x + 0.5, y + 0.5)] for x, y in zip(xs, ys, strict=True)]
    xs, ys = np.nonzero((lab[:, :-1] != lab[:, 1:]) & land[:, :-1] & land[:, 1:])
    segs += [[(x - 0.5, y + 0.5), (x + 0.5, y + 0.5)] for x, y in zip(xs, ys, strict=True)]
    return segs


SEA, EMPTY = "#b0bec5", "white"


def to_map(segments: list, city: City) -> np.ndarray:
    """Segments from image (grid) coordinates to map coordinates (``City.map_xy``)."""
    seg = np.asarray(segments, dtype=float).reshape(-1, 2, 2)
    return np.stack(city.map_xy(seg[..., 0], seg[..., 1]), axis=-1)


def map_extent(city: City) -> tuple[float, float, float, float]:
    """``imshow`` extent (left, right, bottom, top) of the grid in map coordinates."""
    left, top = city.map_xy(-0.5, -0.5)
    right, bottom = city.map_xy(city.width - 0.5, city.height - 0.5)
    return float(left), float(right), float(bottom), float(top)


def run_label(model: SegregationModel) -> str:
    """One line naming the run, for figure titles."""
    cfg = model.cfg
    return (f"{cfg.city.preset} city, scenario {cfg.scenario.name}, seed {cfg.seed}, "
            f"year {model.year}")


def map_legend(ax: plt.Axes) -> None:
    """Legend for the status maps."""
    handles = [
        Line2D([], [], color="black", lw=1.2, label="catchment border"),
        Line2D([], [], color="magenta", lw=2.2, label="urban-renewal area"),
        Line2D([], [], marker="o", ls="", mfc="white", mec="black", label="school, grades 1-6"),
        Line2D([], [], marker="s", ls="", mfc="white", mec="black", label="school, grades 7-9"),
        Patch(facecolor=SEA, label="sea"),
        Patch(facecolor=EMPTY, edgecolor="grey", label="no families"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def draw_map(model: SegregationModel, ax: plt.Axes, labels: np.ndarray, title: str,
             level: int | None = None) -> matplotlib.image.AxesImage:
    """Status map with sea, borders of ``labels``, renewal districts and schools.

    Args:
        model: The model (its current state is drawn).
        ax: Target axes.
        labels: Catchment label per cell whose borders are drawn.
        title: Axes title.
        level: Draw only this level's schools (0 lower, 1 upper); ``None`` draws both.

    Returns:
        The status image (for a colour bar).
    """
    c = model.city
    sea = (~c.land).reshape(c.width, c.height).T
    ext = map_extent(c)  # real coordinates (m) for a city read from files
    ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap([SEA]), vmin=0, vmax=1,
              extent=ext)
    im = ax.imshow(status_grid(model), cmap="RdYlBu", vmin=0, vmax=2, extent=ext)
    ax.add_collection(LineCollection(to_map(border_segments(labels, c), c), colors="black",
                                     lw=1.2))
    ren = np.where(model.renewal_cell, 1, 0)
    ax.add_collection(LineCollection(to_map(border_segments(ren, c), c), colors="magenta",
                                     lw=2.2))
    sch = model.schools
    unit_ids, _ = c.label("school", len(sch.cell))
    for lev, marker in ((0, "o"), (1, "s")):
        if level is not None and lev != level:
            continue
        ids = np.flatnonzero((sch.level == lev) & sch.open)
        x, y = c.map_xy(*np.divmod(sch.cell[ids], c.height))
        ax.scatter(x, y, marker=marker, s=26, c="white", edgecolors="black", linewidths=0.8,
                   zorder=3)
        if len(sch.cell) <= 40:  # ids readable only on small cities
            for i, xx, yy in zip(ids, x, y, strict=True):
                ax.annotate(unit_ids[i], (xx, yy), xytext=(3, 3), textcoords="offset points",
                            fontsize=6)
    ax.set_title(title, fontsize=10)
    if c.crs:
        ax.set_xlabel(f"easting (m, {c.crs})", fontsize=8)
        ax.set_ylabel(f"northing (m, {c.crs})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(style="plain", useOffset=False)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    return im


STATUS_LABEL = "mean socio-economic status of families\n(0 low, 1 middle, 2 high income/education)"


def draw_all(model: SegregationModel, metrics: pd.DataFrame, out: Path) -> list[Path]:
    """Draw every figure of a run into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    c = model.city
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    draw_map(model, axes[0], c.catchment_lower, "Grades 1-6 catchments", level=0)
    im = draw_map(model, axes[1], c.catchment_upper, "Grades 7-9 catchments", level=1)
    map_legend(axes[1])
    fig.colorbar(im, ax=axes, shrink=0.7, location="left", pad=0.02).set_label(STATUS_LABEL)
    fig.suptitle(f"Where families of each status live: {run_label(model)}", fontsize=11)
    paths.append(out / "map_status_catchments.png")
    _save(fig, paths[-1])

    units = add_labels(model.recorder.unit_frames[-1], model, "index")
    sch = units[units["kind"].str.startswith("school") & (units["enrolled"] > 0)].copy()
    tot = sch[["enrol_ses0", "enrol_ses1", "enrol_ses2"]].sum(axis=1).clip(lower=1)
    sch = sch.assign(low=sch["enrol_ses0"] / tot, mid=sch["enrol_ses1"] / tot,
                     high=sch["enrol_ses2"] / tot,
                     foreign=sch["enrol_lang1"] / tot).sort_values(["kind", "low"])
    fig, ax = plt.subplots(figsize=(min(24, max(9, 0.2 * len(sch))), 4.8), layout="constrained")
    xs = np.arange(len(sch))
    bottom = np.zeros(len(sch))
    for col, colour, name in (("low", "#d73027", "low status"), ("mid", "#fee090",
                                                                  "middle status"),
                              ("high", "#4575b4", "high status")):
        ax.bar(xs, sch[col], bottom=bottom, color=colour, label=name, width=0.85)
        bottom += sch[col].to_numpy()
    ax.plot(xs, sch["foreign"], "k.", ms=6, label="foreign-language share")
    n_lower = int((sch["kind"] == "school_lower").sum())
    ax.axvline(n_lower - 0.5, color="black", lw=2)
    ax.text(n_lower / 2 - 0.5, 1.02, "grades 1-6", ha="center", fontsize=9)
    ax.text(n_lower + (len(sch) - n_lower) / 2 - 0.5, 1.02, "grades 7-9", ha="center",
            fontsize=9)
    step = max(1, len(sch) // 60)
    ax.set_xticks(xs[::step], sch["name"].to_numpy()[::step], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(sch) - 0.4)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("school (sorted by share of low-status pupils within each level)")
    ax.set_ylabel("share of pupils")
    ax.set_title(f"Pupil composition by school: {run_label(model)}", fontsize=11, pad=14)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    paths.append(out / "school_composition.png")
    _save(fig, paths[-1])

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    for label, col in SERIES.items():
        axes[0].plot(metrics["year"], metrics[col], label=label)
    axes[0].set_title("Segregation (Theil's H; 0 = even mix, 1 = full separation)", fontsize=10)
    axes[0].set_ylabel("Theil's H")
    axes[0].legend(fontsize=8)
    axes[1].plot(metrics["year"], metrics["excess_school_ses_H"], label="status")
    axes[1].plot(metrics["year"], metrics["excess_school_lang_H"], label="language")
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_title("Excess school segregation\n(schools minus their catchments' residents)",
                      fontsize=10)
    axes[1].set_ylabel("difference in Theil's H")
    axes[1].legend(fontsize=8)
    for col, label in (("local_school_share_g1", "grade 1, city"),
                       ("local_school_share_g7", "grade 7, city"),
                       ("local_school_share_g1_renewal", "grade 1, renewal areas"),
                       ("local_school_share_g7_renewal", "grade 7, renewal areas")):
        axes[2].plot(metrics["year"], metrics[col], label=label)
    axes[2].set_title("Pupils starting at their catchment school", fontsize=10)
    axes[2].set_ylabel("share of entrants")
    axes[2].legend(fontsize=8, loc="best")
    for ax in axes:
        ax.set_xlabel("simulated year")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole years
    fig.suptitle(run_label(model).rsplit(", year", 1)[0], fontsize=11)
    paths.append(out / "index_timeseries.png")
    _save(fig, paths[-1])
    return paths
