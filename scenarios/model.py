"""A scenario's model, built from keyword parameters as Mesa's tools build models.

``ScenarioModel(scenario="engagement", seed=1, **overrides)`` is ``sim.model.SegregationModel``
with the scenario's levers: the scenario is chosen in the config (``conf/scenario/<name>.yaml``,
or its levers given as ``**{"scenario.levers": [...]}``), so the config stays the one record
of the run, and its levers are built here, in the scenarios layer, and handed to the model.
``mesa.batch_run(ScenarioModel, {"scenario": ["baseline", "engagement"]}, rng=range(4))``
compares scenarios with common random numbers.
"""

from __future__ import annotations

from typing import Any

from scenarios.base import build_levers
from sim.config import config_from_params
from sim.model import SegregationModel


class ScenarioModel(SegregationModel):
    """``SegregationModel`` with the levers of a scenario.

    Args:
        scenario: A shipped scenario (``conf/scenario/<name>.yaml``).
        seed: Run seed (Mesa's ``batch_run`` passes it).
        rng: Integer seed under Mesa's other name.
        **params: Config overrides as for ``SegregationModel`` (dotted or ``__`` paths).

    Raises:
        ValueError: Unknown scenario, key or invalid value; invalid lever arguments.

    """

    def __init__(self, scenario: str = "baseline", *, seed: int | None = None,
                 rng: int | None = None, **params: Any) -> None:
        cfg = config_from_params(seed=seed, rng=rng, scenario=scenario, **params)
        levers = build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")
        # Settled starts come from the checkpoint folder: one burn-in per city and seed.
        super().__init__(cfg, levers=levers, checkpoints=cfg.checkpoint_dir or None)
