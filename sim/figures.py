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

from sim.outputs import atomic_write  # noqa: E402

if TYPE_CHECKING:
    from sim.city import City
    from sim.model import SegregationModel

SERIES = {
    "Residential (districts)": "seg_res_ses_H",
    "Schools": "seg_school_ses_H",
    "Catchments (residents)": "seg_catchment_ses_H",
    "Daycares": "seg_daycare_ses_H",
    "Language, schools": "seg_school_lang_H",
    "Language, residential": "seg_res_lang_H",
}


def _save(fig: plt.Figure, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, bbox_inches="tight", format="png"))
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


def draw_map(model: SegregationModel, ax: plt.Axes, labels: np.ndarray, title: str) -> None:
    """Status map with sea, borders of ``labels``, renewal districts and schools."""
    c = model.city
    sea = (~c.land).reshape(c.width, c.height).T
    ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap(["#9ecae1"]), vmin=0, vmax=1)
    im = ax.imshow(status_grid(model), cmap="RdYlBu", vmin=0, vmax=2)
    ax.add_collection(LineCollection(border_segments(labels, c), colors="black", lw=1.2))
    ren = np.where(model.renewal_cell, 1, 0)
    ax.add_collection(LineCollection(border_segments(ren, c), colors="magenta", lw=2.2))
    for level, marker in ((0, "o"), (1, "s")):
        cells = model.schools.cell[model.schools.level == level]
        x, y = np.divmod(cells, c.height)
        ax.scatter(x, y, marker=marker, s=22, c="white", edgecolors="black", linewidths=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def draw_all(model: SegregationModel, metrics: pd.DataFrame, out: Path) -> list[Path]:
    """Draw every figure of a run into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    c = model.city
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    draw_map(model, axes[0], c.catchment_lower, "Family status, lower-grade catchments")
    im = draw_map(model, axes[1], c.catchment_upper, "Family status, upper-grade catchments")
    cb = fig.colorbar(im, ax=axes, shrink=0.8)
    cb.set_label("mean status of families (0 low, 2 high)")
    fig.suptitle(f"Year {model.year}: circles lower schools, squares upper schools, black lines "
                 "catchment borders, magenta lines urban-renewal areas, blue sea", fontsize=10)
    paths.append(out / "map_status_catchments.png")
    _save(fig, paths[-1])

    units = model.recorder.unit_frames[-1]
    sch = units[units["kind"].str.startswith("school")].copy()
    tot = sch[["enrol_ses0", "enrol_ses1", "enrol_ses2"]].sum(axis=1).clip(lower=1)
    sch = sch.assign(low=sch["enrol_ses0"] / tot, mid=sch["enrol_ses1"] / tot,
                     high=sch["enrol_ses2"] / tot,
                     foreign=sch["enrol_lang1"] / tot).sort_values(["kind", "low"])
    fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(sch)), 4.5))
    xs = np.arange(len(sch))
    bottom = np.zeros(len(sch))
    for col, colour, name in (("low", "#d73027", "low status"), ("mid", "#fee090", "middle"),
                              ("high", "#4575b4", "high status")):
        ax.bar(xs, sch[col], bottom=bottom, color=colour, label=name, width=0.85)
        bottom += sch[col].to_numpy()
    ax.plot(xs, sch["foreign"], "k.", label="foreign-language share")
    n_lower = int((sch["kind"] == "school_lower").sum())
    ax.axvline(n_lower - 0.5, color="grey", lw=1)
    ax.set_xticks(xs, sch["unit_id"], rotation=90, fontsize=6)
    ax.set_ylabel("share of pupils")
    ax.set_title(f"School composition in year {model.year} (left: grades 1-6, right: 7-9)")
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    paths.append(out / "school_composition.png")
    _save(fig, paths[-1])

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label, col in SERIES.items():
        axes[0].plot(metrics["year"], metrics[col], label=label)
    axes[0].set_title("Segregation, Theil's H")
    axes[0].legend(fontsize=7)
    axes[1].plot(metrics["year"], metrics["excess_school_ses_H"], label="status")
    axes[1].plot(metrics["year"], metrics["excess_school_lang_H"], label="language")
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_title("Excess school segregation (school H - catchment H)")
    axes[1].legend(fontsize=7)
    for col, label in (("local_school_share_g1", "grade 1"), ("local_school_share_g7", "grade 7"),
                       ("local_school_share_g1_renewal", "grade 1, renewal areas"),
                       ("local_school_share_g7_renewal", "grade 7, renewal areas")):
        axes[2].plot(metrics["year"], metrics[col], label=label)
    axes[2].set_title("Share attending the catchment school")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("year")
    paths.append(out / "index_timeseries.png")
    _save(fig, paths[-1])
    return paths
