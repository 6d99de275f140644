"""Daycare agent: a municipal or private early-childhood-education unit (ages 1-6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa.discrete_space import FixedAgent

if TYPE_CHECKING:
    from sim.model import SegregationModel


class Daycare(FixedAgent):
    """A daycare fixed on its grid cell; state lives in ``model.daycares`` at ``index``.

    Args:
        model: The model.
        index: Daycare index.

    """

    def __init__(self, model: SegregationModel, index: int) -> None:
        super().__init__(model)
        self.index = int(index)
        self.cell = model.cell_of(int(model.daycares.cell[index]))

    @property
    def private(self) -> bool:
        """True for a private provider."""
        return bool(self.model.daycares.private[self.index])

    @property
    def capacity(self) -> int:
        """Seats."""
        return int(self.model.daycares.capacity[self.index])

    @property
    def enrolment(self) -> int:
        """Children enrolled."""
        return int(self.model.enrolment("daycare")[self.index])
