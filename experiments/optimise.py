"""Search lever settings for the cost-outcome Pareto front.

``python -m experiments.optimise space=default population=12 generations=4 replicates=4
years=10`` searches the levers of ``conf/optimise/<space>.yaml`` (``experiments.
optimise_space``) with Optuna's NSGA-II (``sampler=tpe``: TPE with constraints). Every
candidate runs from the settled city (``start=settled``: one burn-in per seed, cached)
against its baseline twin with the same ``replicates`` seeds (common random numbers),
through the evaluation layer, one generation at a time (``experiments.optimise_study``);
the study (``study.db``) resumes: run the same command again after a kill and nothing
finished is run twice. The shipped scenarios (``references``) run with the same seeds as
reference points. Writes to its run directory:

* ``trials.csv``: every told candidate: lever settings, objectives (paired effects at
  ``years``, cost in million euros a year) with 95% intervals, constraints;
* ``front.csv``: the feasible non-dominated candidates, cheapest first, with
  ``indistinguishable_from`` (front points whose intervals overlap in every objective) and,
  with ``recheck=true``, ``kept_place`` (still on the front when re-run with fresh seeds);
* ``references.csv``, ``beats.csv``: the shipped scenarios' objectives, and per scenario the
  cheapest front point that beats it on the learning gap and school status H at no higher
  cost, with paired intervals;
* ``front.png``: the Pareto plot with intervals and the shipped scenarios;
* ``front/<trial>.yaml``: each front point as a scenario file for ``experiments.compare``;
* ``summary.md``: the same in plain words.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from experiments.cli import entry, user_errors
from experiments.compare import (
    available_scenarios,
    load_scenario,
    scenario_config,
    settle_replicates,
)
from experiments.front import (
    beats,
    beats_all,
    effect_row,
    kept_place,
    pareto,
    plot_front,
    scenario_file,
    trials_frame,
)
from experiments.optimise_space import Space, load_space
from experiments.optimise_study import (
    BASELINE,
    SAMPLERS,
    Search,
    baseline_table,
    effects_of,
    run_search,
)
from experiments.tasks import run_scenario_task
from sim.config import CONF_DIR, Config, as_dict, validate
from sim.evaluation import EvaluationConfig
from sim.evaluation import check as check_evaluation
from sim.io import atomic_write, write_text
from sim.model import SegregationModel
from sim.outputs import write_provenance

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.optimise [key=value ...]

Searches lever settings (Optuna NSGA-II or TPE) for the cost-outcome Pareto front, every
candidate against its baseline twin with the same seeds; writes front.csv, front.png,
beats.csv, summary.md and each front point as a scenario file (front/).

main options:
  space=default|path.yaml          levers, objectives, constraints (conf/optimise/)
  population=12  generations=4     candidates per generation, generations
  replicates=4  years=10           seeds per candidate, the horizon
  sampler=nsga2|tpe  recheck=true  re-run the front with fresh seeds
  evaluation.backend=joblib|serial|hydra  evaluation.n_jobs=2
  hydra.run.dir=out/opt            fixed folder: a re-run resumes the study
"""
OUTCOMES = ("outcome_gap_decile", "seg_school_ses_H")  # what a point must beat a scenario on
RECHECK_OFFSET = 1000  # fresh seeds: seed + 1000 + r


@dataclass
class OptimiseConfig(Config):
    """A model config plus the search."""

    space: str = "default"  # conf/optimise/<space>.yaml or the path of a .yaml file
    sampler: str = "nsga2"  # nsga2 | tpe
    population: int = 12  # candidates per generation; assumption (NSGA-II wants >= ~10)
    generations: int = 4  # assumption: an affordable budget on 2 cores (docs/optimise.md)
    replicates: int = 4  # seeds per candidate; 2 is the least that gives an interval
    sampler_seed: int = 0
    # Reference points: the shipped scenarios (empty: every shipped one but the baseline).
    references: list[str] = field(default_factory=list)
    recheck: bool = True  # re-run the front with fresh seeds and count who keeps its place
    uncertainty: str = "seeds"  # seeds | posterior (not yet: the calibration has none)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


ConfigStore.instance().store(name="optimise_base", node=OptimiseConfig)
OPTS = ("space", "sampler", "population", "generations", "replicates", "sampler_seed",
        "references", "recheck", "uncertainty", "evaluation")


def split(cfg: OptimiseConfig) -> tuple[Config, dict[str, Any]]:
    """Separate the model config from the search settings, and check the latter."""
    d = as_dict(cfg)
    opts = {k: d.pop(k) for k in OPTS}
    if opts["sampler"] not in SAMPLERS:
        raise ValueError(f"sampler={opts['sampler']!r} is not allowed; expected one of "
                         f"{list(SAMPLERS)}")
    for key, least in (("population", 2), ("generations", 1), ("replicates", 2)):
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ValueError(f"{key}={v!r} is not allowed; expected an integer >= {least}")
    if opts["uncertainty"] != "seeds":
        raise ValueError(f"uncertainty={opts['uncertainty']!r} is not allowed; expected seeds "
                         "(posterior needs the calibration's posterior, issue #16)")
    shipped = [s for s in available_scenarios() if s != BASELINE]
    opts["references"] = list(opts["references"]) or shipped
    bad = [r for r in opts["references"] if r == BASELINE]
    if bad:
        raise ValueError(f"references={opts['references']!r} is not allowed; expected "
                         "scenarios other than the baseline (every candidate is paired with it)")
    check_evaluation(EvaluationConfig(**opts["evaluation"]))
    return validate(d), opts


def check_space(space: Space, base: Config) -> None:
    """Check the objectives' and constraints' metrics against the model's columns.

    Raises:
        ValueError: A metric that is not a ``metrics.parquet`` column.
    """
    columns = set(SegregationModel(replace(base, start="fresh", years=1), levers=[])
                  .recorder.metrics_frame().columns)
    for m in space.metrics:
        if m not in columns:
            raise ValueError(f"space {space.name}: metric={m!r} is not allowed; expected a "
                             "metrics.parquet column (docs/runs.md)")


def make_search(base: Config, opts: dict[str, Any], space: Space, progress: bool,
                seed0: int | None = None) -> Search:
    """The search of a config: run_scenario_task on the base config with the seeds."""
    shared = as_dict(base)
    shared.pop("scenario")
    first = base.seed if seed0 is None else seed0
    context = {"config": shared, "metrics": space.metrics,
               "years": list(range(1, base.years + 1))}
    return Search(space, run_scenario_task, context,
                  [first + r for r in range(opts["replicates"])], base.years,
                  EvaluationConfig(**opts["evaluation"]), opts["sampler"], opts["population"],
                  opts["generations"], opts["sampler_seed"], progress)


def reference_rows(search: Search, root: Path, names: list[str],
                   base: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Objectives of scenarios run with the search's seeds, and their per-seed effects."""
    scenarios = {}
    for name in names:
        path = Path(name) if name.endswith((".yaml", ".yml")) else (
            CONF_DIR / "scenario" / f"{name}.yaml")
        s = load_scenario(path)
        scenarios[s["name"]] = {k: s[k] for k in ("name", "description", "levers")}
    effects = effects_of(search, root, scenarios, base)
    rows, per_seed = [], {}
    for name in scenarios:
        if name not in effects:
            log.error("reference %s did not finish in %s", name, root)
            continue
        per_seed[name] = {o.name: (effects[name][(o.metric, o.window)] * o.scale).tolist()
                          for o in search.space.objectives}
        rows.append({"scenario": name, **effect_row(search.space, per_seed[name])})
    return pd.DataFrame(rows), per_seed


def recheck(search: Search, root: Path, front: pd.DataFrame,
            scenarios: dict[str, dict]) -> pd.DataFrame:
    """The front re-run with fresh seeds; ``kept_place`` per point."""
    base = baseline_table(search, root)
    effects = effects_of(search, root / "points", scenarios, base)
    rows = []
    for name in front["scenario"]:
        if name in effects:
            per = {o.name: (effects[name][(o.metric, o.window)] * o.scale).tolist()
                   for o in search.space.objectives}
            rows.append({"scenario": name, **effect_row(search.space, per)})
    table = pd.DataFrame(rows)
    return table.assign(kept_place=kept_place(table, search.space)) if rows else table


def optimise(cfg: OptimiseConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Check, search, and write the outputs listed in the module docstring.

    Raises:
        ValueError: A config or space error (before any run or output).
    """
    base, opts = split(cfg)
    space, raw_space = load_space(opts["space"])
    for name in opts["references"]:
        scenario_config(base, name)  # a bad reference fails before any run
    check_space(space, base)
    search = make_search(base, opts, space, progress)
    write_provenance(out_dir, as_dict(cfg))
    write_text(OmegaConf.to_yaml(OmegaConf.create(raw_space)), out_dir / "space.yaml")
    settle_replicates(base, opts["replicates"], opts["evaluation"]["n_jobs"] or -1, progress)
    study = run_search(search, out_dir)
    trials = trials_frame(study, space)
    front = pareto(trials, space)
    refs, ref_effects = reference_rows(search, out_dir / "references", opts["references"],
                                       baseline_table(search, out_dir))
    effects = {**ref_effects, **{f"t{t.number:04d}": t.user_attrs["effects"]
                                 for t in study.get_trials(deepcopy=False)
                                 if "effects" in t.user_attrs}}
    scenarios = {}
    for r in front.itertuples(index=False):
        scenarios[r.scenario] = space.scenario(r.scenario, space.values(
            study.trials[r.trial].params), r.description)
        scenario_file(scenarios[r.scenario], out_dir / "front" / f"{r.scenario}.yaml")
    if opts["recheck"] and not front.empty:
        fresh = make_search(validate({**as_dict(base), "seed": base.seed + RECHECK_OFFSET}),
                            opts, space, progress)
        settle_replicates(replace(base, seed=fresh.seeds[0]), opts["replicates"],
                          opts["evaluation"]["n_jobs"] or -1, progress)
        again = recheck(fresh, out_dir / "recheck", front, scenarios)
        front = front.merge(again[["scenario", "kept_place"]], on="scenario", how="left")
    outcomes = [o for o in OUTCOMES if o in {x.name for x in space.objectives}]
    beat = beats(front, refs, space, outcomes, effects) if not refs.empty else pd.DataFrame()
    for name, df in (("trials", trials), ("front", front), ("references", refs),
                     ("beats", beat)):
        atomic_write(out_dir / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    plot_front(trials, front, refs, space, out_dir / "front.png")
    text = summary_text(front, refs, beat, space, outcomes, opts)
    write_text(text + "\n", out_dir / "summary.md")
    return {"trials": trials, "front": front, "references": refs, "beats": beat,
            "summary": text}


def summary_text(front: pd.DataFrame, refs: pd.DataFrame, beat: pd.DataFrame,
                 space: Space, outcomes: list[str], opts: dict[str, Any]) -> str:
    """The result in plain words: the front, who keeps its place, what beats each scenario."""
    lines = [f"{len(front)} candidates are on the cost-outcome front."]
    if "kept_place" in front:
        lines.append(f"Re-run with {opts['replicates']} fresh seeds, "
                     f"{int(front['kept_place'].fillna(False).sum())} of {len(front)} keep "
                     "their place on the front.")
    for r in beat.to_dict("records"):
        if not r["point"]:
            lines.append(f"- {r['reference']} ({r['reference_cost']:.2f} MEUR a year): no "
                         "front point is better on " + " and ".join(outcomes)
                         + " at equal or lower cost.")
            continue
        parts = [f"{o} {r[o + '_diff']:+.4g} (95%: {r[o + '_diff_low']:+.4g} to "
                 f"{r[o + '_diff_high']:+.4g}{', clear' if r[o + '_clear'] else ''})"
                 for o in outcomes]
        lines.append(f"- {r['reference']} ({r['reference_cost']:.2f} MEUR a year): the "
                     f"cheapest point that beats it is {r['point']} at {r['cost']:.2f} MEUR "
                     f"a year; against it: {'; '.join(parts)}. {r['description']}")
    winners = beats_all(front, refs, space, outcomes)
    lines.append(f"{len(winners)} front points beat every reference scenario on "
                 + " and ".join(outcomes) + " at equal or lower cost"
                 + (": " + ", ".join(winners["scenario"]) if len(winners) else "") + ".")
    return "\n".join(lines)


@hydra.main(config_path="../conf", config_name="optimise", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate, search and print the summary and where the outputs went."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    t0, c0 = time.perf_counter(), time.process_time()
    with user_errors(out_dir):  # config and space errors come before any output
        cfg = OmegaConf.to_object(dcfg)
        result = optimise(cfg, out_dir, progress=cfg.output.progress)
    log.info("%s", result["summary"])
    log.info("%d candidates in %.0f s (this process's CPU: %.0f s)", len(result["trials"]),
             time.perf_counter() - t0, time.process_time() - c0)
    log.info("outputs written to %s", out_dir.resolve())


if __name__ == "__main__":
    entry(main, USAGE)
