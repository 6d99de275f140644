"""Segregation levels of the settled city: ``python -m experiments.levels city=helsinki``.

The calibration fits flows and shares, not segregation itself (Helsinki publishes no Theil
H for its schools or districts). This command reports the levels the fitted model produces
and how much of the school segregation school choice adds, three ways:

* against the **catchments** (school H minus the H of the catchments' school-age
  residents, ``excess_school_*_H``);
* against the **neighbourhoods** (school H minus the districts' H, ``excess_school_*_H_res``,
  the comparison of Dignum et al. 2022);
* against the **choice-off world**: the same city and seeds settled and run with
  ``behaviour.school.enabled=false`` (every child at the catchment school, from the burn-in
  on), paired by seed. Movers keep their school, so a choice-off city's school H can sit
  below its catchments' H (an excess below zero); the paired difference measures choice
  itself.

The status (``ses``) rows stand beside the COMPASS model run on real Amsterdam data (Dignum
et al. 2022; ``shared/literature.md``): neighbourhood H 0.120 and D 0.35, school H 0.206
and D 0.46, over income groups rather than the model's three status classes.

Runs go through the evaluation layer (``sim.evaluation``, the scenario runner
``experiments.tasks.run_scenario_task``): ``seeds`` replicate seeds x the two worlds,
settled (``start=settled``) and run for ``years`` years; the table averages years 1 to
``years``. Options (``key=value``; anything else is a model override such as
``city=helsinki``): ``seeds`` (4), ``years`` (10), ``backend`` (joblib) and ``n_jobs`` (0:
all cores), ``out`` (``outputs/levels_<preset>``), ``ship`` (false: true also writes
``calibration/levels_<preset>.csv``). ``python -m experiments.levels report`` rewrites the
levels table of ``docs/levels.md`` (between its markers) from the shipped files and says
what it wrote.

Writes ``levels.csv`` (per measure: mean, 95% t-interval over seeds, Amsterdam value),
``runs.parquet`` (per world, seed and year), ``config.yaml``, ``provenance.json`` and
``levels.png``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from experiments.cli import is_yes, key_value_command, split_options, write_docs_table  # noqa: E402
from experiments.tasks import run_scenario_task  # noqa: E402
from sim.config import CONF_DIR, Config, as_dict, load_config  # noqa: E402
from sim.evaluation import EvaluationConfig, evaluate  # noqa: E402
from sim.evaluation import check as check_evaluation  # noqa: E402
from sim.io import atomic_write, write_parquet  # noqa: E402
from sim.outputs import write_provenance  # noqa: E402

log = logging.getLogger(__name__)
ROOT = CONF_DIR.parent
DOCS_PAGE = ROOT / "docs" / "levels.md"  # where ``report`` writes the levels table
MARKERS = ("<!-- levels-table:start -->", "<!-- levels-table:end -->")
USAGE = """\
usage: python -m experiments.levels [key=value ...]
       python -m experiments.levels report

Settles and runs the city with school choice and without it (paired by seed) and reports
segregation levels and the excess school segregation; report rewrites docs/levels.md's table.

main options:
  city=small|helsinki  seeds=4  years=10  backend=joblib|serial  n_jobs=0 (all cores)
  out=outputs/levels_<preset>  ship=false (also write calibration/levels_<preset>.csv)
  any other key=value is a model override
"""
OPTIONS = {"seeds": "4", "years": "10", "backend": "joblib", "n_jobs": "0", "out": "",
           "ship": "false"}
WORLDS = {"choice": {}, "choice_off": {"behaviour.school.enabled": False}}
# COMPASS on real Amsterdam data (Dignum et al. 2022), by measure, for the status rows.
AMSTERDAM = {"neighbourhood_H": 0.120, "school_H": 0.206, "neighbourhood_D": 0.35,
             "school_D": 0.46}
# measure -> (world, metric template); {dim} is ses or lang
MEASURES = {
    "neighbourhood_H": ("choice", "seg_res_{dim}_H"),
    "catchment_H": ("choice", "seg_catchment_{dim}_H"),
    "school_H": ("choice", "seg_school_{dim}_H"),
    "school_H_choice_off": ("choice_off", "seg_school_{dim}_H"),
    "excess_vs_catchments": ("choice", "excess_school_{dim}_H"),
    "excess_vs_neighbourhoods": ("choice", "excess_school_{dim}_H_res"),
    "excess_vs_catchments_choice_off": ("choice_off", "excess_school_{dim}_H"),
    "neighbourhood_D": ("choice", "seg_res_{dim}_D"),
    "school_D": ("choice", "seg_school_{dim}_D"),
}
DIMS = ("ses", "lang")


def run_worlds(cfg: Config, opts: dict[str, str], out: Path) -> pd.DataFrame:
    """Run both worlds on every seed through the evaluation layer; one row per run-year."""
    if cfg.start != "settled":
        raise ValueError(f"start={cfg.start!r}: the levels are of the settled city; "
                         "expected start=settled")
    # One run per chunk: the two worlds and the seeds run in parallel.
    evaluation = EvaluationConfig(backend=opts["backend"], chunk_size=1,
                                  n_jobs=int(opts["n_jobs"]))
    check_evaluation(evaluation)
    shared = as_dict(cfg)
    scenario = shared.pop("scenario")
    metrics = sorted({t.format(dim=d) for _, t in MEASURES.values() for d in DIMS})
    context = {"config": shared, "scenarios": {"baseline": scenario}, "metrics": metrics,
               "years": list(range(1, cfg.years + 1))}
    tasks = [{"scenario": "baseline", "world": world, "seed": cfg.seed + r, "replicate": r,
              "values": values}
             for r in range(int(opts["seeds"])) for world, values in WORLDS.items()]
    write_provenance(out, {**shared, "levels": opts})
    study = evaluate(run_scenario_task, context, tasks, out / "study", evaluation)
    if not study.complete:
        raise ValueError(f"{out / 'study'}: {study.summary()}; run the same command again "
                         "to compute what is missing")
    return study.table()


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per measure and dimension: mean over seeds of the run means, and a 95% t-interval.

    ``excess_vs_choice_off`` is the paired difference of school H with and without choice
    (same seed).
    """
    per_seed = runs.groupby(["world", "replicate"]).mean(numeric_only=True)
    rows = []
    for dim in DIMS:
        values = {name: per_seed.loc[world, tpl.format(dim=dim)]
                  for name, (world, tpl) in MEASURES.items()}
        values["excess_vs_choice_off"] = values["school_H"] - values["school_H_choice_off"]
        for name, v in values.items():
            v = v.dropna()
            n = len(v)
            half = (stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
            rows.append({"measure": name, "dimension": dim, "mean": v.mean(),
                         "ci_low": v.mean() - half, "ci_high": v.mean() + half, "seeds": n,
                         "amsterdam": AMSTERDAM.get(name, np.nan) if dim == "ses" else np.nan})
    return pd.DataFrame(rows)


def figure(table: pd.DataFrame, preset: str, path: Path) -> None:
    """Bars with 95% intervals per H measure and dimension; Amsterdam as markers."""
    names = ["neighbourhood_H", "catchment_H", "school_H", "school_H_choice_off"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(names))
    for i, dim in enumerate(DIMS):
        t = table[table["dimension"] == dim].set_index("measure").loc[names]
        ax.bar(x + (i - 0.5) * 0.38, t["mean"], 0.38, label=f"{dim} ({preset})",
               yerr=[t["mean"] - t["ci_low"], t["ci_high"] - t["mean"]], capsize=3)
    ams = [AMSTERDAM.get(n, np.nan) for n in names]
    ax.plot(x - 0.19, ams, "k_", markersize=22, mew=2, label="Amsterdam (Dignum et al. 2022)")
    ax.set_xticks(x, ["neighbourhoods", "catchments", "schools", "schools, choice off"])
    ax.set_ylabel("Theil H")
    ax.set_title("Segregation of the settled city (mean and 95% interval over seeds)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    plt.close(fig)


def levels(argv: list[str]) -> Path:
    """Run the study, write its outputs; returns the output folder."""
    opts, overrides = split_options(argv, OPTIONS)
    cfg = load_config([*overrides, f"years={opts['years']}", "output.progress=false",
                       "output.figures=false"])
    preset = cfg.city.preset
    out = Path(opts["out"] or f"outputs/levels_{preset}")
    runs = run_worlds(cfg, opts, out)
    table = summarise(runs)
    write_parquet(runs, out / "runs.parquet")
    atomic_write(out / "levels.csv", lambda p: table.to_csv(p, index=False))
    figure(table, preset, out / "levels.png")
    if is_yes(opts["ship"]):
        atomic_write(ROOT / "calibration" / f"levels_{preset}.csv",
                     lambda p: table.to_csv(p, index=False))
    for _, r in table.iterrows():
        log.info("%-32s %-4s %.3f [%.3f, %.3f]", r["measure"], r["dimension"], r["mean"],
                 r["ci_low"], r["ci_high"])
    log.info("levels of %s -> %s", preset, out)
    return out


def levels_table() -> str:
    """The docs' levels table, from the shipped ``calibration/levels_<preset>.csv``."""
    files = {p: ROOT / "calibration" / f"levels_{p}.csv" for p in ("small", "helsinki")}
    tables = {p: pd.read_csv(f) for p, f in files.items() if f.exists()}
    if not tables:
        return "No shipped levels yet (`calibration/levels_<preset>.csv`).\n"
    first = next(iter(tables.values()))
    lines = ["| measure | dimension |" + "".join(f" `city={p}` |" for p in tables)
             + " Amsterdam |", "|---|---|" + "---|" * (len(tables) + 1)]
    for i, row in first.iterrows():
        cells = "".join(f" {t.loc[i, 'mean']:.3f} [{t.loc[i, 'ci_low']:.3f}, "
                        f"{t.loc[i, 'ci_high']:.3f}] |" for t in tables.values())
        ams = "" if pd.isna(row["amsterdam"]) else f"{row['amsterdam']:.3f}"
        lines.append(f"| {row['measure']} | {row['dimension']} |{cells} {ams} |")
    return "\n".join(lines) + "\n"


def report(page: Path = DOCS_PAGE) -> None:
    """Rewrite the levels table of ``page`` from the shipped files; say so."""
    write_docs_table(page, MARKERS, levels_table(), "calibration/levels_<preset>.csv")


def main(argv: list[str]) -> None:
    """Entry point: the study, or ``report`` to regenerate the docs' levels table."""
    key_value_command(argv, levels, report, USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
