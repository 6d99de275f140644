"""Effects with parameter uncertainty: scenarios over posterior draws x seeds.

``python -m experiments.compare uncertainty=posterior draws=K replicates=R`` runs every
scenario for K parameter sets drawn from the calibration's posterior (``posterior.csv`` of
``experiments.calibrate method=abc``; the shipped one is ``calibration/posterior_<city>.csv``)
and R seeds each. Every draw and seed is one pair: the scenario and its baseline twin share
the draw's parameters, its settled city and the seed's random numbers.

Each effect is then read as a one-way random-effects design (draws as groups, seeds within
them). With ``d_kr`` the paired difference of draw k and seed r:

* ``sigma2_chance``: the pooled within-draw variance of ``d_kr`` (chance);
* ``tau2_params``: the between-draw variance of the draw means less its chance part,
  ``max(var_k(mean_r d_kr) - sigma2_chance / R, 0)`` (the parameters);
* the interval ``mean +- t sqrt(tau2 + tau2 / K + sigma2 / (K R))``: where the effect of
  the true parameters lies, given the posterior, plus the Monte Carlo error of the mean;
  ``t`` is Student's 97.5% quantile with ``K - 1`` degrees of freedom (the draws), or with the
  within-draw ones when the draws do not differ (``tau2 = 0``), so the interval is never
  narrower than the chance-only one;
* ``ci_low_chance`` / ``ci_high_chance``: the chance-only t-interval (as with
  ``uncertainty=seeds``), and ``param_share = tau2 / (tau2 + sigma2)``, the part of one
  run's spread that comes from the parameters;
* ``p_value``: two-sided, of the mean against the same total standard deviation and ``t``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from sim.config import Config, as_dict, get_path

UNCERTAINTY = ("seeds", "posterior")
POSTERIOR_EXTRA = ("weight", "distance")  # columns of posterior.csv that are no parameter
ROOT = Path(__file__).resolve().parent.parent


def posterior_path(city: str, given: str) -> Path:
    """The posterior file: ``given``, or the shipped ``calibration/posterior_<city>.csv``."""
    return Path(given) if given else ROOT / "calibration" / f"posterior_{city}.csv"


def draw_values(path: Path, draws: int, seed: int, base: Config) -> list[dict[str, float]]:
    """``draws`` parameter sets resampled from a weighted posterior, deterministically.

    Systematic resampling on the particles' weights (in file order), with the offset from
    ``seed``: the same file, K and seed give the same draws.

    Raises:
        ValueError: A missing or unreadable file, no parameter column, a column that is no
            config key, or non-positive weights; one line each.
    """
    if not path.is_file():
        raise ValueError(f"posterior={path} does not exist; expected the posterior.csv of "
                         "python -m experiments.calibrate method=abc (shipped with ship=true "
                         "as calibration/posterior_<city>.csv)")
    post = pd.read_csv(path)
    keys = [c for c in post.columns if c not in POSTERIOR_EXTRA]
    if not keys or "weight" not in post.columns:
        raise ValueError(f"posterior={path} has no parameter columns and weight; expected the "
                         "columns of an ABC posterior.csv (parameter keys, weight, distance)")
    tree = as_dict(base)
    for k in keys:
        try:
            get_path(tree, k)
        except ValueError:
            raise ValueError(f"posterior={path}: column {k!r} is not a config key") from None
    w = post["weight"].to_numpy(float)
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise ValueError(f"posterior={path}: weight must be finite, >= 0 and not all 0")
    edges = np.cumsum(w / w.sum())
    u = (np.random.default_rng(seed).random() + np.arange(draws)) / draws
    rows = np.minimum(np.searchsorted(edges, u, side="right"), len(post) - 1)
    return [{k: float(post[k].iloc[i]) for k in keys} for i in rows]


def posterior_effects(raw: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Paired effects over draws and seeds, with parameter-and-chance intervals.

    Args:
        raw: Per-run metrics with columns ``scenario, draw, seed, year`` and the metrics.
        metrics: Metric columns to compare.

    Returns:
        One row per non-baseline scenario, metric and year: the columns of
        ``experiments.compare.EFFECT_COLUMNS`` plus ``ci_low_chance, ci_high_chance,
        tau2_params, sigma2_chance, param_share, n_draws``.
    """
    key = ["draw", "seed", "year"]
    base = raw[raw["scenario"] == "baseline"].set_index(key)
    rows = []
    for name, grp in raw[raw["scenario"] != "baseline"].groupby("scenario", sort=False):
        s = grp.set_index(key)
        common = s.index.intersection(base.index)
        for metric in metrics:
            d = (s.loc[common, metric] - base.loc[common, metric]).rename("d").reset_index()
            for year, dy in d.groupby("year"):
                b = base.loc[common, metric].xs(year, level="year")
                v = s.loc[common, metric].xs(year, level="year")
                rows.append({"scenario": name, "metric": metric, "year": int(year),
                             "baseline_mean": float(b.mean()),
                             "scenario_mean": float(v.mean()),
                             **decompose(dy.dropna(subset=["d"]))})
    return pd.DataFrame(rows)


def decompose(d: pd.DataFrame) -> dict[str, float]:
    """The random-effects summary of one effect's pairs (columns ``draw``, ``d``)."""
    n = len(d)
    by = d.groupby("draw")["d"]
    k, r = by.ngroups, by.size()
    mean = float(d["d"].mean()) if n else math.nan
    out = {"mean_diff": mean, "n_replicates": n, "n_draws": k}
    dof_w = int((r - 1).sum())
    if k < 2 or dof_w < 1:
        return {**out, **dict.fromkeys(("ci_low", "ci_high", "p_value", "ci_low_chance",
                                        "ci_high_chance", "tau2_params", "sigma2_chance",
                                        "param_share"), math.nan)}
    sigma2 = float(((d["d"] - by.transform("mean")) ** 2).sum() / dof_w)
    r_mean = float(r.mean())
    tau2 = max(float(by.mean().var(ddof=1)) - sigma2 / r_mean, 0.0)
    sd = math.sqrt(tau2 * (1 + 1 / k) + sigma2 / n)
    se_chance = math.sqrt(sigma2 / n)
    half = float(stats.t.ppf(0.975, dof_w)) * se_chance
    dof = min(k - 1, dof_w) if tau2 > 0 else dof_w
    q = float(stats.t.ppf(0.975, dof))
    if sd > 0:
        p = float(2 * stats.t.sf(abs(mean) / sd, dof))
    else:
        p = 1.0 if mean == 0 else 0.0
    total = tau2 + sigma2
    return {**out, "ci_low": mean - q * sd, "ci_high": mean + q * sd, "p_value": p,
            "ci_low_chance": mean - half, "ci_high_chance": mean + half, "tau2_params": tau2,
            "sigma2_chance": sigma2, "param_share": tau2 / total if total > 0 else math.nan}
