"""One seed per run, named streams per decision and year.

Each random decision (``"relocation"``, ``"school_choice"``...) draws from its own numpy
``Generator`` seeded by ``SeedSequence([seed, stable_hash(name), year])``. Two consequences:

* a lever that starts in year k cannot change any draw of an earlier year, so earlier years stay
  bit-identical; and
* scenarios compared with the same seed share their random numbers decision by decision
  (common random numbers), which makes paired differences precise.

Draws are made per agent *slot* (a fixed array position) or per row of a fixed-width block,
not per eligible agent, so that a change in who is eligible does not shift everybody else's
numbers. Where a block would be too large (Gumbel shocks for every child and every school
programme), ``counter_uniform`` gives the same numbers from a counter-based hash of
(stream key, row, column): one child's shock for one programme does not depend on who else
applies.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numba import njit


def stable_hash(name: str) -> int:
    """Return a 64-bit hash of ``name`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


# Burn-in years (before year 0) are negative; SeedSequence takes non-negative entropy only,
# so year -k is entered as BURN_IN_BASE + k, a number no simulated year reaches.
BURN_IN_BASE = 1 << 40


def year_word(year: int) -> int:
    """The entropy word of a year: the year itself, or ``BURN_IN_BASE - year`` if negative."""
    year = int(year)
    return year if year >= 0 else BURN_IN_BASE - year


class Streams:
    """Factory of named, per-year random streams derived from one run seed."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def get(self, name: str, year: int = 0) -> np.random.Generator:
        """Return the generator for decision ``name`` in ``year``.

        Args:
            name: Name of the decision (stream).
            year: Simulation year; 0 is "today" (the set-up with ``start=fresh``),
                negative years are burn-in years.

        Returns:
            A fresh ``numpy.random.Generator`` (PCG64) for that stream and year.

        """
        return np.random.Generator(np.random.PCG64(self._seq(name, year)))

    def _seq(self, name: str, year: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.seed, stable_hash(name), year_word(year)])

    def key(self, name: str, year: int = 0) -> int:
        """A 64-bit key for ``counter_uniform`` of decision ``name`` in ``year``."""
        return int(self._seq(name, year).generate_state(1, np.uint64)[0])


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _splitmix64(x: np.uint64) -> np.uint64:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014) of one uint64 (arithmetic mod 2**64)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _fill_uniform(key: np.uint64, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    for i in range(len(rows)):
        r = _splitmix64(key ^ _splitmix64(rows[i]))
        for j in range(len(cols)):
            out[i, j] = (float(_splitmix64(r ^ cols[j]) >> np.uint64(11)) + 0.5) * 2.0**-53


def counter_uniform(key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) for every (row, col) pair, a pure function of (key, row, col).

    ``u = (splitmix64(splitmix64(key ^ splitmix64(row)) ^ col) >> 11 + 0.5) / 2**53``, so
    one agent's number for one column does not depend on which other rows are drawn.

    Args:
        key: Stream key (``Streams.key``).
        rows: Integer ids >= 0 (e.g. child slots), shape (n,).
        cols: Integer ids >= 0 (e.g. programme ids), shape (m,).

    Returns:
        Array (n, m) of uniforms.
    """
    rows = np.asarray(rows, dtype=np.uint64)
    cols = np.asarray(cols, dtype=np.uint64)
    out = np.empty((len(rows), len(cols)))
    _fill_uniform(np.uint64(key), rows, cols, out)
    return out
