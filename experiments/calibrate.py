"""Calibrate the model to Helsinki: ``python -m experiments.calibrate preset=small``.

A simulated-method-of-moments fit with Optuna (``calibration.fit``) of the parameters in
``calibration/parameters.yaml`` to the moments of ``calibration/targets.yaml``. Arguments
(``key=value``; anything else is a model override such as ``burn_in_years=30``):

* ``preset`` (``small``): city preset;
* ``trials`` (40): finished trials wanted; ``workers`` (1): processes sharing the study;
* ``replicates`` (2): seeds per candidate, ``seed`` (1) the first (common random numbers:
  the same seeds for every candidate);
* ``storage`` (``<out>/study.db``): SQLite file, or any other name for Optuna's journal file
  (a cluster's shared disk); a killed calibration started again resumes the study;
* ``study`` (``calibrate_<preset>``): study name; ``holdout`` (none): comma-separated
  moments left out of the loss and reported as held out; ``profile`` (0): points of the
  loss profile along each parameter (identification); ``out``
  (``outputs/calibration/<preset>``);
* ``ship`` (false): also write ``conf/behaviour/calibrated_<preset>.yaml`` and
  ``calibration/fit_<preset>.csv``, the shipped fit.

Writes to ``out``: ``calibrated_<preset>.yaml`` (a ``behaviour`` option every command
accepts: ``behaviour=calibrated_<preset>`` once shipped), ``fit.csv`` (per moment:
observed, simulated mean, 95% interval, standardised error, met, fitted or held out),
``trials.csv``, ``profile.csv`` and ``figures/`` (observed against simulated, loss
history, parameter traces, profiles).

``python -m experiments.calibrate report`` rewrites the README's calibration table from the
shipped ``calibration/fit_<preset>.csv`` files.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from calibration import fit  # noqa: E402
from calibration.moments import horizon_of, load_targets  # noqa: E402
from experiments.cli import split_options  # noqa: E402
from sim.config import CONF_DIR  # noqa: E402
from sim.io import atomic_write, replace_marked, write_text  # noqa: E402

log = logging.getLogger(__name__)
ROOT = CONF_DIR.parent
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"
OPTIONS = {"preset": "small", "trials": "40", "workers": "1", "replicates": "2", "seed": "1",
           "storage": "", "study": "", "holdout": "", "profile": "0", "out": "",
           "ship": "false"}


def figures(table: pd.DataFrame, trials: pd.DataFrame, prof: pd.DataFrame,
            out: Path) -> None:
    """Observed against simulated, loss history, parameter traces and profiles."""
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(table) + 1.5))
    colours = ["tab:green" if m else "tab:red" for m in table["met"]]
    ax.barh(table["moment"], table["z"].clip(-6, 6), color=colours)
    ax.axvline(-2, ls=":", c="grey"), ax.axvline(2, ls=":", c="grey")
    ax.set_xlabel("standardised error (simulated - observed) / sd, clipped at +-6")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "observed_vs_simulated.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(trials["trial"], trials["loss"], ".", alpha=0.6, label="trial")
    ax.plot(trials["trial"], trials["loss"].cummin(), "-", label="best so far")
    ax.set_yscale("log"), ax.set_xlabel("trial"), ax.set_ylabel("loss"), ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss_history.png", dpi=110)
    plt.close(fig)
    params = [c for c in trials.columns if c not in ("trial", "loss")]
    fig, axes = plt.subplots(len(params), 1, figsize=(6, 1.8 * len(params)), squeeze=False)
    for ax, p in zip(axes[:, 0], params, strict=True):
        ax.plot(trials["trial"], trials[p], ".")
        ax.set_ylabel(p.split(".")[-1], fontsize=8)
    axes[-1, 0].set_xlabel("trial")
    fig.tight_layout()
    fig.savefig(out / "parameter_traces.png", dpi=110)
    plt.close(fig)
    if len(prof):
        fig, axes = plt.subplots(1, len(params), figsize=(3 * len(params), 3), squeeze=False)
        for ax, p in zip(axes[0], params, strict=True):
            d = prof[prof["parameter"] == p]
            ax.plot(d["value"], d["loss"], "o-")
            ax.axvline(d["best"].iloc[0], ls=":", c="grey")
            ax.set_title(p.split(".")[-1], fontsize=8)
        axes[0, 0].set_ylabel("loss")
        fig.tight_layout()
        fig.savefig(out / "profile.png", dpi=110)
        plt.close(fig)


def calibrate(argv: list[str]) -> Path:
    """Run (or resume) the fit and write its outputs; returns the output folder."""
    opts, overrides = split_options(argv, OPTIONS)
    preset = opts["preset"]
    out = Path(opts["out"] or f"outputs/calibration/{preset}")
    moments = load_targets(preset=preset)  # refuses a bad targets file before any run
    holdout = [h for h in opts["holdout"].split(",") if h]
    unknown = set(holdout) - {m.name for m in moments}
    if unknown:
        raise ValueError(f"holdout: {sorted(unknown)} are not moments of preset {preset}")
    params = fit.load_parameters(preset)
    base = fit.base_config(preset, overrides, horizon_of(moments))
    start = {p.key: float(fit.OmegaConf.select(fit.OmegaConf.create(fit.as_dict(base)), p.key))
             for p in params}
    first = int(opts["seed"])
    problem = fit.Problem(preset=preset, params=params, moments=moments,
                          fitted=[m.name for m in moments if m.name not in holdout],
                          seeds=list(range(first, first + int(opts["replicates"]))),
                          overrides=list(overrides))
    storage = Path(opts["storage"] or out / "study.db")
    t0 = time.perf_counter()
    study = fit.run_study(problem, storage, opts["study"] or f"calibrate_{preset}",
                          int(opts["trials"]), int(opts["workers"]), start=start)
    wall = time.perf_counter() - t0
    # The fitted file lists the base behaviour too: it must be the one the trials ran on.
    stored = study.user_attrs.get("base_behaviour")
    now = fit.as_dict(base)["behaviour"]
    if stored is None:
        study.set_user_attr("base_behaviour", now)
    elif stored != now:
        raise ValueError(f"study {study.study_name} ran on another base behaviour; start it "
                         "with the same behaviour=... option as before")
    best = study.best_params
    table = fit.fit_table(moments, fit.best_sims(study), problem.fitted)
    trials = fit.trials_frame(study)
    prof = fit.profile(problem, best, int(opts["profile"])) if int(opts["profile"]) else (
        pd.DataFrame(columns=["parameter", "value", "loss", "best"]))
    out.mkdir(parents=True, exist_ok=True)
    header = (f"# Fitted by python -m experiments.calibrate preset={preset} "
              f"trials={opts['trials']} replicates={opts['replicates']}; best loss "
              f"{study.best_value:.3g} (trial {study.best_trial.number}).\n"
              "# Fit per moment: calibration/fit_" + preset + ".csv. Keys not listed keep "
              "their cited defaults (sim/config.py).\n")
    yaml_text = fit.behaviour_yaml(base, best, header)
    write_text(yaml_text, out / f"calibrated_{preset}.yaml")
    for name, df in (("fit", table), ("trials", trials), ("profile", prof)):
        atomic_write(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    figures(table, trials, prof, out / "figures")
    if opts["ship"].lower() in ("true", "1", "yes"):
        write_text(yaml_text, CONF_DIR / "behaviour" / f"calibrated_{preset}.yaml")
        atomic_write(ROOT / "calibration" / f"fit_{preset}.csv",
                     lambda p: table.to_csv(p, index=False))
    log.info("calibration of %s: %d trials, best loss %.3g, %d of %d moments met; "
             "%.0f s this session -> %s", preset, len(trials), study.best_value,
             int(table["met"].sum()), len(table), wall, out)
    return out


def readme_table() -> str:
    """The README's calibration table, from the shipped ``calibration/fit_<preset>.csv``."""
    fits = {p: pd.read_csv(ROOT / "calibration" / f"fit_{p}.csv")
            for p in ("small", "helsinki") if (ROOT / "calibration" / f"fit_{p}.csv").exists()}
    if not fits:
        return "No shipped fit yet (`calibration/fit_<preset>.csv`).\n"
    names = list(dict.fromkeys(n for f in fits.values() for n in f["moment"]))
    head = "| moment | observed |" + "".join(f" `city={p}` (z) |" for p in fits)
    lines = [head, "|---|---|" + "---|" * len(fits)]
    for name in names:
        obs, cells = "", []
        for f in fits.values():
            row = f[f["moment"] == name]
            if row.empty:
                cells.append(" - |")
                continue
            r = row.iloc[0]
            obs = r["observed"]
            mark = "" if r["met"] else " **not met**"
            held = " held out" if r["role"] == "held out" else ""
            cells.append(f" {r['simulated']:.3g} ({r['z']:+.1f}){mark}{held} |")
        lines.append(f"| {name} | {obs} |" + "".join(cells))
    return "\n".join(lines) + "\n"


def write_readme_table(readme: Path = README) -> None:
    """Replace the README section between the calibration-table markers."""
    replace_marked(readme, TABLE_START, TABLE_END, readme_table())


def main(argv: list[str]) -> None:
    """Entry point: calibrate, or ``report`` to regenerate the README table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        if argv[:1] == ["report"]:
            write_readme_table()
            log.info("README calibration table rewritten")
        else:
            calibrate(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
