"""Policy levers and scenarios: the policy layer above the simulation core.

``scenarios.base`` holds the lever base class, the registry and ``build_levers``; every other
lever module defines one lever family and registers it when imported here. Entry points
build a scenario's levers with ``build_levers`` and pass them to ``SegregationModel``;
``scenarios.model.ScenarioModel`` does the same for Mesa's tools (a model with a scenario's
levers, built from keyword parameters).
"""

from scenarios import catchments, engagement, tp_funding, urban_renewal
from scenarios.base import LEVERS, Lever, build_levers
from scenarios.model import ScenarioModel

__all__ = ["LEVERS", "Lever", "ScenarioModel", "build_levers", "catchments", "engagement",
           "tp_funding", "urban_renewal"]
