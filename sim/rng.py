"""One seed per run, named streams per decision and year.

Each random decision (``"relocation"``, ``"school_choice"``...) draws from its own numpy
``Generator`` seeded by ``SeedSequence([seed, stable_hash(name), year])``. Two consequences:

* a lever that starts in year k cannot change any draw of an earlier year, so earlier years stay
  bit-identical; and
* scenarios compared with the same seed share their random numbers decision by decision
  (common random numbers), which makes paired differences precise.

Draws are made per agent *slot* (a fixed array position), not per eligible agent, so that a
change in who is eligible does not shift everybody else's numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(name: str) -> int:
    """Return a 64-bit hash of ``name`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class Streams:
    """Factory of named, per-year random streams derived from one run seed."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def get(self, name: str, year: int = 0) -> np.random.Generator:
        """Return the generator for decision ``name`` in ``year``.

        Args:
            name: Name of the decision (stream).
            year: Simulation year; 0 is initialisation.

        Returns:
            A fresh ``numpy.random.Generator`` (PCG64) for that stream and year.

        """
        ss = np.random.SeedSequence([self.seed, stable_hash(name), int(year)])
        return np.random.Generator(np.random.PCG64(ss))
