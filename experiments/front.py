"""The Pareto front of a search: which candidates no other beats, and how sure we are.

* ``trials_frame``: every told trial of a study: lever settings, objective means with 95%
  intervals (paired effects against the baseline twin over the replicate seeds), constraint
  values and whether they hold;
* ``pareto``: the non-dominated rows among the feasible ones;
* ``indistinguishable``: front points whose objective differences all lie within their
  intervals (the intervals overlap in every objective), so the replicates cannot tell them
  apart;
* ``kept_place``: after a re-evaluation with fresh seeds, which front points are still on
  the front of the re-evaluated points;
* ``beats``: per reference scenario, the cheapest point that beats it on the chosen
  outcomes at equal or lower cost, with paired intervals against the reference;
* ``plot_front``, ``scenario_file``: the Pareto plot and a point as a scenario file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from experiments.optimise_space import Objective, Space  # noqa: E402
from experiments.optimise_study import candidate_name, describe, interval  # noqa: E402
from sim.io import write_text  # noqa: E402


def objective_columns(o: Objective) -> list[str]:
    """The columns of one objective: mean, interval ends."""
    return [o.name, f"{o.name}_low", f"{o.name}_high"]


def effect_row(space: Space, effects: dict[str, list[float]]) -> dict[str, Any]:
    """Objective means and intervals of per-seed effects (``{objective name: [per seed]}``)."""
    row: dict[str, Any] = {}
    for o in space.objectives:
        mean, half = interval(np.asarray(effects[o.name], float))
        row.update(dict(zip(objective_columns(o), (mean, mean - half, mean + half),
                            strict=True)))
    return row


def trials_frame(study: optuna.Study, space: Space) -> pd.DataFrame:
    """One row per completed trial (see the module docstring), by trial number."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        values = space.values(t.params)
        cons = t.user_attrs["constraints"]
        rows.append({"trial": t.number, "scenario": candidate_name(t.number),
                     "generation": t.user_attrs["generation"], **values,
                     **effect_row(space, t.user_attrs["effects"]),
                     **{f"constraint {c.name}": v for c, v in zip(space.constraints, cons,
                                                                     strict=True)},
                     "feasible": all(v <= 0 for v in cons),
                     "description": describe(space, values)})
    return pd.DataFrame(rows)


def signed(df: pd.DataFrame, space: Space) -> np.ndarray:
    """Objective means with the sign that makes lower better (rows x objectives)."""
    return np.column_stack([df[o.name].to_numpy(float) * (1 if o.better == "lower" else -1)
                            for o in space.objectives])


def pareto_mask(scores: np.ndarray) -> np.ndarray:
    """True for rows that no other row dominates (lower is better in every column)."""
    n = len(scores)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = (np.all(scores <= scores[i], axis=1) & np.any(scores < scores[i], axis=1))
        keep[i] = not dominated.any()
    return keep


def pareto(trials: pd.DataFrame, space: Space) -> pd.DataFrame:
    """The feasible non-dominated trials, cheapest first, with ``indistinguishable_from``."""
    feasible = trials[trials["feasible"]].reset_index(drop=True)
    if feasible.empty:
        return feasible.assign(indistinguishable_from="")
    front = feasible[pareto_mask(signed(feasible, space))]
    front = front.sort_values([space.objectives[0].name, "trial"]).reset_index(drop=True)
    return front.assign(indistinguishable_from=indistinguishable(front, space))


def indistinguishable(front: pd.DataFrame, space: Space) -> list[str]:
    """Per point, the trials whose intervals overlap its own in every objective."""
    lo = np.column_stack([front[f"{o.name}_low"] for o in space.objectives])
    hi = np.column_stack([front[f"{o.name}_high"] for o in space.objectives])
    out = []
    for i in range(len(front)):
        overlap = np.all((lo <= hi[i]) & (hi >= lo[i]), axis=1)
        overlap[i] = False
        out.append(" ".join(str(n) for n in front["trial"][overlap]))
    return out


def kept_place(recheck: pd.DataFrame, space: Space) -> np.ndarray:
    """True for re-evaluated front points that are still non-dominated among themselves."""
    return pareto_mask(signed(recheck, space))


def beats(front: pd.DataFrame, references: pd.DataFrame, space: Space,
          outcomes: list[str], effects: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """Per reference, the cheapest front point better on every outcome at no higher cost.

    Args:
        front: Front points (``pareto``).
        references: Reference scenarios' rows (``effect_row`` plus ``scenario``).
        space: The space.
        outcomes: Objective names that must be better (e.g. the gap and school H).
        effects: Per-seed effects by scenario name (trials and references), for the
            paired difference point minus reference (the same seeds).

    Returns:
        One row per reference: its cost, the point (empty if none), the point's cost and,
        per outcome, the paired difference with its interval and whether it is clear (the
        interval excludes zero on the better side).
    """
    goal = {o.name: (1 if o.better == "lower" else -1) for o in space.objectives}
    cost = space.objectives[0].name
    rows = []
    for ref in references.itertuples(index=False):
        ref = ref._asdict()
        better = front[front[cost] <= ref[cost] + 1e-12]
        for name in outcomes:
            better = better[goal[name] * (better[name] - ref[name]) < 0]
        row: dict[str, Any] = {"reference": ref["scenario"], "reference_cost": ref[cost],
                               "point": "", "trial": np.nan, "cost": np.nan}
        if not better.empty:
            best = better.sort_values([cost, "trial"]).iloc[0]
            row.update(point=best["scenario"], trial=int(best["trial"]), cost=best[cost],
                       description=best["description"])
            for name in outcomes:
                d = (np.asarray(effects[best["scenario"]][name])
                     - np.asarray(effects[ref["scenario"]][name]))
                mean, half = interval(d)
                row.update({f"{name}_diff": mean, f"{name}_diff_low": mean - half,
                            f"{name}_diff_high": mean + half,
                            f"{name}_clear": bool(goal[name] * (mean + goal[name] * half) < 0)})
        rows.append(row)
    return pd.DataFrame(rows)


def beats_all(front: pd.DataFrame, references: pd.DataFrame, space: Space,
              outcomes: list[str]) -> pd.DataFrame:
    """Front points better than every reference on each outcome (means), at no higher cost."""
    if references.empty or front.empty:
        return front.iloc[:0]
    goal = {o.name: (1 if o.better == "lower" else -1) for o in space.objectives}
    cost = space.objectives[0].name
    ok = front[cost] <= references[cost].min() + 1e-12
    for name in outcomes:
        best = (goal[name] * references[name]).min()
        ok &= goal[name] * front[name] < best
    return front[ok]


def plot_front(trials: pd.DataFrame, front: pd.DataFrame, references: pd.DataFrame,
               space: Space, path: Path) -> None:
    """Cost against each outcome: every trial, the front with 95% intervals, the references."""
    cost, outcomes = space.objectives[0], space.objectives[1:]
    fig, axes = plt.subplots(1, len(outcomes), figsize=(5.2 * len(outcomes), 4.4),
                             squeeze=False)
    for ax, o in zip(axes[0], outcomes, strict=True):
        ax.scatter(trials[cost.name], trials[o.name], s=10, color="0.75", label="candidates")
        for df, colour, label in ((front, "C0", "Pareto front"),
                                  (references, "C3", "shipped scenarios")):
            if df.empty:
                continue
            ax.errorbar(df[cost.name], df[o.name],
                        xerr=[df[cost.name] - df[f"{cost.name}_low"],
                              df[f"{cost.name}_high"] - df[cost.name]],
                        yerr=[df[o.name] - df[f"{o.name}_low"],
                              df[f"{o.name}_high"] - df[o.name]],
                        fmt="o" if colour == "C0" else "s", color=colour, ms=4, capsize=2,
                        lw=0.8, label=label)
        for r in references.itertuples(index=False):
            ax.annotate(r.scenario, (getattr(r, cost.name), getattr(r, o.name)), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color="C3")
        ax.axhline(0, color="0.5", lw=0.6, ls=":")
        ax.set_xlabel("cost of the levers (million euros a year)")
        ax.set_ylabel(f"{o.metric}: change vs the baseline ({o.better} is better)")
        ax.legend(fontsize=7)
    fig.suptitle(f"Cost-outcome front (space {space.name}; bars: 95% intervals over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scenario_file(scenario: dict[str, Any], path: Path) -> Path:
    """Write a scenario dict as a file ``experiments.compare`` accepts as it is."""
    body = yaml.safe_dump({k: scenario[k] for k in ("name", "description", "levers")},
                          sort_keys=False, default_flow_style=None, width=95)
    write_text("# @package scenario\n" + body, path)
    return path
