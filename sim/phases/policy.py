"""Phase: the levers point, where the scenario's policy levers act."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.phases.reputation import perceive

if TYPE_CHECKING:
    from sim.model import SegregationModel


def apply_levers(model: SegregationModel) -> None:
    """Phase: each lever's ``apply``, in scenario order, then the perceived reputations.

    Perception is recomputed so that trust and resources set by levers count in the next
    year's choices.
    """
    for lever in model.levers:
        lever.apply(model)
    perceive(model)
