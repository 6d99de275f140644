"""Calibrate the model to Helsinki: ``python -m experiments.calibrate preset=small``.

A fit of the parameters in ``calibration/parameters.yaml`` to the moments of
``calibration/targets.yaml``: by default simulated method of moments with Optuna
(``calibration.fit``); with ``method=abc`` a posterior by ABC-SMC with pyabc
(``calibration.abc``, the optional extra ``abc``). Arguments (``key=value``; anything else
is a model override such as ``burn_in_years=30``):

* ``method`` (``optuna``): ``optuna`` or ``abc``;
* ``preset`` (``small``): city preset;
* ``parameters`` (the preset's name): the parameter set of ``calibration/parameters.yaml``
  to fit; ``decisive`` is the set the answers rest on, fitted given the shipped fit of the
  others;
* ``trials`` (40): finished trials wanted (optuna); ``workers`` (1): processes sharing the
  study (optuna);
* ``population`` (20), ``generations`` (4), ``min_epsilon`` (0) (abc): accepted particles
  per generation, generations in total, and a distance (the square root of the loss) at
  which to stop early; ``batch`` (8): candidates evaluated together on the evaluation layer
  (``backend`` joblib, serial or hydra, ``n_jobs`` (0 = all cores), ``launcher``
  (``submitit_local``, or ``submitit_slurm`` on a cluster)); the posterior is the same for
  every backend, batch and number of processes;
* ``replicates`` (2): seeds per candidate, ``seed`` (1) the first (common random numbers:
  the same seeds for every candidate); with abc ``seed`` also seeds the sampler;
* ``storage`` (``<out>/study.db``, with abc ``<out>/abc.db``): SQLite file, or (optuna) any
  other name for Optuna's journal file (a cluster's shared disk); a killed calibration
  started again resumes the study (optuna: without repeating finished trials; abc: after
  its last finished generation, ending with the posterior of an uninterrupted run);
* ``study`` (``calibrate_<preset>``): study name (optuna); ``holdout`` (none):
  comma-separated moments left out of the loss and reported as held out; ``profile`` (0):
  points of the loss profile along each parameter (identification); ``out``
  (``outputs/calibration/<preset>``);
* ``ship`` (false): also write ``conf/behaviour/calibrated_<preset>.yaml`` and
  ``calibration/fit_<preset>.csv``, the shipped fit; with abc also
  ``calibration/posterior_<preset>.csv``, the draws of ``experiments.compare
  uncertainty=posterior`` (a fit of another parameter set ships its draws only: it is
  conditional on the shipped fit, which it keeps).

Writes to ``out``: ``calibrated_<preset>.yaml`` (a ``behaviour`` option every command
accepts: ``behaviour=calibrated_<preset>`` once shipped; the best trial, or with abc the
posterior median), ``fit.csv`` (per moment at that point: observed, simulated mean, 95%
interval, standardised error, met, fitted or held out), ``profile.csv`` and ``figures/``
(observed against simulated, profiles); with optuna ``trials.csv`` and the loss history
and parameter traces; with abc ``posterior.csv`` (the last generation's particles and
weights), ``posterior_summary.csv`` (per parameter: weighted mean, median, 5% and 95%
quantiles, prior interval), ``epsilons.csv`` (threshold, acceptance and effective sample
size per generation) and the marginal posteriors and thresholds.

``python -m experiments.calibrate report`` rewrites the calibration table of
``docs/calibration.md`` (between its markers) from the shipped ``calibration/fit_<preset>.csv``
files and says what it wrote.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from calibration import fit, studies  # noqa: E402
from calibration.moments import horizon_of, load_targets  # noqa: E402
from experiments import tasks  # noqa: E402
from experiments.cli import is_yes, key_value_command, split_options, write_docs_table  # noqa: E402
from scenarios import build_levers  # noqa: E402
from sim.config import CONF_DIR, Config  # noqa: E402
from sim.evaluation import EvaluationConfig  # noqa: E402
from sim.evaluation import check as check_evaluation  # noqa: E402
from sim.io import atomic_write, write_text  # noqa: E402

log = logging.getLogger(__name__)
ROOT = CONF_DIR.parent
DOCS_PAGE = ROOT / "docs" / "calibration.md"  # where ``report`` writes the status table
TABLE_START, TABLE_END = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"
OPTIONS = {"method": "optuna", "preset": "small", "parameters": "", "trials": "40",
           "workers": "1", "population": "20", "generations": "4", "min_epsilon": "0",
           "batch": "8", "backend": "joblib", "n_jobs": "0", "launcher": "submitit_local",
           "replicates": "2",
           "seed": "1", "storage": "", "study": "", "holdout": "", "profile": "0", "out": "",
           "ship": "false"}
METHODS = ("optuna", "abc")
USAGE = """\
usage: python -m experiments.calibrate [key=value ...]
       python -m experiments.calibrate report

Fits calibration/parameters.yaml to the moments of calibration/targets.yaml (Optuna, or
ABC-SMC with method=abc); report rewrites the status table of docs/calibration.md.

main options:
  preset=small|helsinki  parameters=<preset>|decisive  trials=40  workers=1
  replicates=2  seed=1   method=optuna|abc
  population=20  generations=4  batch=8  backend=joblib|serial|hydra  n_jobs=0
  launcher=submitit_local|submitit_slurm  (abc)
  storage=<out>/study.db  out=outputs/calibration/<preset>  ship=false (also write the
  shipped fit)  holdout=a,b  profile=0;  any other key=value is a model override
"""
MISSING_ABC = "method=abc needs the optional extra: pip install -e '.[abc]'"


@dataclass
class Found:
    """What a method found: the point to write out, its moments, and how it was found."""

    point: dict[str, float]
    sims: pd.DataFrame  # the moments at ``point``, one row per replicate seed
    header: str  # the first lines of the fitted behaviour file
    note: str  # the method's part of the closing log line


def keys_note(fit_csv: str) -> str:
    """The end of the fitted file's header: the fit it came with, what the file leaves out."""
    return (f"# Fit per moment: {fit_csv}. Keys not listed keep their cited defaults "
            "(sim/config.py).\n")


def fit_figures(table: pd.DataFrame, prof: pd.DataFrame, out: Path) -> None:
    """Observed against simulated, and the loss profiles if any."""
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
    if len(prof):
        params = list(dict.fromkeys(prof["parameter"]))
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


def trial_figures(trials: pd.DataFrame, out: Path) -> None:
    """Optuna: loss history and parameter traces."""
    out.mkdir(parents=True, exist_ok=True)
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


def abc_figures(post: pd.DataFrame, summary: pd.DataFrame, eps: pd.DataFrame,
                out: Path) -> None:
    """ABC-SMC: marginal posteriors over their prior intervals, threshold per generation."""
    out.mkdir(parents=True, exist_ok=True)
    n = len(summary)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax, s in zip(axes.flat, summary.itertuples(), strict=False):
        ax.hist(post[s.parameter], bins=np.linspace(s.prior_low, s.prior_high, 21),
                weights=post["weight"], density=True, color="tab:blue", alpha=0.7)
        ax.axhline(1 / (s.prior_high - s.prior_low), ls=":", c="grey", label="prior")
        ax.axvspan(s.q05, s.q95, color="tab:orange", alpha=0.15, label="90%")
        ax.axvline(s.median, c="tab:orange", label="median")
        ax.set_xlim(s.prior_low, s.prior_high)
        ax.set_title(s.parameter.split(".", 1)[-1], fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "posterior_marginals.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(eps["generation"], eps["epsilon"], "o-")
    ax.set_yscale("log"), ax.set_xlabel("generation"), ax.set_xticks(eps["generation"])
    ax.set_ylabel("epsilon (square root of the loss)", color="tab:blue")
    acc = ax.twinx()
    acc.plot(eps["generation"], eps["acceptance"], "s--", c="tab:grey")
    acc.set_ylabel("acceptance rate (dashed)", color="tab:grey"), acc.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(out / "epsilons.png", dpi=110)
    plt.close(fig)


def abc_module() -> ModuleType:
    """``calibration.abc``, which needs pyabc (the optional extra ``abc``).

    Raises:
        ValueError: pyabc is not installed.
    """
    try:
        # Imported here, on demand: pyabc is an optional dependency, not a cycle to dodge.
        from calibration import abc as abc_smc
    except ModuleNotFoundError as exc:
        if exc.name != "pyabc":
            raise
        raise ValueError(MISSING_ABC) from None
    return abc_smc


def problem_of(opts: dict[str, str], overrides: list[str]) -> tuple[fit.Problem, Config]:
    """The fit asked for and the config its candidates start from.

    Raises:
        ValueError: A bad targets or parameters file, or an unknown held-out moment.
    """
    preset = opts["preset"]
    moments = load_targets(preset=preset)  # refuses a bad targets file before any run
    holdout = [h for h in opts["holdout"].split(",") if h]
    unknown = set(holdout) - {m.name for m in moments}
    if unknown:
        raise ValueError(f"holdout: {sorted(unknown)} are not moments of preset {preset}")
    first = int(opts["seed"])
    problem = fit.Problem(preset=preset, params=fit.load_parameters(opts["parameters"] or preset),
                          moments=moments,
                          fitted=[m.name for m in moments if m.name not in holdout],
                          seeds=list(range(first, first + int(opts["replicates"]))),
                          overrides=list(overrides), build_levers=build_levers)
    # The study designs' levers are built once here, so a bad spec is refused before any run.
    studies.check_levers({m.design.name: m.design for m in moments if m.design}, build_levers)
    return problem, fit.base_config(preset, overrides, horizon_of(moments))


def optuna_fit(problem: fit.Problem, base: Config, opts: dict[str, str], out: Path) -> Found:
    """Run (or resume) the Optuna study; writes ``trials.csv`` and its figures."""
    preset = problem.preset
    start = {p.key: float(fit.OmegaConf.select(fit.OmegaConf.create(fit.as_dict(base)), p.key))
             for p in problem.params}
    storage = Path(opts["storage"] or out / "study.db")
    out.mkdir(parents=True, exist_ok=True)
    study = fit.run_study(problem, storage, opts["study"] or f"calibrate_{preset}",
                          int(opts["trials"]), int(opts["workers"]), start=start,
                          trial_log=out / "trials.log")
    # The fitted file lists the base behaviour too: it must be the one the trials ran on.
    stored = study.user_attrs.get("base_behaviour")
    now = fit.as_dict(base)["behaviour"]
    if stored is None:
        study.set_user_attr("base_behaviour", now)
    elif stored != now:
        raise ValueError(f"study {study.study_name} ran on another base behaviour; start it "
                         "with the same behaviour=... option as before")
    trials = fit.trials_frame(study)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "trials.csv", lambda p: trials.to_csv(p, index=False))
    trial_figures(trials, out / "figures")
    header = (f"# Fitted by python -m experiments.calibrate preset={preset} "
              f"trials={opts['trials']} replicates={opts['replicates']}; best loss "
              f"{study.best_value:.3g} (trial {study.best_trial.number}).\n")
    return Found(study.best_params, fit.best_sims(study), header,
                 f"{len(trials)} trials, best loss {study.best_value:.3g}")


def abc_fit(abc_smc: ModuleType, problem: fit.Problem, opts: dict[str, str],
            out: Path) -> Found:
    """Run (or resume) ABC-SMC; writes the posterior, its summary, the thresholds, figures.

    The point written out is the posterior median of each parameter; its moments cost one
    more evaluation.
    """
    settings = abc_smc.Settings(population=int(opts["population"]),
                                generations=int(opts["generations"]),
                                min_epsilon=float(opts["min_epsilon"]), seed=int(opts["seed"]),
                                batch=int(opts["batch"]))
    backend = EvaluationConfig(backend=opts["backend"], n_jobs=int(opts["n_jobs"]),
                               launcher=opts["launcher"])
    check_evaluation(backend)
    batches = partial(fit.evaluate_batch, problem, root=out / "candidates",
                      runner=tasks.run_particle, cfg=backend)
    history = abc_smc.run(problem, Path(opts["storage"] or out / "abc.db"), settings, batches)
    post = abc_smc.posterior(history)
    summary = abc_smc.summary(post, problem.params)
    eps = abc_smc.epsilons(history)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in (("posterior", post), ("posterior_summary", summary), ("epsilons", eps)):
        atomic_write(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    abc_figures(post, summary, eps, out / "figures")
    point = dict(zip(summary["parameter"], summary["median"], strict=True))
    sims = problem.evaluate(point)
    last = eps.iloc[-1]
    header = (f"# Posterior median of ABC-SMC (pyabc) by python -m experiments.calibrate "
              f"method=abc preset={problem.preset} population={settings.population} "
              f"generations={settings.generations} replicates={opts['replicates']}; "
              f"final epsilon {last['epsilon']:.3g} (square root of the loss) in generation "
              f"{int(last['generation'])}, {history.total_nr_simulations} simulated "
              "candidates.\n# Posterior: posterior_summary.csv of the calibration.\n")
    return Found(point, sims, header,
                 f"ABC-SMC, {len(eps)} generations of {settings.population} particles, "
                 f"{history.total_nr_simulations} simulated candidates, final epsilon "
                 f"{last['epsilon']:.3g}")


def calibrate(argv: list[str]) -> Path:
    """Run (or resume) the fit and write its outputs; returns the output folder."""
    opts, overrides = split_options(argv, OPTIONS)
    if opts["method"] not in METHODS:
        raise ValueError(f"method={opts['method']} is not allowed; expected one of "
                         f"{', '.join(METHODS)}")
    abc_smc = abc_module() if opts["method"] == "abc" else None  # before any run
    preset = opts["preset"]
    out = Path(opts["out"] or f"outputs/calibration/{preset}")
    problem, base = problem_of(opts, overrides)
    t0 = time.perf_counter()
    found = (abc_fit(abc_smc, problem, opts, out) if abc_smc is not None
             else optuna_fit(problem, base, opts, out))
    wall = time.perf_counter() - t0
    table = fit.fit_table(problem.moments, found.sims, problem.fitted)
    prof = (fit.profile(problem, found.point, int(opts["profile"])) if int(opts["profile"])
            else pd.DataFrame(columns=["parameter", "value", "loss", "best"]))
    out.mkdir(parents=True, exist_ok=True)
    note = keys_note("fit.csv beside this file")  # the fit this file came with
    write_text(fit.behaviour_yaml(base, found.point, found.header + note),
               out / f"calibrated_{preset}.yaml")
    for name, df in (("fit", table), ("profile", prof)):
        atomic_write(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
    fit_figures(table, prof, out / "figures")
    if is_yes(opts["ship"]):
        ship(opts, base, found, table, out)
    log.info("calibration of %s: %s, %d of %d moments met; %.0f s this session -> %s",
             preset, found.note, int(table["met"].sum()), len(table), wall, out)
    return out


def ship(opts: dict[str, str], base: Config, found: Found, table: pd.DataFrame,
         out: Path) -> None:
    """Write the shipped fit (``ship=true``).

    A fit of the preset's own parameter set ships its behaviour file and fit table; with
    abc also the posterior's draws (``experiments.compare uncertainty=posterior``). A fit of
    another set (``parameters=decisive``) is conditional on the shipped point fit, which it
    keeps: it ships its draws only.
    """
    preset = opts["preset"]
    if opts["parameters"] in ("", preset):
        shipped_fit = Path("calibration") / f"fit_{preset}.csv"
        note = keys_note(shipped_fit.as_posix())
        write_text(fit.behaviour_yaml(base, found.point, found.header + note),
                   CONF_DIR / "behaviour" / f"calibrated_{preset}.yaml")
        atomic_write(ROOT / shipped_fit, lambda p: table.to_csv(p, index=False))
        log.info("shipped: conf/behaviour/calibrated_%s.yaml and %s", preset, shipped_fit)
    if opts["method"] == "abc":
        post = pd.read_csv(out / "posterior.csv")
        shipped_post = ROOT / "calibration" / f"posterior_{preset}.csv"
        atomic_write(shipped_post, lambda p: post.to_csv(p, index=False))
        log.info("shipped: %s (%d particles)", shipped_post.relative_to(ROOT), len(post))


def status_table() -> str:
    """The docs' calibration table, from the shipped ``calibration/fit_<preset>.csv``."""
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


def write_status_table(page: Path = DOCS_PAGE) -> None:
    """Replace the section between the calibration-table markers of ``page``; say so."""
    write_docs_table(page, (TABLE_START, TABLE_END), status_table(),
                     "calibration/fit_<preset>.csv")


def main(argv: list[str]) -> None:
    """Entry point: calibrate, or ``report`` to regenerate the docs' status table."""
    key_value_command(argv, calibrate, write_status_table, USAGE)


if __name__ == "__main__":
    main(sys.argv[1:])
