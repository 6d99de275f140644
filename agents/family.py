"""Family agent: a household with 1-3 children aged 0-15.

Thousands of families arrive and leave every year. ``Family.join`` and ``Family.leave``
register and deregister them with the model in one pass per batch (``agents.mesa_bulk``)
instead of one Mesa call per family: the same bookkeeping as ``Agent.__init__`` /
``Agent.remove`` at a fraction of the cost. When anything listens to Mesa's agent signals,
or a Mesa data registry tracks families, they fall back to the per-agent calls, so every
signal is still sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import mesa
import numpy as np

from agents import mesa_bulk

if TYPE_CHECKING:
    from sim.model import SegregationModel


class Family(mesa.Agent):
    """A family; its attributes are views into ``model.families`` at ``slot``.

    Args:
        model: The model.
        slot: Index of the family in the family pool.

    """

    def __init__(self, model: SegregationModel, slot: int) -> None:
        super().__init__(model)
        self.slot = int(slot)

    @classmethod
    def join(cls, model: SegregationModel, slots: np.ndarray) -> list[Self]:
        """Create and register the agents of families at ``slots`` (in order)."""
        if mesa_bulk.observed(model, cls, mesa_bulk.ADDED):
            return [cls(model, int(s)) for s in slots]
        first = mesa_bulk.reserve_ids(model, len(slots))
        agents = []
        for uid, slot in enumerate(slots.tolist(), start=first):
            agent = cls.__new__(cls)
            # Filled as soon as it exists, in Agent.__init__'s order: then every instance
            # keeps its attributes in the class's shared key table. Objects created first
            # and filled later use that table up, and each one gets a dict of its own
            # (CPython 3.12): twice the allocations and time.
            agent.model, agent.unique_id, agent.pos, agent.slot = model, uid, None, slot
            agents.append(agent)
        mesa_bulk.add(model, cls, agents)
        return agents

    @classmethod
    def leave(cls, model: SegregationModel, agents: list[Self]) -> None:
        """Deregister the agents of families that leave the model."""
        if mesa_bulk.observed(model, cls, mesa_bulk.REMOVED):
            for agent in agents:
                agent.remove()
            return
        mesa_bulk.remove(model, cls, agents)

    @property
    def ses(self) -> int:
        """Socio-economic status class (0 low, 1 middle, 2 high)."""
        return int(self.model.families.ses[self.slot])

    @property
    def lang(self) -> int:
        """Language group (0 native Finnish/Swedish, 1 foreign-language)."""
        return int(self.model.families.lang[self.slot])

    @property
    def home(self) -> int:
        """Flat id of the home cell."""
        return int(self.model.families.cell[self.slot])

    @property
    def tenure(self) -> int:
        """Tenure (0 social rental, 1 private rental, 2 owner-occupied)."""
        return int(self.model.families.tenure[self.slot])

    @property
    def children(self) -> np.ndarray:
        """Child-pool slots of this family's children."""
        ch = self.model.children
        return np.flatnonzero(ch.active & (ch.family == self.slot))

    @property
    def cell(self) -> mesa.discrete_space.Cell:
        """The Mesa grid cell of the home."""
        return self.model.cell_of(self.home)
