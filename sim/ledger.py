"""The cost ledger: what the city's levers spend, by year and source.

Levers book their costs through ``SegregationModel.book_cost``; the metrics read the yearly
total (``policy_cost_eur``) and the run summary the totals per source. One place, so no
cost is counted twice or missed.
"""

from __future__ import annotations

import math


class Ledger:
    """Euros booked per (year, source), in booking order."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, str, float]] = []

    def book(self, year: int, source: str, euros: float) -> None:
        """Record ``euros`` spent by ``source`` in ``year``.

        Raises:
            ValueError: A negative or non-finite amount.
        """
        euros = float(euros)
        if not math.isfinite(euros) or euros < 0:
            raise ValueError(f"cost of {source} in year {year}: {euros!r} is not allowed; "
                             "expected a finite amount >= 0 euros")
        self.entries.append((int(year), source, euros))

    def total(self, year: int) -> float:
        """Everything booked in ``year``."""
        return sum(e for y, _, e in self.entries if y == year)

    def spent(self, source: str) -> dict[int, float]:
        """Euros per year booked by ``source``."""
        out: dict[int, float] = {}
        for y, s, e in self.entries:
            if s == source:
                out[y] = out.get(y, 0.0) + e
        return out

    def by_source(self) -> dict[str, float]:
        """Total euros per source over the run."""
        out: dict[str, float] = {}
        for _, s, e in self.entries:
            out[s] = out.get(s, 0.0) + e
        return out
