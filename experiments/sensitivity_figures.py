"""The Morris figure of ``experiments.sensitivity``: one readable panel per output.

Each output gets its own panel with a plain title (``output_title``): the factors as
horizontal bars of mu*, largest first, with their 95% interval, sigma as a dot, and the
replicate noise level of mu* as a dashed line; factors whose interval does not clear the
noise are drawn pale. A panel grows with the number of factors and the panels wrap onto rows,
so the labels never overlap whatever the size of the space.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.summary import METRICS  # noqa: E402
from sim.io import atomic_write  # noqa: E402

PANEL_COLUMNS = 2  # panels per row
EXTRA = {  # plain names of outputs the report's metric list does not hold
    "seg_catchment_ses_H": "Status segregation of the catchments' school-age residents",
    "seg_cell_ses_H": "Status segregation between grid cells",
}


def short(name: str) -> str:
    """A factor's label in figures: the last two named parts of its path (scenario first)."""
    scenario, _, path = str(name).rpartition(":")
    label = ".".join([p for p in path.split(".") if not p.isdigit()][-2:])
    return f"{scenario}: {label}" if scenario else label


def metric_label(metric: str) -> str:
    """A metric's plain name (its column name if it has none)."""
    if metric in METRICS:
        return METRICS[metric].label
    return EXTRA.get(metric, metric)


def output_title(name: str) -> str:
    """A plain title for an output column such as ``x-baseline:seg_school_ses_H@15-20``."""
    effect, _, rest = name.rpartition(":")
    effect = effect.rsplit("-", 1)[0]  # "<scenario>-baseline"
    metric, _, years = rest.partition("@")
    when = f"year {years}" if "-" not in years else f"years {years} (mean)"
    title = f"{metric_label(metric)}, {when}"
    return f"Effect of {effect} (scenario minus baseline) on:\n{title}" if effect else title


def plot_morris(indices: pd.DataFrame, path: Path) -> None:
    """Write ``morris_figure`` as a PNG."""
    fig = morris_figure(indices)
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def morris_figure(indices: pd.DataFrame) -> plt.Figure:
    """One panel per output: mu* bars with intervals, sigma dots, the noise level of mu*."""
    outputs = list(dict.fromkeys(indices["output"]))
    n_factors = indices["factor"].nunique()
    ncol = min(PANEL_COLUMNS, len(outputs))
    nrow = -(-len(outputs) // ncol)
    panel_h = 1.4 + 0.3 * n_factors
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.5 * ncol, panel_h * nrow + 0.8),
                             squeeze=False, layout="constrained")
    for ax in axes.ravel()[len(outputs):]:
        ax.axis("off")
    for ax, out in zip(axes.ravel(), outputs, strict=False):
        rows = indices[indices["output"] == out]
        mu = rows[rows["index"] == "mu_star"].set_index("factor")
        sigma = rows[rows["index"] == "sigma"].set_index("factor")["value"]
        mu = mu.sort_values("value", ascending=True)  # largest at the top
        y = np.arange(len(mu))
        above = mu["above_noise"].astype(bool).to_numpy()
        err = np.vstack([(mu["value"] - mu["ci_low"]).clip(lower=0),
                         (mu["ci_high"] - mu["value"]).clip(lower=0)])
        ax.barh(y, mu["value"], xerr=err, capsize=2, height=0.6,
                color=np.where(above, "#3b6ea5", "#c9d6e6"), label="mu* (with 95% interval)")
        ax.plot(sigma.reindex(mu.index), y, "o", color="#d95f02", ms=4,
                label="sigma (non-linear or interacting)")
        ax.axvline(float(mu["noise_level"].iloc[0]), color="grey", ls="--",
                   label="replicate noise level of mu*")
        ax.set_yticks(y, [short(f) for f in mu.index], fontsize=8)
        ax.set_xlim(left=0)
        ax.set_xlabel("change of the output over the factor's range", fontsize=9)
        ax.set_title(output_title(out), fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Morris screening: which assumptions move each output (pale bars: within "
                 "the replicate noise)", fontsize=11)
    return fig
