"""The lever interface: one uniform hook called at the levers point of the model's step.

A lever is initialised once on the model (``init``), applied at the end of every simulated
year after reputations are updated (``apply``), and finalised at the end of the run
(``finalize``). It acts only from ``start_year`` up to ``end_year``. ``repr`` shows its
arguments so that saved configs and summaries rebuild it. The core model ships no lever:
the baseline scenario is the empty list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.model import SegregationModel


class Lever:
    """Base class of policy levers.

    Args:
        start_year: First simulated year in which the lever acts (1 = first step).
        end_year: Last year in which it acts; ``None`` for the whole run.

    """

    def __init__(self, start_year: int = 1, end_year: int | None = None) -> None:
        if start_year < 1:
            raise ValueError(f"start_year={start_year!r} is not allowed; expected >= 1")
        if end_year is not None and end_year < start_year:
            raise ValueError(f"end_year={end_year!r} is not allowed; expected >= start_year")
        self.start_year = start_year
        self.end_year = end_year

    def active(self, year: int) -> bool:
        """True if the lever acts in ``year``."""
        return year >= self.start_year and (self.end_year is None or year <= self.end_year)

    def init(self, model: SegregationModel) -> None:
        """Prepare the lever on a freshly built model (before year 1)."""

    def apply(self, model: SegregationModel) -> None:
        """Act on the model at the levers hook of the current year."""
        if self.active(model.year):
            self.act(model)

    def act(self, model: SegregationModel) -> None:
        """The lever's effect in an active year; subclasses override this."""

    def finalize(self, model: SegregationModel) -> None:
        """Clean up at the end of the run."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
