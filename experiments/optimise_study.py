"""The persistent multi-objective search behind ``experiments.optimise``.

Optuna's ask/tell drives the evaluation layer (``sim.evaluation``) one generation at a time:

1. ask a generation of ``population`` trials from the sampler (NSGA-II, or TPE with
   constraints), reseeded per generation from ``sampler_seed`` and the generation's index,
   so a resumed search asks what an uninterrupted one would have asked;
2. write the generation's trial numbers to ``generations/g<k>/trials.json`` (atomic);
3. run every candidate with the replicate seeds as one evaluation-layer study in that folder
   (chunks on disk, atomic; finished chunks are skipped when the folder is evaluated again);
4. compute each candidate's paired effects against its baseline twin (same seed: common
   random numbers; the twin is run once per seed in ``baseline/`` and shared by all
   candidates), and tell Optuna the means; the per-seed effects go to the trial's user
   attributes.

Persistence is the Optuna SQLite file ``study.db`` plus the chunk files. On resume, trials
of a written generation that were asked but not told are told from their chunk files if
these are done (nothing is run again) or run if not; a trial asked before its generation was
written (a kill during the ask) is marked failed and its generation asked again, with the
same sampler seed, so the same candidates come back (under new trial numbers).

This module is generic: the runner, the context and the seeds are passed in, so a stub
evaluator with a known Pareto front tests the search (tests/test_optimise.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from scipy import stats

from experiments.optimise_space import Space
from sim.evaluation import EvaluationConfig, Runner, evaluate
from sim.io import write_text

log = logging.getLogger(__name__)
SAMPLERS = ("nsga2", "tpe")
STUDY_NAME = "optimise"
BASELINE = "baseline"
BASELINE_SCENARIO = {"name": BASELINE, "description": "No policy change.", "levers": []}


@dataclass
class Search:
    """What a search needs: the space, how to run a scenario, seeds and the budget."""

    space: Space
    runner: Runner  # sim.evaluation runner: run_scenario_task, or a stub in tests
    context: dict  # shared context of the runner, without "scenarios"
    seeds: list[int]  # replicate seeds (replicate r uses seeds[r] for every candidate)
    years: int  # the horizon: the last simulated year
    evaluation: EvaluationConfig
    sampler: str = "nsga2"
    population: int = 12
    generations: int = 4
    sampler_seed: int = 0
    progress: bool = False


def candidate_name(number: int) -> str:
    """Scenario name of trial ``number``: ``t0012``."""
    return f"t{number:04d}"


def make_sampler(search: Search, generation: int) -> optuna.samplers.BaseSampler:
    """The sampler of one generation, seeded from the search's seed and the generation."""
    seed = search.sampler_seed + 7919 * generation
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=search.population, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=search.population,
                                      multivariate=True)


def storage(root: Path) -> optuna.storages.RDBStorage:
    """The SQLite storage of a search folder (``study.db``)."""
    root.mkdir(parents=True, exist_ok=True)
    return optuna.storages.RDBStorage(f"sqlite:///{(root / 'study.db').resolve()}")


def open_study(search: Search, root: Path) -> optuna.Study:
    """Create or load the search's study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=STUDY_NAME, storage=storage(root),
                               directions=[o.direction for o in search.space.objectives],
                               load_if_exists=True, sampler=make_sampler(search, 0))


def paired(table: pd.DataFrame, base: pd.DataFrame, search: Search,
           metrics: list[tuple[str, str]]) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """Per scenario, the paired effect of each ``(metric, window)`` per seed (seed order).

    A scenario missing a seed is left out (its chunk failed or did not finish).
    """
    out = {}
    for name, grp in table.groupby("scenario", sort=False):
        if set(grp["seed"]) != set(search.seeds):
            continue
        out[name] = {(m, w): window_values(grp, m, w, search) - window_values(base, m, w,
                                                                                search)
                     for m, w in metrics}
    return out


def window_values(rows: pd.DataFrame, metric: str, window: str, search: Search) -> np.ndarray:
    """A metric per seed (in ``search.seeds`` order): at the last year, or its run mean."""
    if window == "final":
        rows = rows[rows["year"] == search.years]
    else:
        rows = rows[rows["year"].between(1, search.years)]
    per = rows.groupby("seed")[metric].mean()
    return per.reindex(search.seeds).to_numpy(float)


def interval(diffs: np.ndarray) -> tuple[float, float]:
    """Mean and 95% t half-width of per-seed differences."""
    n = len(diffs)
    half = float(stats.t.ppf(0.975, n - 1) * np.std(diffs, ddof=1) / np.sqrt(n))
    return float(np.mean(diffs)), half


def needed(space: Space) -> list[tuple[str, str]]:
    """The ``(metric, window)`` pairs the objectives and metric constraints read."""
    pairs = [(o.metric, o.window) for o in space.objectives]
    pairs += [(c.metric, c.window) for c in space.constraints if c.metric]
    return list(dict.fromkeys(pairs))


def effects_of(search: Search, root: Path, scenarios: dict[str, dict],
               base: pd.DataFrame | None = None) -> dict[str, dict]:
    """Run scenarios with the seeds in ``root`` and return their per-seed paired effects.

    Args:
        search: The search (runner, context, seeds).
        root: Evaluation-layer study folder.
        scenarios: Scenario dicts by name.
        base: The baseline twin's table (``None``: ``scenarios`` holds the baseline).
    """
    tasks = [{"scenario": name, "seed": s, "replicate": r}
             for name in scenarios for r, s in enumerate(search.seeds)]
    study = evaluate(search.runner, {**search.context, "scenarios": scenarios}, tasks, root,
                     search.evaluation, search.progress)
    table = study.table()
    if base is None:
        return {"table": table}
    return paired(table, base, search, needed(search.space)) if not table.empty else {}


def baseline_table(search: Search, root: Path) -> pd.DataFrame:
    """The baseline twin of every seed, run once in ``root/baseline``.

    Raises:
        ValueError: If a baseline run failed (every candidate is paired with it).
    """
    table = effects_of(search, root / BASELINE, {BASELINE: BASELINE_SCENARIO})["table"]
    if table.empty or set(table["seed"]) != set(search.seeds):
        raise ValueError(f"{root / BASELINE}: the baseline runs did not all finish; see the "
                         "failed chunks there and run the same command again")
    return table


def tell_values(search: Search, diffs: dict[tuple[str, str], np.ndarray],
                values: dict[str, Any]) -> tuple[list[float], dict[str, Any]]:
    """Objective means to tell Optuna and the user attributes of one evaluated candidate."""
    space = search.space
    objective, attrs = [], {"effects": {}, "half_widths": {}}
    for o in space.objectives:
        d = diffs[(o.metric, o.window)] * o.scale
        mean, half = interval(d)
        objective.append(mean)
        attrs["effects"][o.name] = d.tolist()
        attrs["half_widths"][o.name] = half
    cons = []
    for c in space.constraints:
        if c.metric:
            cons.append(c.violation(float(np.mean(diffs[(c.metric, c.window)]))))
        else:
            block = next(b for b in space.levers if c.param.startswith(b.name + "."))
            on = not block.optional or values[block.switch]
            cons.append(c.violation(float(values[c.param])) if on else -1.0)
    attrs["constraints"] = cons
    return objective, attrs


def generation_dir(root: Path, generation: int) -> Path:
    """Folder of one generation."""
    return root / "generations" / f"g{generation:03d}"


def written_generations(root: Path) -> dict[int, list[int]]:
    """Generation index -> trial numbers, from the ``trials.json`` files."""
    out = {}
    for path in sorted((root / "generations").glob("g*/trials.json")):
        out[int(path.parent.name[1:])] = json.loads(path.read_text())
    return out


def describe(space: Space, values: dict[str, Any]) -> str:
    """A candidate's description: its levers and their searched settings, in one line."""
    parts = []
    for b in space.levers:
        if b.optional and not values[b.switch]:
            continue
        args = ", ".join(f"{a}={_fmt(values[p.name])}" for a, p in b.search.items())
        parts.append(f"{b.name} ({b.lever}{': ' + args if args else ''})")
    return "Found by experiments.optimise (space " + space.name + "): " + (
        "; ".join(parts) if parts else "no lever") + "."


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_generation(study: optuna.Study, search: Search, root: Path, generation: int,
                   numbers: list[int], base: pd.DataFrame) -> None:
    """Evaluate a written generation and tell Optuna every trial of it not told yet."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    scenarios = {}
    for n in numbers:
        values = search.space.values(trials[n].params)
        scenarios[candidate_name(n)] = search.space.scenario(
            candidate_name(n), values, describe(search.space, values))
    effects = effects_of(search, generation_dir(root, generation), scenarios, base)
    for n in numbers:
        if trials[n].state.is_finished():
            continue
        name = candidate_name(n)
        if name not in effects:
            study.tell(n, state=optuna.trial.TrialState.FAIL)
            log.error("trial %d failed: a run of %s did not finish (see the failed chunks "
                      "of %s)", n, name, generation_dir(root, generation))
            continue
        values = search.space.values(trials[n].params)
        objective, attrs = tell_values(search, effects[name], values)
        live = optuna.trial.Trial(study, trials[n]._trial_id)  # a trial asked earlier
        for key, value in {**attrs, "generation": generation}.items():
            live.set_user_attr(key, value)
        for c, value in zip(search.space.constraints, attrs["constraints"], strict=True):
            live.set_constraint(c.name, value)  # the samplers keep infeasible ones back
        study.tell(live, objective)


def run_search(search: Search, root: Path) -> optuna.Study:
    """Create or resume the search in ``root`` and run it to ``generations`` generations.

    Returns:
        The study (every finished trial told, with its per-seed effects as user attributes).
    """
    root = Path(root)
    study = open_study(search, root)
    base = baseline_table(search, root)
    written = written_generations(root)
    in_generation = {n for ns in written.values() for n in ns}
    for t in study.get_trials(deepcopy=False):  # asked during a kill, before its generation
        if not t.state.is_finished() and t.number not in in_generation:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    for g, numbers in sorted(written.items()):
        study.sampler = make_sampler(search, g)
        if any(not study.get_trials(deepcopy=False)[n].state.is_finished() for n in numbers):
            log.info("resuming generation %d (trials %d-%d)", g, numbers[0], numbers[-1])
            run_generation(study, search, root, g, numbers, base)
    for g in range(len(written), search.generations):
        study.sampler = make_sampler(search, g)
        asked = [study.ask() for _ in range(search.population)]
        for trial in asked:
            search.space.suggest(trial)
        numbers = [t.number for t in asked]
        write_text(json.dumps(numbers), generation_dir(root, g) / "trials.json")
        log.info("generation %d of %d: trials %d-%d", g + 1, search.generations, numbers[0],
                 numbers[-1])
        run_generation(study, search, root, g, numbers, base)
    return study
