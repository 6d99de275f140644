"""Choose the burn-in length: ``python -m experiments.burn_in city=small [seeds=3 years=100]``.

Runs the model from the freshly generated city (``start=fresh``) for ``years`` years on
``seeds`` replicate seeds and applies the convergence rule the default ``burn_in_years``
rests on (docs/settled.md):

    the burn-in is the first year t after which the 5-year moving average of the
    replicate mean of every key index stays within 5% of its long-run mean (the mean of
    the last half of the run), or within twice the standard error of that moving
    average over the seeds where replicate noise is larger, and at least 0.005.

Writes ``burn_in.csv`` (per year and index: replicate mean, moving average, long-run mean,
relative deviation) to ``out`` (default ``outputs/burn_in_<preset>``) and logs the year found
for each index and overall. Other arguments are model overrides.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from experiments.cli import key_value_command, split_options
from sim.config import Config, load_config
from sim.model import SegregationModel
from sim.settle import ABS_FLOOR, KEY_INDICES, TOLERANCE, WINDOW

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.burn_in [key=value ...]

Runs the generated city (start=fresh) on replicate seeds and applies the convergence rule
that chose the default burn_in_years; writes burn_in.csv.

main options:
  city=small|helsinki  seeds=3  years=100  out=outputs/burn_in_<preset>
  any other key=value is a model override
"""

# The rule's indices and tolerances, shared with warm re-settling (sim.settle).
FLOOR = ABS_FLOOR  # absolute tolerance for indices near zero
BURN_IN_YEARS = Config.burn_in_years  # the default, whose evidence this prints


def one_run(overrides: list[str]) -> pd.DataFrame:
    """Metrics of one fresh-start run, with the composition shares added."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    model = SegregationModel(load_config([*overrides, "start=fresh"]))
    model.run()
    df = model.recorder.metrics_frame()
    units = model.recorder.units_frame()
    sch = units[units["kind"].str.startswith("school")].groupby("year")
    df["pupil_foreign_share"] = (sch["enrol_lang1"].sum() / sch["enrolled"].sum()).to_numpy()
    areas = model.recorder.areas_frame()
    d = areas[areas["kind"] == "district"].groupby("year")
    kids = d[["children_ses0", "children_ses1", "children_ses2"]].sum()
    df["children_low_status_share"] = (kids["children_ses0"] / kids.sum(axis=1)).to_numpy()
    return df


def settle_year(runs: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """First year after which the moving average stays within tolerance of the long-run mean.

    The tolerance is 5% of the long-run mean, or twice the standard error of the moving
    average over the seeds where replicate noise is larger (noisy indices on small cities
    are then not mistaken for trends), and at least ``FLOOR``.

    Args:
        runs: One index, years as rows and seeds as columns.

    Returns:
        That year (the run length if never) and the per-year table.
    """
    ma_seed = runs.rolling(WINDOW, center=True, min_periods=1).mean()
    ma = ma_seed.mean(axis=1)
    se = ma_seed.std(axis=1, ddof=1).fillna(0.0) / np.sqrt(runs.shape[1])
    mean = runs.mean(axis=1)
    longrun = mean[mean.index >= mean.index.max() / 2].mean()
    tol = np.maximum(np.maximum(TOLERANCE * abs(longrun), 2 * se), FLOOR)
    dev = (ma - longrun).abs()
    outside = np.flatnonzero((dev > tol).to_numpy())
    year = int(mean.index[min(outside[-1] + 1, len(mean) - 1)]) if len(outside) else int(
        mean.index[0])
    table = pd.DataFrame({"year": mean.index, "mean": mean.to_numpy(),
                          "moving_average": ma.to_numpy(), "long_run_mean": longrun,
                          "tolerance": tol.to_numpy(),
                          "relative_deviation": (dev / max(abs(longrun), 1e-12)).to_numpy(),
                          "within": (dev <= tol).to_numpy()})
    return year, table


def study(argv: list[str]) -> None:
    """Run the seeds, apply the rule, write ``burn_in.csv``."""
    opts, overrides = split_options(argv, {"seeds": "3", "years": "100", "out": ""})
    cfg = load_config(overrides)
    out = Path(opts["out"] or f"outputs/burn_in_{cfg.city.preset}")
    runs = Parallel(n_jobs=min(int(opts["seeds"]), 2))(
        delayed(one_run)([*overrides, f"seed={s}", f"years={opts['years']}",
                          "output.progress=false"]) for s in range(1, int(opts["seeds"]) + 1))
    rows, found = [], {}
    for name in KEY_INDICES:
        per_seed = pd.concat([r.set_index("year")[name] for r in runs], axis=1)
        found[name], table = settle_year(per_seed)
        rows.append(table.assign(index=name))
        late = table[table["year"] >= BURN_IN_YEARS]
        slope = np.polyfit(late["year"], late["mean"], 1)[0] * 10 if len(late) > 1 else np.nan
        log.info("%-28s year 0 %.3f, settles after year %3d (long-run mean %.4f); "
                 "trend after year %d: %+.4f per decade", name, table["mean"].iloc[0],
                 found[name], table["long_run_mean"].iloc[0], BURN_IN_YEARS, slope)
    out.mkdir(parents=True, exist_ok=True)
    pd.concat(rows).to_csv(out / "burn_in.csv", index=False)
    log.info("burn-in by the rule: %d years (%s, %s seeds, %s years) -> %s",
             max(found.values()), cfg.city.preset, opts["seeds"], opts["years"], out)


def main(argv: list[str]) -> None:
    """Entry point (``--help`` for the usage)."""
    key_value_command(argv, study, None, USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
