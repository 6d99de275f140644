"""The dashboard's model: a policy scenario and its baseline twin, stepped together.

``TwinModel`` is what the dashboard (``experiments.app``) shows. It builds two
``scenarios.ScenarioModel`` runs on the same city with the same seed, one with the chosen
levers and one with none, and steps them in lock-step, so every chart can show the lever's
effect (the difference to the twin) and not only the level. With common random numbers
(``sim.rng``) the two runs are identical until a lever starts acting.

The policy is either a shipped scenario, run as shipped, or ``custom``: levers set from the
dashboard's controls. A custom lever is the shipped scenario file's lever with only the
controlled parameter changed, so its other settings and their sources stay in one place
(``conf/scenario/*.yaml``).
"""

from __future__ import annotations

import logging
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import mesa
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments.compare import available_scenarios
from scenarios import ScenarioModel
from sim.config import CONF_DIR, Config, ScenarioConfig
from sim.model import SegregationModel

CUSTOM = "custom"
CATCHMENT_CHOICES = ("unchanged", "catchment_mix", "flexible_catchment")
BAND_SEEDS = 4  # assumption: a few baseline seeds show the run-to-run noise, cheaply
_band_pool = ThreadPoolExecutor(max_workers=1)  # one band at a time, beside the page

logger = logging.getLogger(__name__)


def noise_band(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """Run-to-run spread of the baseline: every metric per year over runs with ``seeds``.

    Args:
        cfg: The baseline config (its seed is replaced by each of ``seeds``).
        seeds: The seeds to run.

    Returns:
        One row per year: ``<metric>_lo`` and ``<metric>_hi``, the smallest and largest
        value over the runs, for every metric.
    """
    frames = []
    for seed in seeds:
        model = SegregationModel(replace(cfg, seed=seed), levers=[],
                                 checkpoints=cfg.checkpoint_dir or None)
        model.run()
        frames.append(model.recorder.metrics_frame().set_index("year"))
    runs = np.stack([f.to_numpy(float) for f in frames])
    with warnings.catch_warnings():  # a metric empty in every run stays empty (NaN)
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(runs, axis=0), np.nanmax(runs, axis=0)
    cols = frames[0].columns
    out = pd.DataFrame(np.hstack([lo, hi]), index=frames[0].index,
                       columns=[f"{c}_lo" for c in cols] + [f"{c}_hi" for c in cols])
    logger.info("run-to-run band from seeds %s ready", seeds)
    return out


def shipped_levers(name: str) -> list[dict[str, Any]]:
    """Lever specs of a shipped scenario file (``conf/scenario/<name>.yaml``)."""
    spec = OmegaConf.load(CONF_DIR / "scenario" / f"{name}.yaml")
    return OmegaConf.to_container(spec.levers)  # type: ignore[return-value]


def custom_levers(tp_budget_meur: float = 0.0, tp_allocation: str = "proportional",
                  engagement_coverage: float = 0.0, catchments: str = "unchanged",
                  renewal_dwellings: int = 0) -> list[dict[str, Any]]:
    """Lever specs for the dashboard's controls; a control at zero leaves its lever out.

    Args:
        tp_budget_meur: Needs-based (TP) funding of schools, million euros a year at
            Helsinki scale (the lever scales it to the city); the schools' lever of
            ``tp_funding.yaml``.
        tp_allocation: How the TP budget is shared (``scenarios.tp_funding.ALLOCATIONS``).
        engagement_coverage: Share of the renewal areas' units reached by engagement work
            (``engagement.yaml``).
        catchments: ``unchanged`` or the scenario whose catchment levers to use
            (``catchment_mix``: redraw; ``flexible_catchment``: shared catchments).
        renewal_dwellings: Infill dwellings a year in the renewal areas at Helsinki scale
            (``urban_renewal.yaml``).

    Raises:
        ValueError: An unknown catchment choice.

    """
    if catchments not in CATCHMENT_CHOICES:
        raise ValueError(f"catchments={catchments!r} is not allowed; expected one of "
                         f"{list(CATCHMENT_CHOICES)}")
    specs: list[dict[str, Any]] = []
    if tp_budget_meur > 0:
        schools = shipped_levers("tp_funding")[0]
        specs.append({**schools, "budget_eur": float(tp_budget_meur) * 1e6,
                      "allocation": tp_allocation})
    if engagement_coverage > 0:
        specs.append({**shipped_levers("engagement")[0],
                      "coverage": float(engagement_coverage)})
    if catchments != "unchanged":
        specs += shipped_levers(catchments)
    if renewal_dwellings > 0:
        specs.append({**shipped_levers("urban_renewal")[0],
                      "dwellings_per_year": float(renewal_dwellings)})
    return specs


class TwinModel(mesa.Model):
    """A policy run and its baseline twin, on one city with one seed, stepped together.

    Keyword parameters are the dashboard's controls (Mesa's ``SolaraViz`` rebuilds the model
    from them on reset).

    Args:
        policy: ``custom`` (levers from the controls below) or a shipped scenario name.
        tp_budget_meur: See ``custom_levers``.
        tp_allocation: See ``custom_levers``.
        engagement_coverage: See ``custom_levers``.
        catchments: See ``custom_levers``.
        renewal_dwellings: See ``custom_levers``.
        seed: Run seed of both runs.
        city: City preset (``small`` or ``helsinki``).
        years: Years to simulate; the model stops (``running`` False) after them.

    Attributes:
        policy: The run with the levers (a ``ScenarioModel``).
        baseline: The run without levers (``ScenarioConfig()``: the baseline scenario).
        step_seconds: Wall time of the last year of both runs.
        band: The baseline's run-to-run band (``noise_band`` over ``BAND_SEEDS`` seeds after
            this one), computed in the background once ``request_band`` asks for it.
        settings: The lever controls of a ``custom`` policy (``None`` for a shipped one).
        redraw_seconds: Wall time of the page's last redraw, per view.

    """

    def __init__(self, policy: str = CUSTOM, tp_budget_meur: float = 0.0,
                 tp_allocation: str = "proportional", engagement_coverage: float = 0.0,
                 catchments: str = "unchanged", renewal_dwellings: int = 0, seed: int = 0,
                 city: str = "small", years: int = 10) -> None:
        super().__init__(rng=int(seed))
        self.settings = None if policy != CUSTOM else {
            "tp_budget_meur": tp_budget_meur, "tp_allocation": tp_allocation,
            "engagement_coverage": engagement_coverage, "catchments": catchments,
            "renewal_dwellings": renewal_dwellings}
        common = {"seed": int(seed), "city": city, "years": int(years),
                  "output.progress": False, "output.figures": False}
        if policy == CUSTOM:
            levers = custom_levers(tp_budget_meur, tp_allocation, engagement_coverage,
                                   catchments, renewal_dwellings)
            self.policy = ScenarioModel(**common, **{
                "scenario.name": CUSTOM, "scenario.levers": levers,
                "scenario.description": "Levers set on the dashboard."})
        elif policy in available_scenarios():
            self.policy = ScenarioModel(policy, **common)
        else:
            raise ValueError(f"policy={policy!r} is not allowed; expected {CUSTOM!r} or one of "
                             f"{available_scenarios()}")
        # The same config without levers (no second composition: the page builds this often).
        base_cfg = replace(self.policy.cfg, scenario=ScenarioConfig())
        self.baseline = SegregationModel(base_cfg, levers=[],
                                         checkpoints=base_cfg.checkpoint_dir or None)
        self.years = int(years)
        self.band: Future[pd.DataFrame] | None = None
        self.step_seconds = 0.0
        self.redraw_seconds: dict[str, float] = {}  # the page's views book their draw times

    def request_band(self) -> Future[pd.DataFrame]:
        """Start computing the run-to-run band (once); returns its future."""
        if self.band is None:
            seed = self.baseline.cfg.seed
            self.band = _band_pool.submit(noise_band, self.baseline.cfg,
                                          [seed + k for k in range(1, BAND_SEEDS + 1)])
        return self.band

    def band_ready(self) -> pd.DataFrame | None:
        """The band if it has been computed, else ``None``."""
        return self.band.result() if self.band is not None and self.band.done() else None

    @property
    def year(self) -> int:
        """Simulated years so far."""
        return self.policy.year

    def step(self) -> None:
        """One year of the policy run and of its baseline twin."""
        t0 = time.perf_counter()
        self.policy.step()
        self.baseline.step()
        self.step_seconds = time.perf_counter() - t0
        self.running = self.policy.running
