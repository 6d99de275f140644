"""Approximate Bayesian computation (ABC-SMC, pyabc): a posterior over the fitted parameters.

Needs the optional extra ``abc`` (``pip install -e '.[abc]'``). The pieces are those of the
Optuna fit (``calibration.fit``), so the two methods answer the same question:

* prior: uniform on each interval of ``calibration/parameters.yaml``;
* simulator: the moments of a candidate on the replicate seeds, the same seeds for every
  particle (common random numbers); its summary statistics are each moment's values over
  the seeds, whose mean is the simulated moment and whose spread enters the
  standardisation;
* distance: ``sqrt(fit.loss)`` on the fitted moments, the square root of the Optuna loss
  (the targets, with their ranges and bounds, live in the moments: pyabc's observed
  statistics stay empty).

The sampler (``BatchSampler``) runs pyabc's proposals in batches through a batch evaluator,
``evaluate_batch(candidates) -> moments``: by default ``Problem.evaluate`` in this process;
``experiments.calibrate`` passes one on the evaluation layer (``fit.evaluate_batch``: serial,
joblib or a Hydra launcher, one chunk file per candidate and seed). Proposal ``i`` of a
generation draws with numpy's generator seeded from ``(seed, generation, i)``, and a
generation keeps the proposals up to its ``population``-th acceptance in proposal order, so
the posterior does not depend on the backend, the number of processes or the batch size.

``run`` keeps the history in a SQLite file and runs one generation per ``ABCSMC`` object,
loaded from that file (pyabc's ``load``), with numpy's global generator seeded from
``(seed, generation)`` first. A killed run started again continues after its last finished
generation and ends with the same posterior as a run never stopped; on the evaluation
layer the candidates its killed generation had finished are read back from their chunk
files, not run again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
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


EvaluateBatch = Callable[[list[dict[str, float]]], list[pd.DataFrame]]


@dataclass(frozen=True)
class Settings:
    """How the ABC-SMC run samples.

    Attributes:
        population: Accepted particles per generation.
        generations: Generations wanted in total (a resumed run samples the rest).
        min_epsilon: Stop after a generation whose threshold is at or below this distance.
        seed: Seed of numpy's generator, combined with the generation and proposal index.
        batch: Proposals evaluated together (as many as the backend runs at once, or more);
            the posterior does not depend on it.
    """

    population: int
    generations: int
    min_epsilon: float = 0.0
    seed: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        for name, value, least in (("population", self.population, 2),
                                   ("generations", self.generations, 1),
                                   ("min_epsilon", self.min_epsilon, 0),
                                   ("batch", self.batch, 1)):
            if not value >= least:
                raise ValueError(f"{name}={value} is not allowed; expected at least {least}")


def prior(params: Sequence[fit.Parameter]) -> pyabc.Distribution:
    """Uniform on each parameter's interval."""
    return pyabc.Distribution(**{p.key: pyabc.RV("uniform", p.low, p.high - p.low)
                                 for p in params})


def candidate_key(parameter: Mapping[str, float]) -> tuple:
    """A candidate's identity: its values, exactly."""
    return tuple(sorted((k, float(v)) for k, v in parameter.items()))


class Simulator:
    """The model pyabc calls: each moment's values over the replicate seeds.

    While ``recording``, an unseen candidate is only noted (and gets no statistics, so its
    distance is infinite); ``run_pending`` then evaluates the noted ones in one batch.
    """

    def __init__(self, evaluate_batch: EvaluateBatch) -> None:
        self.evaluate_batch = evaluate_batch
        self.recording = False
        self.pending: dict[tuple, dict[str, float]] = {}
        self.results: dict[tuple, dict[str, np.ndarray]] = {}

    def __call__(self, parameter: Mapping[str, float]) -> dict[str, np.ndarray]:
        """The statistics of a candidate (evaluated now, unless recording)."""
        key = candidate_key(parameter)
        if key not in self.results:
            self.pending[key] = {k: float(v) for k, v in parameter.items()}
            if self.recording:
                return {}
            self.run_pending()
        return self.results[key]

    def run_pending(self) -> None:
        """Evaluate the noted candidates in one batch."""
        keys = list(self.pending)
        frames = self.evaluate_batch([self.pending[k] for k in keys]) if keys else []
        for key, sims in zip(keys, frames, strict=True):
            self.results[key] = {name: sims[name].to_numpy(float) for name in sims.columns}
        self.pending.clear()


class BatchSampler(pyabc.sampler.Sampler):
    """pyabc's sampler interface over batches of proposals (see the module docstring).

    Each batch is proposed twice with the same generator states: first to note the
    candidates (``Simulator.recording``), which are then evaluated together, and again to
    let pyabc weigh and accept them in proposal order.
    """

    def __init__(self, simulator: Simulator, seed: int, batch: int) -> None:
        super().__init__()
        self.simulator, self.seed, self.batch = simulator, seed, batch

    def proposal_seed(self, t: int, i: int) -> list[int]:
        """The generator seed of proposal ``i`` of generation ``t``.

        pyabc's calibration sample (``t = -1``, the prior draws that set the first
        threshold) and generation 0 (prior draws too) share their seeds: the first
        generation's first ``population`` proposals are the calibration sample's, read back
        rather than run again, so the first threshold costs no runs of its own (the
        threshold is the median distance of the first proposals, as in rejection ABC that
        keeps the closer half).
        """
        return [self.seed, max(t, 0), i]

    def sample_until_n_accepted(self, n, simulate_one, t, *, max_eval=np.inf,
                                all_accepted=False, ana_vars=None):
        """Proposals in index order until ``n`` are accepted (pyabc's ``Sampler`` method)."""
        sample = self._create_empty_sample()
        index = accepted = 0
        while accepted < n and index < max_eval:
            batch = range(index, index + self.batch)
            self.simulator.recording = True
            for i in batch:
                np.random.seed(self.proposal_seed(t, i))
                simulate_one()
            self.simulator.recording = False
            self.simulator.run_pending()
            for i in batch:
                np.random.seed(self.proposal_seed(t, i))
                particle = simulate_one()
                sample.append(particle)
                index += 1
                accepted += bool(particle.accepted)
                if accepted == n:
                    break
        if t >= 0:  # generation 0 reads back the calibration sample's candidates
            self.simulator.results.clear()
        self.nr_evaluations_ = index
        if sample.n_accepted < n:
            sample.ok = False
        return sample


def distance(problem: fit.Problem, x: Mapping[str, np.ndarray],
             x_0: Mapping[str, np.ndarray]) -> float:
    """``sqrt`` of the Optuna fit's loss on the fitted moments (``x_0`` is empty).

    A candidate without statistics (only noted for its batch) is infinitely far.
    """
    if not x:
        return math.inf
    fitted = [m for m in problem.moments if m.name in problem.fitted]
    return math.sqrt(fit.loss(fitted, pd.DataFrame(dict(x))))


def serial(problem: fit.Problem) -> EvaluateBatch:
    """The batch evaluator of this process: ``Problem.evaluate`` for each candidate."""
    return lambda candidates: [problem.evaluate(c) for c in candidates]


def smc(problem: fit.Problem, settings: Settings,
        evaluate_batch: EvaluateBatch) -> pyabc.ABCSMC:
    """A fresh ``ABCSMC`` object for the problem (pyabc caches state per object)."""
    simulator = Simulator(evaluate_batch)
    return pyabc.ABCSMC(simulator, prior(problem.params), partial(distance, problem),
                        population_size=settings.population,
                        sampler=BatchSampler(simulator, settings.seed, settings.batch))


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


def run(problem: fit.Problem, db: Path, settings: Settings,
        evaluate_batch: EvaluateBatch | None = None) -> pyabc.History:
    """Create or continue the ABC-SMC run stored in ``db`` and sample until finished.

    Args:
        problem: What to fit (parameters, moments, fitted moments, seeds, overrides).
        db: The SQLite history file.
        settings: Population, generations, minimum epsilon, seed, batch.
        evaluate_batch: Evaluates a batch of candidates (default: ``serial``).

    Returns:
        The history.

    Raises:
        ValueError: ``db`` holds a run of another problem, base behaviour, population
            size or seed.
    """
    evaluate_batch = evaluate_batch or serial(problem)
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    meta = identity(problem, settings)
    history = pyabc.History(url)
    if not history.all_runs():
        history = smc(problem, settings, evaluate_batch).new(url, meta_info=meta)
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
        abc = smc(problem, settings, evaluate_batch)
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
