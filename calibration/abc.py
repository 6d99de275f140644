"""Approximate Bayesian computation (ABC-SMC, pyabc): a posterior over the fitted parameters.

Needs the optional extra ``abc`` (``pip install -e '.[abc]'``). The pieces are those of the
Optuna fit (``calibration.fit``), so the two methods answer the same question:

* prior: uniform on each interval of ``calibration/parameters.yaml``;
* simulator: ``fit.evaluate`` on the replicate seeds, the same seeds for every particle
  (common random numbers); its summary statistics are each moment's values over the seeds,
  whose mean is the simulated moment and whose spread enters the standardisation;
* distance: ``sqrt(fit.loss)`` on the fitted moments, the square root of the Optuna loss
  (the targets, with their ranges and bounds, live in the moments: pyabc's observed
  statistics stay empty).

``run`` keeps the history in a SQLite file. It runs one generation per ``ABCSMC`` object,
loaded from that file (pyabc's ``load``), with numpy's global generator seeded from
``(seed, generation)`` first. So a killed run started again continues after its last
finished generation (the generation it was in is sampled anew) and ends with the same
posterior as a run never stopped; with the single-core sampler the same command gives the
same posterior. pyabc's multi-core sampler reseeds its processes from the operating
system: faster, not reproducible.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyabc
from pyabc.weighted_statistics import effective_sample_size, weighted_mean, weighted_quantile

from calibration import fit
from sim.config import as_dict

log = logging.getLogger(__name__)
# pyabc gives its logger a handler of its own on import: its records would be printed twice
# under the application's logging. Warnings only, through the application's handlers;
# ``run`` logs each generation (pyabc's "Stop" would follow every one of them here).
logging.getLogger("ABC").handlers.clear()
logging.getLogger("ABC").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Settings:
    """How the ABC-SMC run samples.

    Attributes:
        population: Accepted particles per generation.
        generations: Generations wanted in total (a resumed run samples the rest).
        min_epsilon: Stop after a generation whose threshold is at or below this distance.
        seed: Seed of numpy's generator, combined with the generation index.
        workers: 1 for pyabc's deterministic single-core sampler, more for its multi-core
            sampler on as many local processes (not reproducible).
    """

    population: int
    generations: int
    min_epsilon: float = 0.0
    seed: int = 1
    workers: int = 1

    def __post_init__(self) -> None:
        for name, value, least in (("population", self.population, 2),
                                   ("generations", self.generations, 1),
                                   ("min_epsilon", self.min_epsilon, 0),
                                   ("workers", self.workers, 1)):
            if not value >= least:
                raise ValueError(f"{name}={value} is not allowed; expected at least {least}")


def prior(params: Sequence[fit.Parameter]) -> pyabc.Distribution:
    """Uniform on each parameter's interval."""
    return pyabc.Distribution(**{p.key: pyabc.RV("uniform", p.low, p.high - p.low)
                                 for p in params})


def simulate(problem: fit.Problem, parameter: Mapping[str, float]) -> dict[str, np.ndarray]:
    """The model pyabc calls: each moment's values over the replicate seeds."""
    sims = problem.evaluate(dict(parameter))
    return {name: sims[name].to_numpy(float) for name in sims.columns}


def distance(problem: fit.Problem, x: Mapping[str, np.ndarray],
             x_0: Mapping[str, np.ndarray]) -> float:
    """``sqrt`` of the Optuna fit's loss on the fitted moments (``x_0`` is empty)."""
    fitted = [m for m in problem.moments if m.name in problem.fitted]
    return math.sqrt(fit.loss(fitted, pd.DataFrame(dict(x))))


def smc(problem: fit.Problem, settings: Settings) -> pyabc.ABCSMC:
    """A fresh ``ABCSMC`` object for the problem (pyabc caches state per object)."""
    sampler = (pyabc.sampler.SingleCoreSampler() if settings.workers <= 1 else
               pyabc.sampler.MulticoreEvalParallelSampler(n_procs=settings.workers))
    return pyabc.ABCSMC(partial(simulate, problem), prior(problem.params),
                        partial(distance, problem), population_size=settings.population,
                        sampler=sampler)


def identity(problem: fit.Problem, settings: Settings) -> str:
    """What a stored run must share with this one to be continued (pyabc's meta info)."""
    behaviour = as_dict(fit.base_config(problem.preset, problem.overrides))["behaviour"]
    return str({"problem": repr(problem), "behaviour": behaviour,
                "population": settings.population, "seed": settings.seed})


def finished(history: pyabc.History, settings: Settings) -> bool:
    """All generations sampled, or the last one's threshold at or below ``min_epsilon``."""
    if history.max_t + 1 >= settings.generations:
        return True
    return history.max_t >= 0 and epsilons(history)["epsilon"].iloc[-1] <= settings.min_epsilon


def run(problem: fit.Problem, db: Path, settings: Settings) -> pyabc.History:
    """Create or continue the ABC-SMC run stored in ``db`` and sample until finished.

    Args:
        problem: What to fit (parameters, moments, fitted moments, seeds, overrides).
        db: The SQLite history file.
        settings: Population, generations, minimum epsilon, seed, workers.

    Returns:
        The history.

    Raises:
        ValueError: ``db`` holds a run of another problem, base behaviour, population
            size or seed.
    """
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    meta = identity(problem, settings)
    history = pyabc.History(url)
    if not history.all_runs():
        history = smc(problem, settings).new(url, meta_info=meta)
    elif history.get_abc().json_parameters != meta:
        raise ValueError(f"{db} holds an ABC-SMC run of another problem, base behaviour, "
                         "population or seed; choose another storage=... or out=...")
    elif history.max_t >= 0:
        log.info("resuming %s: %d of %d generations finished", db, history.max_t + 1,
                 settings.generations)
    while not finished(history, settings):
        t = history.max_t + 1
        # One object a generation, seeded by its index: a resumed run draws what an
        # uninterrupted one would have.
        np.random.seed([settings.seed, t])
        abc = smc(problem, settings)
        abc.load(url, history.id)
        history = abc.run(minimum_epsilon=settings.min_epsilon, max_nr_populations=1)
        last = epsilons(history).iloc[-1]
        log.info("generation %d of %d: epsilon %.3g, %d accepted of %d simulated (%.0f%%), "
                 "effective sample size %.1f", t + 1, settings.generations, last["epsilon"],
                 last["accepted"], last["simulations"], 100 * last["acceptance"], last["ess"])
    return history


# --------------------------------------------------------------------------- reports
def posterior(history: pyabc.History) -> pd.DataFrame:
    """The last generation's particles: parameter values, weight and distance."""
    population = history.get_population()
    return pd.DataFrame([{**p.parameter, "weight": p.weight, "distance": p.distance}
                         for p in population.particles])


def summary(post: pd.DataFrame, params: Sequence[fit.Parameter]) -> pd.DataFrame:
    """Per parameter: weighted mean, median, 5% and 95% quantiles, and the prior interval."""
    w = post["weight"].to_numpy(float)
    w = w / w.sum()
    rows = []
    for p in params:
        x = post[p.key].to_numpy(float)
        rows.append({"parameter": p.key, "mean": float(weighted_mean(x, w)),
                     **{name: float(weighted_quantile(x, w, alpha=q))
                        for name, q in (("median", 0.5), ("q05", 0.05), ("q95", 0.95))},
                     "prior_low": p.low, "prior_high": p.high})
    return pd.DataFrame(rows)


def epsilons(history: pyabc.History) -> pd.DataFrame:
    """Per generation: threshold, simulations, accepted, acceptance rate, effective size.

    An effective sample size far below the population means a few particles carry the
    posterior.
    """
    pops = history.get_all_populations()
    pops = pops[pops["t"] >= 0]  # t = -1 is pyabc's record of the run's calibration sample
    ess = [effective_sample_size(history.get_weighted_distances(t)["w"].to_numpy(float))
           for t in pops["t"]]
    return pd.DataFrame({"generation": pops["t"].to_numpy(int),
                         "epsilon": pops["epsilon"].to_numpy(float),
                         "simulations": pops["samples"].to_numpy(int),
                         "accepted": pops["particles"].to_numpy(int),
                         "acceptance": (pops["particles"] / pops["samples"]).to_numpy(float),
                         "ess": np.asarray(ess, float)})
