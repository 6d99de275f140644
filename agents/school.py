"""School agent: a lower (grades 1-6) or upper (grades 7-9) comprehensive school unit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa.discrete_space import FixedAgent

if TYPE_CHECKING:
    from sim.model import SegregationModel


class School(FixedAgent):
    """A school fixed on its grid cell; state lives in ``model.schools`` at ``index``.

    Args:
        model: The model.
        index: Global school index (``model.schools.level`` tells lower from upper).
        level: ``"lower"`` or ``"upper"``.

    """

    def __init__(self, model: SegregationModel, index: int, level: str) -> None:
        super().__init__(model)
        self.index = int(index)
        self.level = level
        self.cell = model.cell_of(int(model.schools.cell[index]))

    @property
    def capacity(self) -> int:
        """Total seats."""
        return int(self.model.schools.capacity[self.index])

    @property
    def enrolment(self) -> int:
        """Pupils enrolled."""
        return int(self.model.enrolment("school")[self.index])

    @property
    def reputation(self) -> float:
        """Reputation as perceived by native families."""
        return float(self.model.schools.rep_perceived[0, self.index])
