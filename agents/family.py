"""Family agent: a household with 1-3 children aged 0-15."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

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
