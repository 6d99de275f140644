"""Runner of one scenario simulation, for the evaluation layer (``sim.evaluation``).

A task is ``{"scenario": name, "seed": int, "replicate": int, "values": {path: value},
**labels}``; the context holds what all tasks share: ``config`` (the base model config as a
dict), ``scenarios`` (name -> scenario dict), and optionally ``metrics`` and ``years`` (keep
only these columns and years: sensitivity studies need a few numbers per run, not the whole
table) and ``maps`` (also return what the comparison report draws, and the pupils of all schools and
the low-status ones among them per year, columns ``pupils`` and ``pupils_ses0``) and
``anchor`` (a behaviour: a task whose behaviour differs settles warm from that behaviour's
settled state of its city and seed, ``sim.settle``; the warm states are kept in
``checkpoint_dir`` for the other scenarios of the same point).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import pandas as pd

from calibration import fit
from scenarios import build_levers
from sim.config import Config, set_path, validate
from sim.metrics import counts
from sim.model import SegregationModel
from sim.settle import anchor_config

LABELS = ("scenario", "seed", "replicate")  # label columns every task carries


def task_config(context: dict, task: dict) -> Config:
    """The validated model config of one task: base, scenario, parameter values and seed."""
    d = copy.deepcopy(context["config"])
    d["scenario"] = copy.deepcopy(context["scenarios"][task["scenario"]])
    for path, value in task.get("values", {}).items():
        set_path(d, path, value)
    d["seed"] = task["seed"]
    return validate(d)


def families_by_status(model: SegregationModel) -> np.ndarray:
    """Families per cell and status class (cells x 3)."""
    f = model.families
    a = f.active & (f.cell >= 0)
    return counts(f.cell[a], f.ses[a], model.city.n_cells, 3)


def build_task_model(context: dict, task: dict) -> SegregationModel:
    """The model of one task, its levers built and bound, at year 0 (not run yet).

    Levers are built here and passed to the model (entry points own lever construction).
    """
    cfg = task_config(context, task)
    levers = build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")
    anchor = anchor_config(cfg, context["anchor"]) if context.get("anchor") else None
    return SegregationModel(cfg, levers=levers, checkpoints=cfg.checkpoint_dir or None,
                            anchor=anchor)


def metrics_table(model: SegregationModel, context: dict, task: dict) -> pd.DataFrame:
    """A run's metrics table as runners return it.

    The task's labels come first; only the context's ``years`` and ``metrics`` are kept.
    """
    df = model.recorder.metrics_frame()
    if "years" in context:
        df = df[df["year"].isin(context["years"])]
    if "metrics" in context:
        df = df[["year", *context["metrics"]]]
    labels = {k: v for k, v in task.items() if k != "values"}
    return pd.concat([pd.DataFrame({k: [v] * len(df) for k, v in labels.items()}),
                      df.reset_index(drop=True)], axis=1)


def run_scenario_task(context: dict, task: dict) -> dict[str, Any]:
    """Run one scenario replicate; return its metrics table (and report maps if asked)."""
    logging.getLogger("MESA").setLevel(logging.WARNING)  # no per-step log lines
    model = build_task_model(context, task)
    cfg = model.cfg
    catch0 = (model.city.catchment_lower.copy(), model.city.catchment_upper.copy())
    status0 = families_by_status(model)
    model.run()
    df = metrics_table(model, context, task)
    if context.get("maps"):
        # Pupils by year, for the report's sizes (how many low-status pupils a change of
        # the dissimilarity index means).
        units = model.recorder.units_frame()
        pupils = units[units["kind"].str.startswith("school")].groupby("year")[
            ["enrol_ses0", "enrolled"]].sum()
        df = df.assign(pupils_ses0=df["year"].map(pupils["enrol_ses0"]).to_numpy(float),
                       pupils=df["year"].map(pupils["enrolled"]).to_numpy(float))
    out: dict[str, Any] = {"table": df}
    if context.get("maps"):
        out.update({
            "scenario": cfg.scenario.name, "replicate": task["replicate"],
            "status0": status0, "status": families_by_status(model), "catchments0": catch0,
            "catchments": (model.city.catchment_lower.copy(),
                           model.city.catchment_upper.copy()),
            "shared": model.shared_cell.copy(), "levers": [repr(lv) for lv in model.levers],
            "description": cfg.scenario.description,
        })
    return out


def run_particle(context: dict, task: dict) -> dict[str, Any]:
    """Runner of one calibration candidate and seed (``calibration.fit.run_particle``).

    Here, in the entry points' layer, because the study designs' levers are built by the
    policy layer (``scenarios.build_levers``).
    """
    return fit.run_particle(context, task, build_levers)
