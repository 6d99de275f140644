"""A stub evaluator with a known Pareto front, for ``experiments.optimise_study``.

The candidate's two searched arguments (``x1``, ``x2`` in [0, 1], carried by an engagement
lever block so the space parses as a real one) give ZDT1-like objectives,
``cost = x1`` (million euros) and ``gap = 1 - sqrt(x1) + x2``, whose Pareto front is
``gap = 1 - sqrt(cost)`` at ``x2 = 0``. Every run adds its seed's noise to
both metrics; the baseline twin has the same noise, so the paired effect is exact.

``python tests/toy_front.py <root> <generations>`` runs a search (the kill/resume test runs
this in a subprocess); with ``TOY_KILL_AT=<n>`` the process dies (``os._exit``) when it
reaches its n-th run; every run appends ``scenario seed`` to ``$TOY_LOG``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pandas as pd

from experiments.optimise_space import parse_space
from experiments.optimise_study import Search, run_search
from sim.evaluation import EvaluationConfig

SPACE = {
    "name": "toy",
    "levers": [{"name": "toy", "lever": "engagement",
                "search": {"coverage": {"low": 0.0, "high": 1.0},
                           "info_gain": {"low": 0.0, "high": 1.0}}}],
    "objectives": [{"metric": "policy_cost_eur"}, {"metric": "outcome_gap_decile"}],
}
SEEDS = [0, 1]
_RUNS = {"n": 0}


def true_gap(cost: float) -> float:
    """The Pareto front: the least gap reachable at a cost."""
    return 1.0 - math.sqrt(cost)


def toy_runner(context: dict, task: dict) -> dict:
    """One stub run: the ZDT1-like metrics of the task's scenario, plus the seed's noise."""
    _RUNS["n"] += 1
    if os.environ.get("TOY_KILL_AT") and _RUNS["n"] >= int(os.environ["TOY_KILL_AT"]):
        os._exit(3)  # a killed job: no clean-up, nothing written
    if os.environ.get("TOY_LOG"):
        with open(os.environ["TOY_LOG"], "a") as f:
            f.write(f"{task['scenario']} {task['seed']}\n")
    levers = context["scenarios"][task["scenario"]]["levers"]
    noise = 0.1 * math.sin(7.0 * task["seed"] + 1.0)
    if levers:
        x1, x2 = levers[0]["coverage"], levers[0]["info_gain"]
        cost, gap = x1, 1.0 - math.sqrt(x1) + x2
    else:
        cost, gap = 0.0, 0.0
    return {"table": pd.DataFrame({
        "scenario": [task["scenario"]], "seed": [task["seed"]],
        "replicate": [task["replicate"]], "year": [context["years"]],
        "policy_cost_eur": [cost * 1e6], "outcome_gap_decile": [gap + noise]})}


def toy_search(generations: int, population: int = 6, sampler: str = "nsga2") -> Search:
    """The toy search: serial evaluation, chunks of one run."""
    return Search(parse_space(SPACE, "space toy"), toy_runner, {"years": 1}, SEEDS, 1,
                  EvaluationConfig(backend="serial", chunk_size=1), sampler, population,
                  generations, sampler_seed=5)


if __name__ == "__main__":
    run_search(toy_search(int(sys.argv[2])), Path(sys.argv[1]))
