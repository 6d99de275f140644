"""Policy levers and scenarios: the policy layer above the simulation core.

``scenarios.base`` holds the lever base class, the registry and ``build_levers``; every other
lever module defines one lever family and registers it when imported here. Entry points
build a scenario's levers with ``build_levers`` and pass them to ``SegregationModel``.
"""

from scenarios import catchments, engagement, tp_funding, urban_renewal
from scenarios.base import LEVERS, Lever, build_levers

__all__ = ["LEVERS", "Lever", "build_levers", "catchments", "engagement", "tp_funding",
           "urban_renewal"]
