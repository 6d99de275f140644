"""Scenario comparison with common random numbers.

``python -m experiments.compare scenarios='[baseline,tp_funding,engagement]' replicates=8
years=20`` runs every scenario with the same replicate seeds (replicate r uses
``seed + r`` in every scenario) through the evaluation layer (``sim.evaluation``: in
parallel on the available cores by default, or ``evaluation.backend=serial|hydra``; finished
chunks are skipped when the same command is run again), and writes to its run directory:

* ``effects.csv``: paired differences against the baseline for the key metrics at every
  year, ``scenario, metric, year, baseline_mean, scenario_mean, mean_diff, ci_low, ci_high,
  n_replicates, p_value`` (95% t-intervals over replicates, two-sided paired t-test);
* ``replicates.parquet``: the raw per-replicate metrics (one row per scenario, replicate and
  year);
* ``report.html``: a self-contained report for non-modellers (``experiments.report``);
* ``config.yaml``, ``provenance.json``: the resolved comparison config, package versions and
  git state; ``chunks/``: the runs' results (``python -m experiments.collect <dir>`` rebuilds
  the outputs from them).

Any model parameter can be overridden as in ``experiments.run`` (``city=helsinki``,
``behaviour.school.enabled=false``...); they apply to every scenario. Year 0 is the settled
city (``start=settled``, default): each replicate's burn-in runs once, and every scenario of
that replicate starts from its checkpoint; ``start=fresh`` starts from the generated city.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf
from scipy import stats
from tqdm import tqdm

from experiments.cli import entry, user_errors
from experiments.i18n import Text, check_language, default_language
from experiments.report import horizons, write_report
from experiments.summary import METRICS, Context, report_cells, summary
from experiments.tasks import run_scenario_task, task_config
from experiments.uncertainty import UNCERTAINTY, draw_values, posterior_effects, posterior_path
from scenarios import build_levers
from sim.config import (
    CONF_DIR,
    Config,
    as_dict,
    check_keys,
    check_overrides,
    validate,
)
from sim.evaluation import EvaluationConfig, Study, evaluate, load_context
from sim.evaluation import check as check_evaluation
from sim.io import atomic_write, write_parquet
from sim.model import SegregationModel
from sim.outputs import write_provenance
from sim.settle import anchor_config

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.compare [key=value ...]

Runs policy scenarios on the same city with the same replicate seeds (common random
numbers) and writes effects.csv, replicates.parquet and report.html.

main options:
  scenarios='[baseline,tp_funding,engagement]'  baseline first; names or scenario files
  replicates=8  years=20  horizons='[10,20]'     replicate seeds, years, report horizons
  uncertainty=posterior draws=8 replicates=4     parameter draws x seeds (posterior=<csv>)
  city=small|helsinki|from_files                 any model override applies to every scenario
  evaluation.backend=joblib|serial|hydra          evaluation.n_jobs=0 (all cores)
  evaluation.launcher=submitit_slurm              the hydra backend on a SLURM cluster
  hydra.run.dir=out/cmp                           fixed folder: a re-run computes what is missing
"""

KEY_METRICS = (
    "seg_school_ses_H", "seg_school_lang_H", "seg_res_ses_H", "seg_res_lang_H",
    "seg_daycare_ses_H", "excess_school_ses_H", "seg_school_ses_D", "local_school_share_g1",
    "local_school_share_g1_renewal", "local_school_share_g7", "local_school_share_g7_renewal",
    "outcome_gap_decile", "outmigration_rate", "move_rate", "policy_cost_eur",
)


EFFECT_COLUMNS = ("scenario", "metric", "year", "baseline_mean", "scenario_mean", "mean_diff",
                  "ci_low", "ci_high", "n_replicates", "p_value")


@dataclass
class CompareConfig(Config):
    """A model config plus what to compare."""

    scenarios: list[str] = field(default_factory=lambda: ["baseline", "tp_funding",
                                                          "engagement"])
    # Measured on city=helsinki (docs/report.md): with 12 replicates the 95% intervals of the
    # headline effects at 20 years are about +-0.02 school years (learning gap), +-0.003
    # (school status H) and +-1.6 percentage points (renewal-area local-school share).
    replicates: int = 12
    horizons: list[int] = field(default_factory=lambda: [10, 20])
    lang: str = ""  # fi | sv | en for the report and summary; empty: the user's locale
    # seeds: intervals from chance (replicate seeds); posterior: also from the parameters,
    # over `draws` parameter sets of the posterior file (experiments/uncertainty.py).
    uncertainty: str = "seeds"
    draws: int = 8  # assumption: enough for a between-draw variance, not for its tails
    posterior: str = ""  # default: calibration/posterior_<city>.csv
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


ConfigStore.instance().store(name="compare_base", node=CompareConfig)

SCENARIO_KEYS = ("name", "description", "levers")  # what a scenario file must give


def available_scenarios() -> list[str]:
    """Names of the shipped scenarios (``conf/scenario/*.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / "scenario").glob("*.yaml"))


def scenario_config(base: Config, name: str) -> Config:
    """``base`` with a scenario, validated.

    Args:
        base: The shared model config.
        name: A shipped scenario (``conf/scenario/<name>.yaml``) or the path of a scenario
            file of one's own (``*.yaml``).

    Raises:
        ValueError: Unknown scenario, or a scenario whose levers are invalid.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONF_DIR / "scenario" / (
        name + ".yaml")
    if not path.is_file():
        raise ValueError(f"scenarios: {name!r} is not a scenario; available: "
                         f"{', '.join(available_scenarios())} or the path of a .yaml file")
    d = as_dict(base)
    try:
        d["scenario"] = load_scenario(path)
        cfg = validate(d)
        scenario_levers(cfg)
        return cfg
    except ValueError as exc:
        raise ValueError(f"scenario file {path}: {exc}") from exc


def load_scenario(path: Path) -> dict[str, Any]:
    """Read a scenario file: a mapping with ``name``, ``description`` and ``levers``.

    Raises:
        ValueError: Not valid YAML (with line and column), not a mapping, or a key of
            ``SCENARIO_KEYS`` missing; the values are checked by ``validate`` (unknown keys
            too) and ``build_levers``.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"not valid YAML{where}: {problem}; expected a mapping with name, "
                         "description and levers (indent with spaces, not tabs)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"the file holds {type(data).__name__} {data!r:.60}; expected a "
                         "mapping with name, description and levers")
    missing = [k for k in SCENARIO_KEYS if k not in data]
    if missing:
        raise ValueError(f"{', '.join(missing)} missing; expected a mapping with "
                         f"{', '.join(SCENARIO_KEYS)} (docs/strategy.md, Writing a scenario)")
    return data


def split(cfg: CompareConfig) -> tuple[Config, dict[str, Any]]:
    """Separate the model config from the comparison settings, and check the latter."""
    d = as_dict(cfg)
    opts = {k: d.pop(k) for k in ("scenarios", "replicates", "horizons", "lang", "evaluation",
                                  "uncertainty", "draws", "posterior")}
    opts["lang"] = check_language(opts["lang"]) if opts["lang"] else default_language()
    if not opts["scenarios"] or opts["scenarios"][0] != "baseline":
        raise ValueError(f"scenarios={opts['scenarios']!r} is not allowed; expected a list "
                         "starting with baseline")
    if len(set(opts["scenarios"])) != len(opts["scenarios"]):
        raise ValueError(f"scenarios={opts['scenarios']!r} lists a scenario twice")
    if not isinstance(opts["replicates"], int) or opts["replicates"] < 2:
        raise ValueError(f"replicates={opts['replicates']!r} is not allowed; expected >= 2")
    check_evaluation(EvaluationConfig(**opts["evaluation"]))
    if opts["uncertainty"] not in UNCERTAINTY:
        raise ValueError(f"uncertainty={opts['uncertainty']!r} is not allowed; expected one of "
                         f"{list(UNCERTAINTY)}")
    if isinstance(opts["draws"], bool) or not isinstance(opts["draws"], int) \
            or opts["draws"] < 2:
        raise ValueError(f"draws={opts['draws']!r} is not allowed; expected an integer >= 2 "
                         "(posterior parameter sets)")
    horizons = opts["horizons"]
    if not horizons or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                           for h in horizons):
        raise ValueError(f"horizons={horizons!r} is not allowed; expected years >= 1 at which "
                         "the report shows effects (those beyond years are left out)")
    return validate(d), opts


def scenario_levers(cfg: Config, where: str = "") -> list:
    """The levers of ``cfg``'s scenario, built fresh (levers keep per-run state).

    Args:
        cfg: A config with its scenario.
        where: How messages name the scenario (default: ``scenario <name>``).
    """
    return build_levers(cfg.scenario.levers, where or f"scenario {cfg.scenario.name}")


def check_levers(cfgs: dict[str, Config]) -> None:
    """Build each scenario's model once, checking lever targets against the city.

    Unknown school ids or overlapping shared catchments then fail before any run starts or
    any file is written.
    """
    for name, cfg in cfgs.items():
        try:
            SegregationModel(cfg, levers=scenario_levers(cfg),
                             checkpoints=cfg.checkpoint_dir or None)
        except ValueError as exc:
            raise ValueError(f"scenario {name}: {exc}") from exc


def settle(cfg: Config, anchor: dict | None = None) -> None:
    """Compute (or find) the settled-state checkpoint of ``cfg`` (``sim.checkpoint``).

    With ``anchor`` (a behaviour) a ``cfg`` of another behaviour settles warm from the
    anchor's settled state (``sim.settle``), as its runs will.
    """
    logging.getLogger("MESA").setLevel(logging.WARNING)
    SegregationModel(cfg, checkpoints=cfg.checkpoint_dir,
                     anchor=anchor_config(cfg, anchor) if anchor else None)


def settle_replicates(base: Config, replicates: int, n_jobs: int,
                      progress: bool = True) -> None:
    """One settled state per replicate seed (``settle_cities`` of ``base``'s seeds)."""
    settle_cities([replace(base, seed=base.seed + r) for r in range(replicates)], n_jobs,
                  progress)


def settle_cities(cities: list[Config], n_jobs: int, progress: bool = True,
                  anchor: dict | None = None) -> None:
    """One settled state per replicate city (seed, and draw), in parallel, before any run.

    Every scenario of a replicate then restores its baseline twin's state, so the burn-in
    runs once per replicate, not once per scenario and replicate. One progress bar. With
    ``anchor`` (a behaviour), cities of another behaviour settle warm from it.
    """
    base = cities[0]
    if base.start != "settled" or not base.checkpoint_dir or base.burn_in_years == 0:
        return
    done = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
        delayed(settle)(c, anchor) for c in cities)
    for _ in tqdm(done, total=len(cities), desc="settling cities", unit="city",
                  disable=not progress):
        pass


def replicate_tasks(base: Config, names: list[str], opts: dict[str, Any]) -> list[dict]:
    """The tasks: every scenario x replicate.

    With ``uncertainty=posterior`` a replicate is a posterior draw and a seed: task
    ``replicate`` numbers them ``draw * replicates + seed offset``, ``draw`` names the draw
    and ``values`` holds its parameters.
    """
    r_n = opts["replicates"]
    if opts["uncertainty"] == "seeds":
        return [{"scenario": n, "seed": base.seed + r, "replicate": r}
                for n in names for r in range(r_n)]
    path = posterior_path(base.city.preset, opts["posterior"])
    draws = draw_values(path, opts["draws"], base.seed, base)
    return [{"scenario": n, "seed": base.seed + r, "replicate": k * r_n + r, "draw": k,
             "values": values}
            for n in names for k, values in enumerate(draws) for r in range(r_n)]


def paired_effects(raw: pd.DataFrame, metrics: tuple[str, ...] = KEY_METRICS) -> pd.DataFrame:
    """Paired differences (scenario - baseline, same replicate seed) with 95% t-intervals.

    A metric and year with fewer than two pairs (``n_replicates`` < 2, e.g. a rate that is
    empty in most replicates) has no interval: ``ci_low`` and ``ci_high`` are empty (NaN),
    and the report says so instead of calling the change clear or not.

    Args:
        raw: Per-replicate metrics with columns ``scenario, replicate, year`` and metrics.
        metrics: Metric columns to compare.

    Returns:
        One row per non-baseline scenario, metric and year.
    """
    base = raw[raw["scenario"] == "baseline"].set_index(["replicate", "year"])
    rows = []
    for name, grp in raw[raw["scenario"] != "baseline"].groupby("scenario", sort=False):
        s = grp.set_index(["replicate", "year"])
        common = s.index.intersection(base.index)
        for metric in metrics:
            diff = (s.loc[common, metric] - base.loc[common, metric]).unstack("replicate")
            b = base.loc[common, metric].unstack("replicate")
            v = s.loc[common, metric].unstack("replicate")
            n = diff.notna().sum(axis=1)
            mean = diff.mean(axis=1)
            # Fewer than two pairs: no interval (NaN), not a zero-width one; identical
            # differences (before a lever starts) give a zero-width interval.
            sd = diff.std(axis=1, ddof=1).where(n >= 2)
            se = sd / np.sqrt(n)
            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * se
            rows.append(pd.DataFrame({
                "scenario": name, "metric": metric, "year": diff.index.astype(int),
                "baseline_mean": b.mean(axis=1).to_numpy(),
                "scenario_mean": v.mean(axis=1).to_numpy(), "mean_diff": mean.to_numpy(),
                "ci_low": (mean - half).to_numpy(), "ci_high": (mean + half).to_numpy(),
                "n_replicates": n.to_numpy(), "p_value": p_values(mean, se, n),
            }))
    if not rows:  # only the baseline was run
        return pd.DataFrame(columns=list(EFFECT_COLUMNS))
    return pd.concat(rows, ignore_index=True)


def p_values(mean: pd.Series, se: pd.Series, n: pd.Series) -> np.ndarray:
    """Two-sided p-values of paired t-tests (mean difference 0), NaN with fewer than 2 pairs.

    Identical differences (zero spread) give 1 when they are all zero (before a lever
    starts) and 0 otherwise (a change without noise).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = np.abs(mean.to_numpy()) / se.to_numpy()
    p = 2 * stats.t.sf(tstat, np.maximum(n.to_numpy() - 1, 1))
    zero_spread = se.to_numpy() == 0
    p[zero_spread] = np.where(mean.to_numpy()[zero_spread] == 0, 1.0, 0.0)
    p[n.to_numpy() < 2] = np.nan
    return p


def compare(cfg: CompareConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run the comparison and write ``effects.csv``, ``replicates.parquet``, ``report.html``.

    Args:
        cfg: Comparison config.
        out_dir: Run directory.
        progress: Show a progress bar.

    Returns:
        The paths written and the effects table.

    Raises:
        ValueError: A config or scenario error (before anything runs), or chunks that failed
            or did not finish (named by id; re-running the command runs only those).
    """
    base, opts = split(cfg)
    scen_cfgs: dict[str, Config] = {}
    for entry_name in opts["scenarios"]:
        c = scenario_config(base, entry_name)
        if c.scenario.name in scen_cfgs:
            raise ValueError(f"scenarios={opts['scenarios']!r}: {entry_name} has name: "
                             f"{c.scenario.name}, as an earlier scenario; expected distinct "
                             "names (they label the results)")
        scen_cfgs[c.scenario.name] = c
    opts["scenarios"] = list(scen_cfgs)
    check_levers(scen_cfgs)
    shared = as_dict(base)
    shared.pop("scenario")
    context = {"config": shared, "maps": True,
               "scenarios": {n: as_dict(c)["scenario"] for n, c in scen_cfgs.items()}}
    tasks = replicate_tasks(base, list(scen_cfgs), opts)
    # A replicate's city is its baseline task's (seed, and draw): settled before any run.
    cities = [task_config(context, t) for t in tasks if t["scenario"] == "baseline"]
    if opts["uncertainty"] == "posterior":  # each draw settles warm from the base behaviour
        context["anchor"] = as_dict(base)["behaviour"]
    write_provenance(out_dir, as_dict(cfg))
    settle_cities(cities, opts["evaluation"]["n_jobs"] or -1, progress, context.get("anchor"))
    study = evaluate(run_scenario_task, context, tasks, out_dir,
                     EvaluationConfig(**opts["evaluation"]), progress)
    return finish(study)


def finish(study: Study) -> dict[str, Any]:
    """Write the comparison's outputs from its finished chunks.

    Raises:
        ValueError: If chunks failed or are missing (named by id).
    """
    if not study.complete:
        raise ValueError(f"{study.root}: {study.summary()}; run the same command again to "
                         "compute what is missing")
    cfg = OmegaConf.load(study.root / "config.yaml")
    base, opts = split(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CompareConfig),
                                                           cfg)))
    raw = study.table()
    opts["scenarios"] = list(dict.fromkeys(raw["scenario"]))  # plan order: as asked
    # Posterior draws: intervals from the parameters and chance (experiments.uncertainty).
    effects = (posterior_effects(raw, KEY_METRICS) if "draw" in raw.columns
               else paired_effects(raw))
    write_parquet(raw, study.root / "replicates.parquet")
    atomic_write(study.root / "effects.csv", lambda p: effects.to_csv(p, index=False))
    report = write_report(list(study.extras()), raw, effects, opts, base,
                          study.root / "report.html", load_context(study.root)["scenarios"])
    return {"effects": effects, "report": report, "raw": raw, "lang": opts["lang"],
            "summary": summary_text(raw, effects, opts, base)}


def summary_text(raw: pd.DataFrame, effects: pd.DataFrame, opts: dict[str, Any],
                 base: Config) -> str:
    """The report's generated summary as plain lines, for the command line."""
    t = Text(opts["lang"])
    cells = report_cells(effects, horizons(base.years, opts["horizons"]))
    lead, per = summary(cells, Context(raw, effects), t,
                        lambda m: t.gettext(METRICS[m].label))
    return "\n".join([lead, *("\n".join(["- " + lines[0], *("  " + x for x in lines[1:])])
                               for lines in per)])


@hydra.main(config_path="../conf", config_name="compare", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate, compare the scenarios and print where the outputs went."""
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    t0 = time.perf_counter()
    with user_errors(out_dir):  # config and scenario errors come before any output
        check_overrides(list(hc.overrides.task))
        check_keys(dcfg, CompareConfig)
        cfg = OmegaConf.to_object(dcfg)
        result = compare(cfg, out_dir, progress=cfg.output.progress)
    log.info("%s", result["summary"])
    log.info("compared %d scenarios x %d replicates in %.0f s", len(cfg.scenarios),
             cfg.replicates, time.perf_counter() - t0)
    log.info("outputs written to %s (open report.html)", out_dir.resolve())


if __name__ == "__main__":
    entry(main, USAGE)
