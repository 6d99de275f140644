"""Simulated method of moments with Optuna: evaluation, loss, persistent studies.

* ``evaluate(params, seeds, preset)``: the moments of one candidate, one row per replicate
  seed. The seeds are the same for every candidate (common random numbers), so the loss is
  smooth in the parameters. This is the one function a many-run backend has to call.
* ``loss``: the weighted distance ``sum_k w_k z_k^2`` with
  ``z_k = deviation_k / sqrt(sd_k^2 + var_sim_k / R)`` (methods notes: a diagonal weight
  from the target's uncertainty and the simulation noise of the replicate mean);
  qualitative moments contribute their hinge (zero on the right side of the bound).
* ``run_study``: a persistent Optuna study (SQLite file, or Optuna's journal file for a
  cluster's shared disk). A killed study resumes without repeating finished trials; several
  worker processes share it (Optuna's multi-process pattern, each calling ``optimize`` on
  the shared storage), and together they stop at ``n_trials`` finished trials.
* ``fit_table``, ``profile``: the fit per moment and the loss profile along each parameter
  (identification).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml
from joblib import Parallel, delayed
from omegaconf import OmegaConf
from scipy import stats

from calibration import studies
from calibration.moments import Moment, horizon_of
from sim import evaluation
from sim.config import Config, as_dict, load_config, validate
from sim.evaluation import EvaluationConfig, Runner, run_tasks
from sim.settle import anchor_config

log = logging.getLogger(__name__)

PARAMETERS_YAML = Path(__file__).resolve().parent / "parameters.yaml"


@dataclass(frozen=True)
class Parameter:
    """A fitted config key (``a.b.c`` or a list element ``a.b.c.1``) and its interval."""

    key: str
    low: float
    high: float


def load_parameters(name: str, path: Path = PARAMETERS_YAML) -> list[Parameter]:
    """The parameter set ``name`` (a preset's, or another) of ``calibration/parameters.yaml``.

    Raises:
        ValueError: No such set, or an interval that is empty.
    """
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if name not in doc:
        raise ValueError(f"parameters={name} is not allowed; expected one of the sets of "
                         f"{Path(path).name}: {', '.join(doc)}")
    params = [Parameter(p["key"], float(p["low"]), float(p["high"])) for p in doc[name]]
    for p in params:
        if not p.low < p.high:
            raise ValueError(f"{path}: {p.key}: low={p.low} must be below high={p.high}")
    return params


def with_params(cfg: Config, params: dict[str, float]) -> Config:
    """``cfg`` with the parameter values set (list elements by index), validated."""
    d = OmegaConf.create(as_dict(cfg))
    for key, value in params.items():
        if OmegaConf.select(d, key, default=None) is None:
            raise ValueError(f"calibration parameter {key!r} is not a config key")
        OmegaConf.update(d, key, float(value), merge=False)
    return validate(d)


def base_config(preset: str, overrides: Sequence[str] = (), years: int = 10) -> Config:
    """The config a calibration runs: ``preset``, the overrides, ``years``, no output."""
    return load_config([f"city={preset}", f"years={years}", "output.progress=false",
                        "output.figures=false", *overrides])


def shared_context(base: Config, moments: Sequence[Moment]) -> dict:
    """What every candidate's runs share: the anchor behaviour and the study designs.

    Candidates settle warm from the base behaviour's settled city (the shipped fit, as a
    rule): the anchor is the same for every candidate, so a candidate's moments depend on
    it alone.
    """
    designs = {m.design.name: m.design for m in moments if m.design is not None}
    return {"anchor": as_dict(base)["behaviour"],
            "designs": {k: dataclasses.asdict(d) for k, d in designs.items()}}


def evaluate(params: dict[str, float], seeds: Sequence[int], preset: str,
             moments: Sequence[Moment], overrides: Sequence[str] = (),
             build_levers: studies.BuildLevers | None = None) -> pd.DataFrame:
    """The moments of one candidate, one row per seed (the same seeds for every candidate).

    Args:
        params: Parameter values by config key.
        seeds: Replicate seeds (common random numbers across candidates).
        preset: City preset.
        moments: The moments to compute.
        overrides: Further config overrides (e.g. a tiny city in tests).
        build_levers: Builds the study designs' levers (``scenarios.build_levers``), for
            moments that read a design's run (``calibration.studies``).

    Returns:
        A frame indexed by seed with one column per moment.
    """
    base = base_config(preset, overrides, horizon_of(list(moments)))
    context = {"config": as_dict(with_params(base, params)),
               **shared_context(base, moments)}
    results = run_tasks(partial(run_candidate, build_levers=build_levers), context,
                        [{"seed": int(s)} for s in seeds])
    rows = {r["seed"]: {m.name: m.simulate(r["outputs"][m.design and m.design.name])
                        for m in moments} for r in results}
    return pd.DataFrame.from_dict(rows, orient="index")


def run_candidate(context: dict, task: dict,
                  build_levers: studies.BuildLevers | None = None) -> dict:
    """Runner (``sim.evaluation``) of one candidate and seed: its tables, settled warm.

    The context holds ``config`` (the candidate's config), ``anchor`` (a behaviour: the
    candidate settles warm from that behaviour's settled state, ``sim.settle``) and
    ``designs`` (the study designs the moments read, ``calibration.studies``); the anchors'
    states are kept in ``config.checkpoint_dir``, the candidates' are not. Returns the
    tables of the plain run (key ``None``) and of each design's run under ``outputs``.
    """
    logging.getLogger("MESA").setLevel(logging.WARNING)
    cfg = validate({**context["config"], "seed": task["seed"]})
    anchor = anchor_config(cfg, context["anchor"]) if context.get("anchor") else None
    designs = {k: studies.Design(**{**d, "levers": tuple(d["levers"])})
               for k, d in context.get("designs", {}).items()}
    outputs, resettled = studies.simulate(cfg, designs, build_levers, anchor)
    return {"table": pd.DataFrame({"seed": [task["seed"]], "resettled_years": [resettled]}),
            "seed": task["seed"], "outputs": outputs}


def run_particle(context: dict, task: dict,
                 build_levers: studies.BuildLevers | None = None) -> dict:
    """Runner (``sim.evaluation``) of one candidate of a batch and one seed: its moments.

    The context holds ``base`` (the config the candidates change), ``anchor``,
    ``designs`` (as for ``run_candidate``) and ``moments`` (``Moment.record``); the task
    ``candidate`` (its index in the batch), ``params`` and ``seed``. Returns a one-row table:
    candidate, seed and one column per moment.
    """
    cfg = with_params(validate(context["base"]), task["params"])
    out = run_candidate({**context, "config": as_dict(cfg)}, {"seed": task["seed"]},
                        build_levers)["outputs"]
    row = {"candidate": task["candidate"], "seed": task["seed"]}
    for record in context["moments"]:
        m = Moment.from_record(record)
        row[m.name] = m.simulate(out[m.design and m.design.name])
    return {"table": pd.DataFrame([row])}


def evaluate_batch(problem: Problem, candidates: list[dict[str, float]], root: Path,
                   runner: Runner, cfg: EvaluationConfig) -> list[pd.DataFrame]:
    """The moments of several candidates on the evaluation layer, one frame each.

    A task per candidate and seed (common random numbers), one chunk file each under
    ``root``, so a batch started again reads back what it finished. ``runner`` is
    ``run_particle`` with the study designs' lever builder (``experiments.tasks``).

    Raises:
        RuntimeError: A run failed (its chunk's error is named).
    """
    base = base_config(problem.preset, problem.overrides, horizon_of(problem.moments))
    context = {"base": as_dict(base), **shared_context(base, problem.moments),
               "moments": [m.record() for m in problem.moments]}
    tasks = [{"candidate": i, "params": c, "seed": int(s)}
             for i, c in enumerate(candidates) for s in problem.seeds]
    study = evaluation.evaluate(runner, context, tasks, root,
                                dataclasses.replace(cfg, chunk_size=1), progress=False)
    if not study.complete:
        raise RuntimeError(f"candidates under {root}: {study.summary()}; "
                           f"{'; '.join(study.errors().values())}")
    table = study.table()
    return [table[table["candidate"] == i].set_index("seed")
            .drop(columns="candidate")[[m.name for m in problem.moments]]
            for i in range(len(candidates))]


def standardised(moments: Sequence[Moment], sims: pd.DataFrame) -> pd.Series:
    """Standardised error of each moment: deviation over the combined uncertainty."""
    r = len(sims)
    out = {}
    for m in moments:
        values = sims[m.name].to_numpy(float)
        var = np.nanvar(values, ddof=1) if r > 1 else 0.0
        dev = m.deviation(float(np.nanmean(values)))
        out[m.name] = dev / math.sqrt(m.sd**2 + var / r) if math.isfinite(dev) else math.inf
    return pd.Series(out)


def loss(moments: Sequence[Moment], sims: pd.DataFrame) -> float:
    """Weighted distance: ``sum_k w_k z_k^2`` over the moments."""
    z = standardised(moments, sims)
    return float(sum(m.weight * z[m.name] ** 2 for m in moments))


# --------------------------------------------------------------------------- studies
def storage_for(path: Path) -> optuna.storages.BaseStorage:
    """The storage of a study file.

    SQLite for a ``.db`` file (with heartbeats: the trial of a killed worker is marked
    failed, and a resumed study runs new trials until ``n_trials`` have finished), else
    Optuna's journal file (for a cluster's shared disk).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".db":
        return optuna.storages.RDBStorage(f"sqlite:///{path}", heartbeat_interval=30,
                                          grace_period=120)
    from optuna.storages.journal import JournalFileBackend
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


@dataclass
class Problem:
    """Everything a worker needs to evaluate candidates (picklable)."""

    preset: str
    params: list[Parameter]
    moments: list[Moment]
    fitted: list[str]  # names of the moments in the loss (the rest are held out)
    seeds: list[int]
    overrides: list[str]
    build_levers: studies.BuildLevers | None = None  # for the study designs' levers

    def evaluate(self, params: dict[str, float]) -> pd.DataFrame:
        """The moments of the candidate ``params``, one row per seed (``evaluate``)."""
        return evaluate(params, self.seeds, self.preset, self.moments, self.overrides,
                        self.build_levers)

    def objective(self, trial: optuna.Trial) -> float:
        """Loss of the trial's candidate on the fitted moments; moments kept as attrs."""
        values = {p.key: trial.suggest_float(p.key, p.low, p.high) for p in self.params}
        sims = self.evaluate(values)
        trial.set_user_attr("sims", sims.to_dict(orient="list"))
        return loss([m for m in self.moments if m.name in self.fitted], sims)


@dataclass
class TrialLog:
    """Optuna callback: one short line per finished trial, the full record in a file.

    The short line (``trial 12: loss 31.2; best 24.8 (trial 7)``) goes to this module's
    logger; the full record (number, state, loss, parameters, seconds, simulated moments)
    is appended to ``path`` as one JSON line, from any worker process.
    """

    path: Path | None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Log the trial that just finished."""
        best = study.best_trial if n_finished(study) else None
        log.info("trial %d: %s; best %s", trial.number,
                 f"loss {trial.value:.4g}" if trial.value is not None else trial.state.name,
                 f"{best.value:.4g} (trial {best.number})" if best else "none yet")
        if self.path is None:
            return
        seconds = (trial.duration.total_seconds() if trial.duration is not None else None)
        record = {"trial": trial.number, "state": trial.state.name, "loss": trial.value,
                  "params": trial.params, "seconds": seconds, **trial.user_attrs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def _worker(problem: Problem, storage_path: str, study_name: str, n_trials: int,
            sampler_seed: int, trial_log: Path | None = None, own_process: bool = False) -> None:
    if own_process:  # a worker process has no logging set up: the trial lines go to stderr
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("MESA").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its line per trial: TrialLog's
    study = optuna.load_study(study_name=study_name, storage=storage_for(Path(storage_path)),
                              sampler=optuna.samplers.TPESampler(seed=sampler_seed,
                                                                 n_startup_trials=8))
    cb = optuna.study.MaxTrialsCallback(n_trials, states=(optuna.trial.TrialState.COMPLETE,))
    if n_finished(study) < n_trials:
        study.optimize(problem.objective, callbacks=[cb, TrialLog(trial_log)],
                       gc_after_trial=False)


def n_finished(study: optuna.Study) -> int:
    """Trials that completed."""
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def run_study(problem: Problem, storage_path: Path, study_name: str, n_trials: int,
              n_workers: int = 1, start: dict[str, float] | None = None,
              sampler_seed: int = 0, trial_log: Path | None = None) -> optuna.Study:
    """Create or resume a study and run it until ``n_trials`` trials have finished.

    Args:
        problem: What to fit.
        storage_path: ``*.db`` (SQLite) or another file name (Optuna journal file).
        study_name: Name of the study in the storage.
        n_trials: Finished trials wanted in total (a resumed study runs the rest).
        n_workers: Worker processes sharing the storage.
        start: A first candidate (enqueued once, when the study is new).
        sampler_seed: Seed of each worker's TPE sampler (worker k adds k).
        trial_log: File that receives the full record of every trial (``TrialLog``).

    Returns:
        The study.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its line per trial: TrialLog's
    storage = storage_for(storage_path)
    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                load_if_exists=True)
    if start is not None and not study.trials:
        study.enqueue_trial(start)
    done = n_finished(study)
    if done:
        log.info("resuming study %s: %d of %d trials finished", study_name, done, n_trials)
    if n_workers <= 1:
        _worker(problem, str(storage_path), study_name, n_trials, sampler_seed, trial_log)
    else:
        Parallel(n_jobs=n_workers)(
            delayed(_worker)(problem, str(storage_path), study_name, n_trials,
                             sampler_seed + k, trial_log, True) for k in range(n_workers))
    return optuna.load_study(study_name=study_name, storage=storage)


# --------------------------------------------------------------------------- reports
def fit_table(moments: Sequence[Moment], sims: pd.DataFrame,
              fitted: Sequence[str]) -> pd.DataFrame:
    """Per moment: observed, simulated mean and 95% interval, standardised error, met.

    A moment is met when its standardised error is within 2 (within its uncertainty).
    """
    z = standardised(moments, sims)
    r = len(sims)
    rows = []
    for m in moments:
        v = sims[m.name].to_numpy(float)
        mean = float(np.nanmean(v))
        half = (stats.t.ppf(0.975, r - 1) * np.nanstd(v, ddof=1) / math.sqrt(r)
                if r > 1 else math.nan)
        rows.append({"moment": m.name, "kind": m.kind, "observed": m.observed_text,
                     "sd": m.sd, "simulated": mean, "ci_low": mean - half,
                     "ci_high": mean + half, "z": float(z[m.name]),
                     "met": bool(abs(z[m.name]) <= 2.0),
                     "role": "fitted" if m.name in fitted else "held out",
                     "source": m.source})
    return pd.DataFrame(rows)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """Finished trials: number, loss and parameter values."""
    rows = [{"trial": t.number, "loss": t.value, **t.params}
            for t in study.get_trials(deepcopy=False,
                                      states=(optuna.trial.TrialState.COMPLETE,))]
    return pd.DataFrame(rows)


def best_sims(study: optuna.Study) -> pd.DataFrame:
    """The per-seed moments of the best trial."""
    return pd.DataFrame(study.best_trial.user_attrs["sims"])


def profile(problem: Problem, best: dict[str, float], points: int = 5) -> pd.DataFrame:
    """Loss along each parameter through ``best``, the others held at ``best``.

    A flat profile means the moments do not pin the parameter down.
    """
    fitted = [m for m in problem.moments if m.name in problem.fitted]
    rows = []
    for p in problem.params:
        for value in np.linspace(p.low, p.high, points):
            sims = problem.evaluate({**best, p.key: float(value)})
            rows.append({"parameter": p.key, "value": float(value),
                         "loss": loss(fitted, sims), "best": best[p.key]})
    return pd.DataFrame(rows)


def behaviour_yaml(cfg: Config, params: dict[str, float], header: str) -> str:
    """A ``behaviour`` group option: every behaviour value that differs from the schema.

    That is the fitted ``params`` and whatever the base config's behaviour option already
    set (an earlier fit the run started from); lists are written whole.
    """
    fitted = as_dict(with_params(cfg, params))["behaviour"]
    schema = as_dict(Config())["behaviour"]
    out = {group: {k: v for k, v in values.items() if v != schema[group][k]}
           for group, values in fitted.items()}
    body = yaml.safe_dump({g: v for g, v in out.items() if v}, sort_keys=True,
                          default_flow_style=None)
    return f"# @package behaviour\n{header}{body}"
