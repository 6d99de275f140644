"""Mechanism decomposition of a scenario: ``python -m experiments.mechanisms scenario=NAME``.

A scenario's effect on school segregation is a difference between two runs of the same
city and seed (the scenario and its baseline twin, common random numbers). This command
says where the difference comes from: which families moved where, the dwellings and
vacancies by tenure, who left the city, the schools each group got, and how much of the
change in school status H is residential (the pupils' homes) and how much is choice
(the schools they got, given their homes). The per-year records are read from the model's
state (``experiments.mechanism_records``); ordinary runs record nothing extra.

The runs go through the evaluation layer (``sim.evaluation`` with the runner
``experiments.mechanism_records.run_mechanism_task``): ``replicates`` seeds x (baseline
and each scenario), from the settled start (each seed's burn-in runs once, as in
``experiments.compare``). Options (``key=value``; anything else is a model override such
as ``city=helsinki``): ``scenario`` (a shipped scenario or a comma list of them; required),
``replicates`` (6), ``years`` (20), ``backend`` (joblib) and ``n_jobs`` (0: all cores),
``out`` (``outputs/mechanisms_<preset>``).

Writes to ``out``: ``<table>.parquet`` (per world, replicate and year: ``housing``,
``families``, ``flows``, ``intake``, ``school_h``, ``metrics``), ``effects.parquet``
(paired differences with 95% t-intervals over replicates, every table, year and group),
``summary.md`` (the tables a reader needs), ``<scenario>_h.png`` (the school H change and
its two parts by year) and ``<scenario>_families.png`` (families by area type and status),
``config.yaml`` and ``provenance.json``; ``study/`` holds the runs' chunks (re-running the
same command computes only what is missing).
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

from experiments.cli import key_value_command, split_options  # noqa: E402
from experiments.compare import available_scenarios, scenario_config, settle_replicates  # noqa: E402
from experiments.mechanism_records import AREAS, run_mechanism_task  # noqa: E402
from sim.config import Config, as_dict, load_config  # noqa: E402
from sim.evaluation import EvaluationConfig, evaluate  # noqa: E402
from sim.evaluation import check as check_evaluation  # noqa: E402
from sim.io import atomic_write, write_parquet, write_text  # noqa: E402
from sim.outputs import write_provenance  # noqa: E402

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.mechanisms scenario=NAME[,NAME...] [key=value ...]

Runs the scenario and its baseline twin (same seeds) from the settled start and decomposes
the difference: dwellings and vacancies, moves, entries and exits by area type, status and
language, the schools entrants got, and school status H into a residential and a choice part.

main options:
  scenario=urban_renewal  (shipped: {scenarios})
  city=small|helsinki  replicates=6  years=20  backend=joblib|serial  n_jobs=0 (all cores)
  out=outputs/mechanisms_<preset>
  any other key=value is a model override
"""
OPTIONS = {"scenario": "", "replicates": "6", "years": "20", "backend": "joblib",
           "n_jobs": "0", "out": ""}
METRICS = ("seg_school_ses_H", "seg_res_ses_H", "seg_catchment_ses_H", "excess_school_ses_H",
           "outcome_gap_decile", "n_families", "left_city", "arrivals", "first_births",
           "returns", "aged_out", "moves")
# table -> (group columns summed within, count columns)
COUNTS = {
    "housing": (["area", "tenure"], ["dwellings", "occupied", "vacant"]),
    "families": (["area", "ses"], ["n"]),
    "flows": (["kind", "origin", "destination", "ses"], ["n"]),
    "school_h": (["dim", "school_area"], ["school_H", "home_H", "choice_H", "E"]),
}


def positive_int(opts: dict[str, str], key: str, low: int) -> int:
    """An integer option >= ``low``; raises ``ValueError`` naming key, value and range."""
    try:
        value = int(opts[key])
    except ValueError:
        value = None
    if value is None or value < low:
        raise ValueError(f"{key}={opts[key]!r} is not allowed; expected an integer >= {low}")
    return value


def scenario_names(value: str) -> list[str]:
    """The scenarios asked for (comma list); raises ``ValueError`` for none or baseline."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise ValueError("scenario is missing; expected scenario=NAME (one of "
                         f"{', '.join(available_scenarios())}) or a comma list")
    if "baseline" in names or len(set(names)) != len(names):
        raise ValueError(f"scenario={value!r} is not allowed; expected distinct scenarios "
                         "other than baseline (the baseline twin always runs)")
    return names


def run_study(base: Config, names: list[str], opts: dict[str, str], out: Path) -> dict:
    """Run the baseline and the scenarios on every seed; the records of every run."""
    reps = positive_int(opts, "replicates", 2)
    evaluation = EvaluationConfig(backend=opts["backend"], chunk_size=1,
                                  n_jobs=positive_int(opts, "n_jobs", 0))
    check_evaluation(evaluation)
    cfgs = {"baseline": scenario_config(base, "baseline")}
    cfgs.update({n: scenario_config(base, n) for n in names})
    cfgs = {c.scenario.name: c for c in cfgs.values()}
    shared = as_dict(base)
    shared.pop("scenario")
    context = {"config": shared, "metrics": list(METRICS),
               "scenarios": {n: as_dict(c)["scenario"] for n, c in cfgs.items()}}
    tasks = [{"scenario": n, "seed": base.seed + r, "replicate": r}
             for r in range(reps) for n in cfgs]
    write_provenance(out, {**shared, "mechanisms": opts})
    settle_replicates(base, reps, evaluation.n_jobs or -1, progress=base.output.progress)
    study = evaluate(run_mechanism_task, context, tasks, out / "study", evaluation,
                     progress=base.output.progress)
    if not study.complete:
        raise ValueError(f"{out / 'study'}: {study.summary()}; run the same command again "
                         "to compute what is missing")
    extras = list(study.extras())
    tables = {k: pd.concat([e["mechanisms"][k] for e in extras], ignore_index=True)
              for k in extras[0]["mechanisms"]}
    tables["metrics"] = study.table()
    return tables


def paired(by_rep: pd.DataFrame, scenario: str) -> pd.DataFrame:
    """Scenario minus baseline per replicate, then mean and 95% t-interval over replicates.

    Args:
        by_rep: Values indexed by ``(scenario, replicate, *keys)``, one column per measure;
            a group missing in one world counts 0 there.
        scenario: The scenario to compare with ``baseline``.
    """
    keys = list(by_rep.index.names[2:])
    wide = by_rep.loc[["baseline", scenario]].astype(float).unstack(0, fill_value=0.0)
    rows = []
    for measure in by_rep.columns:
        b, s = wide[(measure, "baseline")], wide[(measure, scenario)]
        d = (s - b).groupby(level=keys)
        n = d.count()
        half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * d.std(ddof=1) / np.sqrt(n)
        rows.append(pd.DataFrame({
            "measure": measure, "baseline": b.groupby(level=keys).mean(),
            "scenario_value": s.groupby(level=keys).mean(), "diff": d.mean(),
            "ci_low": d.mean() - half, "ci_high": d.mean() + half, "n": n}))
    return pd.concat(rows).reset_index().assign(scenario=scenario)


def per_replicate(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each table summed to its groups per world, replicate and year (shares derived)."""
    out = {}
    for name, (groups, values) in COUNTS.items():
        out[name] = tables[name].groupby(["scenario", "replicate", "year", *groups])[
            values].sum().astype(float)
    it = tables["intake"].assign(away=lambda d: d["n"] * (d["choice"] == "away"),
                                 shared=lambda d: d["n"] * (d["choice"] == "shared"))
    g = it.groupby(["scenario", "replicate", "year", "area", "ses"])[
        ["n", "away", "shared", "school_status_sum", "school_low_share_sum"]].sum()
    out["intake"] = pd.DataFrame({
        "entrants": g["n"], "away_share": g["away"] / g["n"],
        "shared_share": g["shared"] / g["n"], "school_status": g["school_status_sum"] / g["n"],
        "school_low_share": g["school_low_share_sum"] / g["n"]})
    out["metrics"] = tables["metrics"].set_index(["scenario", "replicate", "year"])[
        list(METRICS)].astype(float)
    return out


def effects(tables: dict[str, pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Paired effects of every scenario on every table; one row per group and measure."""
    reps = per_replicate(tables)
    frames = []
    for name in names:
        for table, df in reps.items():
            e = paired(df, name).assign(table=table)
            frames.append(e)
    return pd.concat(frames, ignore_index=True)


def _cell(r: pd.Series, digits: int) -> str:
    return f"{r['diff']:+.{digits}f} [{r['ci_low']:+.{digits}f}, {r['ci_high']:+.{digits}f}]"


def _rows(eff: pd.DataFrame, **where: object) -> pd.DataFrame:
    sel = np.ones(len(eff), dtype=bool)
    for k, v in where.items():
        sel &= (eff[k] == v).to_numpy()
    return eff[sel]


def summary_md(eff: pd.DataFrame, tables: dict, name: str, years: int) -> str:
    """The summary of one scenario: H parts, families, dwellings, flows, intake."""
    e = eff[eff["scenario"] == name]
    horizons = sorted({min(10, years), years})
    lines = [f"## {name}", "", "Scenario minus baseline twin, mean over replicates and 95% "
             "interval.", "", "### School status H and its parts", "",
             "| year | school area | school H | residential (home) part | choice part |",
             "|---|---|---|---|---|"]
    for y in horizons:
        for area in ("city", *AREAS):
            r = _rows(e, table="school_h", year=y, dim="ses", school_area=area).set_index(
                "measure")
            lines.append(f"| {y} | {area} | {_cell(r.loc['school_H'], 4)} | "
                         f"{_cell(r.loc['home_H'], 4)} | {_cell(r.loc['choice_H'], 4)} |")
    lines += ["", "### Metrics", "", "| year | " + " | ".join(METRICS[:5]) + " |",
              "|---|" + "---|" * 5]
    for y in horizons:
        cells = [_cell(_rows(e, table="metrics", year=y, measure=m).iloc[0],
                       2 if m == "outcome_gap_decile" else 4) for m in METRICS[:5]]
        lines.append(f"| {y} | " + " | ".join(cells) + " |")
    lines += ["", f"### Families by area type and status, year {years}", "",
              "| area | status | baseline | difference |", "|---|---|---|---|"]
    for _, r in _rows(e, table="families", year=years).iterrows():
        lines.append(f"| {r['area']} | {int(r['ses'])} | {r['baseline']:.0f} | "
                     f"{_cell(r, 1)} |")
    lines += ["", f"### Dwellings and vacancies by tenure, year {years}", "",
              "| area | tenure | dwellings (baseline) | dwellings, difference | "
              "vacant (baseline) | vacant, difference |", "|---|---|---|---|---|---|"]
    h = _rows(e, table="housing", year=years)
    for (area, ten), g in h.groupby(["area", "tenure"], sort=False):
        g = g.set_index("measure")
        lines.append(f"| {area} | {int(ten)} | {g.loc['dwellings', 'baseline']:.0f} | "
                     f"{_cell(g.loc['dwellings'], 1)} | {g.loc['vacant', 'baseline']:.0f} | "
                     f"{_cell(g.loc['vacant'], 1)} |")
    lines += ["", f"### Flows into and out of each area type, years 1-{years} summed", "",
              "| area | status | moves in | moves out | entries | exits (left city) | "
              "exits (aged out) |", "|---|---|---|---|---|---|---|"]
    lines += flow_rows(tables["flows"], name)
    lines += ["", f"### Entrants' schools, years 1-{years} (grades 1 and 7)", "",
              "| area | status | away share, baseline | difference | mean status of the school "
              "got, baseline | difference |", "|---|---|---|---|---|---|"]
    lines += intake_rows(tables["intake"], name)
    return "\n".join(lines) + "\n"


def flow_rows(flows: pd.DataFrame, name: str) -> list[str]:
    """Summed flows per area type and status: paired differences over replicates."""
    f = flows[flows["scenario"].isin(["baseline", name])]
    parts = {
        "moves in": f[(f["kind"] == "move") & (f["origin"] != f["destination"])]
        .rename(columns={"destination": "area"}),
        "moves out": f[(f["kind"] == "move") & (f["origin"] != f["destination"])]
        .rename(columns={"origin": "area"}),
        "entries": f[f["kind"] == "entry"].rename(columns={"destination": "area"}),
        "exit_left": f[f["kind"] == "exit_left"].rename(columns={"origin": "area"}),
        "exit_aged": f[f["kind"] == "exit_aged"].rename(columns={"origin": "area"}),
    }
    cols = {k: v.groupby(["scenario", "replicate", "area", "ses"])["n"].sum()
            for k, v in parts.items()}
    by_rep = pd.DataFrame(cols).fillna(0.0)
    p = paired(by_rep, name)
    lines = []
    for (area, ses), g in p.groupby(["area", "ses"]):
        g = g.set_index("measure")
        lines.append(f"| {area} | {int(ses)} | " + " | ".join(
            f"{g.loc[k, 'baseline']:.0f} ({_cell(g.loc[k], 0)})" for k in parts) + " |")
    return lines


def intake_rows(intake: pd.DataFrame, name: str) -> list[str]:
    """Entrants' away share and school status over all years, by home area and status."""
    it = intake[intake["scenario"].isin(["baseline", name])].assign(
        away=lambda d: d["n"] * (d["choice"] == "away"))
    g = it.groupby(["scenario", "replicate", "area", "ses"])[
        ["n", "away", "school_status_sum"]].sum()
    by_rep = pd.DataFrame({"away_share": g["away"] / g["n"],
                           "school_status": g["school_status_sum"] / g["n"]})
    p = paired(by_rep, name)
    lines = []
    for (area, ses), r in p.groupby(["area", "ses"]):
        r = r.set_index("measure")
        lines.append(f"| {area} | {int(ses)} | {r.loc['away_share', 'baseline']:.3f} | "
                     f"{_cell(r.loc['away_share'], 3)} | "
                     f"{r.loc['school_status', 'baseline']:.3f} | "
                     f"{_cell(r.loc['school_status'], 3)} |")
    return lines


def figures(eff: pd.DataFrame, name: str, out: Path) -> None:
    """The school H change and its parts by year; families by area type and status."""
    e = eff[(eff["scenario"] == name)]
    fig, ax = plt.subplots(figsize=(7, 4))
    h = _rows(e, table="school_h", dim="ses", school_area="city")
    for measure, label in (("school_H", "school status H"),
                           ("home_H", "residential part (homes)"),
                           ("choice_H", "choice part (given homes)")):
        r = h[h["measure"] == measure].sort_values("year")
        ax.plot(r["year"], r["diff"], marker="o", ms=3, label=label)
        ax.fill_between(r["year"], r["ci_low"], r["ci_high"], alpha=0.2)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("year")
    ax.set_ylabel("scenario minus baseline")
    ax.set_title(f"{name}: the change in school status H and its two parts")
    ax.legend(frameon=False)
    fig.tight_layout()
    atomic_write(out / f"{name}_h.png", lambda p: fig.savefig(p, dpi=120, format="png"))
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=False)
    fam = _rows(e, table="families")
    for ax, area in zip(axes, AREAS, strict=True):
        for ses in range(3):
            r = fam[(fam["area"] == area) & (fam["ses"] == ses)].sort_values("year")
            ax.plot(r["year"], r["diff"], label=f"status {ses}")
            ax.fill_between(r["year"], r["ci_low"], r["ci_high"], alpha=0.2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{area} areas")
        ax.set_xlabel("year")
    axes[0].set_ylabel("families, scenario minus baseline")
    axes[0].legend(frameon=False)
    fig.suptitle(f"{name}: families by area type and status (0 low, 2 high)")
    fig.tight_layout()
    atomic_write(out / f"{name}_families.png", lambda p: fig.savefig(p, dpi=120, format="png"))
    plt.close(fig)


def mechanisms(argv: list[str]) -> Path:
    """Run the decomposition and write its outputs; returns the output folder."""
    opts, overrides = split_options(argv, OPTIONS)
    asked = scenario_names(opts["scenario"])
    years = positive_int(opts, "years", 1)
    cfg = load_config([*overrides, f"years={years}", "output.figures=false"])
    if cfg.start != "settled":
        raise ValueError(f"start={cfg.start!r}: the decomposition runs from the settled "
                         "city; expected start=settled")
    out = Path(opts["out"] or f"outputs/mechanisms_{cfg.city.preset}")
    # A bad scenario fails before any run; a scenario file is labelled by its name.
    names = [scenario_config(cfg, n).scenario.name for n in asked]
    tables = run_study(cfg, asked, opts, out)
    for k, df in tables.items():
        write_parquet(df, out / f"{k}.parquet")
    eff = effects(tables, names)
    write_parquet(eff, out / "effects.parquet")
    text = [f"# Mechanisms: {', '.join(names)} on city={cfg.city.preset}", "",
            f"{opts['replicates']} paired replicates, {years} years, from the settled start. "
            "Area types: renewal districts, districts bordering them, the rest. Status 0 "
            "low, 1 middle, 2 high; tenure 0 social rental, 1 private rental, "
            "2 owner-occupied.", ""]
    for n in names:
        text.append(summary_md(eff, tables, n, years))
        figures(eff, n, out)
    write_text("\n".join(text), out / "summary.md")
    log.info("mechanisms of %s on %s -> %s (summary.md)", ", ".join(names),
             cfg.city.preset, out)
    return out


def main(argv: list[str]) -> None:
    """Entry point."""
    key_value_command(argv, mechanisms, None,
                      USAGE.format(scenarios=", ".join(available_scenarios())))


if __name__ == "__main__":
    main(sys.argv[1:])
