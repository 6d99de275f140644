"""Published studies replicated in the model: ``python -m experiments.replicate city=helsinki``.

For every moment of ``calibration/targets.yaml`` that a study design serves (``design:``,
``calibration.studies``) or that a study's estimator computes on the plain run
(``studies.ESTIMATORS``: Bernelius & Vilkama's catchment flows), and for the base rates they
rest on (the ``grade9_*`` moments), this
command runs the fitted city over ``seeds`` replicate seeds through the evaluation layer:
the plain settled decade and each design's run from the same settled state. It reports, per
moment, the published value and its ``sd``, the model's value under the study's own
estimator with a 95% t-interval over seeds, and, for a difference-in-differences design, the
design's true effect on its funded schools (the design run minus its twin, same seed), which
shows how far the study's estimator recovers the model's own effect.

Options (``key=value``; anything else is a model override such as
``behaviour.outcomes.resource_effect=15``): ``seeds`` (4), ``backend`` (joblib) and
``n_jobs`` (0: all cores), ``out`` (``outputs/replicate_<preset>``), ``ship`` (false: true
also writes ``calibration/replicate_<preset>.csv``). ``python -m experiments.replicate
report`` rewrites the table of ``docs/studies.md`` from the shipped files.

Writes ``replicate.csv``, ``runs.parquet`` (one row per seed), ``config.yaml`` and
``provenance.json``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from calibration import studies
from calibration.moments import Moment, horizon_of, load_targets
from experiments.cli import is_yes, key_value_command, split_options, write_docs_table
from scenarios import build_levers
from sim.config import CONF_DIR, as_dict, load_config, validate
from sim.evaluation import EvaluationConfig, evaluate
from sim.evaluation import check as check_evaluation
from sim.io import atomic_write, write_parquet
from sim.outputs import write_provenance

log = logging.getLogger(__name__)
ROOT = CONF_DIR.parent
DOCS_PAGE = ROOT / "docs" / "studies.md"
MARKERS = ("<!-- studies-table:start -->", "<!-- studies-table:end -->")
USAGE = """\
usage: python -m experiments.replicate [key=value ...]
       python -m experiments.replicate report

Runs the published studies' designs on the fitted city and puts the simulated register
through each study's estimator (Silliman 2017, Bernelius & Vilkama 2019); report rewrites
docs/studies.md's table.

main options:
  city=small|helsinki  seeds=4  backend=joblib|serial  n_jobs=0 (all cores)
  out=outputs/replicate_<preset>  ship=false (also write calibration/replicate_<preset>.csv)
  any other key=value is a model override (behaviour.outcomes.resource_effect=15)
"""
OPTIONS = {"seeds": "4", "backend": "joblib", "n_jobs": "0", "out": "", "ship": "false"}
BASE_RATES = ("grade9_",)  # the descriptive moments the studies' outcomes rest on
TRUE_EFFECT = {"silliman_did": studies.silliman_effect}  # estimator -> the design's truth


def study_moments(preset: str) -> list[Moment]:
    """The moments a study design or estimator serves, and their base rates."""
    return [m for m in load_targets(preset=preset)
            if m.design is not None or m.statistic in studies.ESTIMATORS
            or m.name.startswith(BASE_RATES)]


def run_study_task(context: dict, task: dict) -> dict:
    """One seed: every study moment, and each design's true effect (evaluation runner)."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    cfg = validate({**context["config"], "seed": task["seed"]})
    moments = study_moments(cfg.city.preset)
    designs = {m.design.name: m.design for m in moments if m.design}
    # Anchored on itself: the settled state is cached in the checkpoint folder (cold).
    outs, _ = studies.simulate(cfg, designs, build_levers, anchor=cfg)
    row: dict[str, float] = {"seed": task["seed"]}
    for m in moments:
        row[m.name] = m.simulate(outs[m.design and m.design.name])
        truth = TRUE_EFFECT.get(m.statistic)
        if truth is not None and m.design is not None:
            row[f"{m.name}__true"] = truth(outs[None], outs[m.design.name], m.years, **m.args)
    return {"table": pd.DataFrame([row])}


def interval(v: pd.Series) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds."""
    v = v.dropna()
    n = len(v)
    half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def summarise(runs: pd.DataFrame, moments: list[Moment]) -> pd.DataFrame:
    """Per moment: published value, sd, the model's value and interval, its true effect."""
    rows = []
    for m in moments:
        mean, lo, hi = interval(runs[m.name])
        t_mean, t_lo, t_hi = (interval(runs[f"{m.name}__true"])
                              if f"{m.name}__true" in runs else (np.nan,) * 3)
        rows.append({"moment": m.name, "published": m.observed_text, "sd": m.sd,
                     "source": m.source, "model": mean, "ci_low": lo, "ci_high": hi,
                     "z": m.deviation(mean) / m.sd, "true_effect": t_mean,
                     "true_low": t_lo, "true_high": t_hi, "seeds": int(runs[m.name].notna().sum())})
    return pd.DataFrame(rows)


def replicate(argv: list[str]) -> Path:
    """Run the designs on every seed, write the table; returns the output folder."""
    opts, overrides = split_options(argv, OPTIONS)
    cfg = load_config([*overrides, "output.progress=false", "output.figures=false"])
    moments = study_moments(cfg.city.preset)
    if not moments:
        raise ValueError(f"city={cfg.city.preset}: no study moment applies to this preset")
    cfg = validate({**as_dict(cfg), "years": horizon_of(moments)})
    studies.check_levers({m.design.name: m.design for m in moments if m.design},
                         build_levers)
    evaluation = EvaluationConfig(backend=opts["backend"], chunk_size=1,
                                  n_jobs=int(opts["n_jobs"]))
    check_evaluation(evaluation)
    out = Path(opts["out"] or f"outputs/replicate_{cfg.city.preset}")
    context = {"config": as_dict(cfg)}
    tasks = [{"seed": cfg.seed + r} for r in range(int(opts["seeds"]))]
    write_provenance(out, {**context["config"], "replicate": opts})
    study = evaluate(run_study_task, context, tasks, out / "study", evaluation)
    if not study.complete:
        raise ValueError(f"{out / 'study'}: {study.summary()}; run the same command again "
                         "to compute what is missing")
    runs = study.table()
    table = summarise(runs, moments)
    write_parquet(runs, out / "runs.parquet")
    atomic_write(out / "replicate.csv", lambda p: table.to_csv(p, index=False))
    if is_yes(opts["ship"]):
        atomic_write(ROOT / "calibration" / f"replicate_{cfg.city.preset}.csv",
                     lambda p: table.to_csv(p, index=False))
    for _, r in table.iterrows():
        log.info("%-26s published %-10s model %.3f [%.3f, %.3f]  true effect %.3f",
                 r["moment"], r["published"], r["model"], r["ci_low"], r["ci_high"],
                 r["true_effect"])
    log.info("studies replicated on %s -> %s", cfg.city.preset, out)
    return out


def studies_table() -> str:
    """The docs' table, from the shipped ``calibration/replicate_<preset>.csv``."""
    files = {p: ROOT / "calibration" / f"replicate_{p}.csv" for p in ("small", "helsinki")}
    tables = {p: pd.read_csv(f) for p, f in files.items() if f.exists()}
    if not tables:
        return "No shipped replication yet (`calibration/replicate_<preset>.csv`).\n"
    lines = ["| moment | city | published (sd) | model, same estimator [95%] | "
             "true effect in the model [95%] |", "|---|---|---|---|---|"]
    for preset, t in tables.items():
        for _, r in t.iterrows():
            truth = ("" if pd.isna(r["true_effect"]) else
                     f"{r['true_effect']:+.3f} [{r['true_low']:+.3f}, {r['true_high']:+.3f}]")
            lines.append(f"| {r['moment']} | {preset} | {r['published']} ({r['sd']:g}) | "
                         f"{r['model']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
                         f"{truth} |")
    return "\n".join(lines) + "\n"


def report(page: Path = DOCS_PAGE) -> None:
    """Rewrite the studies table of ``page`` from the shipped files; say so."""
    write_docs_table(page, MARKERS, studies_table(), "calibration/replicate_<preset>.csv")


def main(argv: list[str]) -> None:
    """Entry point: the replication, or ``report`` to regenerate the docs' table."""
    key_value_command(argv, replicate, report, USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
