"""Segregation indices computed from a unit-by-group count matrix.

All functions are pure, vectorised numpy and take the same input:

``counts``
    Array-like of shape ``(n_units, n_groups)`` holding non-negative counts (int or float) of
    the people of each group (columns) in each organisational unit (rows): district, grid
    cell, school, daycare, ...

Notation used in the formulas below (Massey & Denton 1988; Reardon & Firebaugh 2002):

* ``t_i``: total of unit ``i`` (row sum), ``T = sum_i t_i``.
* ``x_i``: count of the focal group ``group`` in unit ``i``, ``X = sum_i x_i``, ``P = X / T``.
* ``y_i``: count of the ``other`` group (exposure) or of all non-focal groups (dissimilarity).
* ``pi_im = c_im / t_i``: share of group ``m`` in unit ``i``; ``pi_m = T_m / T`` its city share.

Units whose total ``t_i`` is 0 are ignored: they contribute nothing to any sum and no division
by their zero total is ever performed (so they emit no numpy warnings). Undefined indices (for
example dissimilarity in a city with no member of the focal group) are returned as ``nan``.

References:
    Massey, D. S. & Denton, N. A. (1988). The dimensions of residential segregation.
    *Social Forces*, 67(2), 281-315.

    Reardon, S. F. & Firebaugh, G. (2002). Measures of multigroup segregation.
    *Sociological Methodology*, 32, 33-67.

"""

from __future__ import annotations

import operator

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["dissimilarity", "exposure", "index_set", "isolation", "theil_h"]

FloatArray = NDArray[np.float64]


def _as_counts(counts: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate ``counts`` and return it group-major together with the unit totals.

    Internally the matrix is stored transposed, shape ``(n_groups, n_units)`` and C-contiguous,
    because numpy reductions along the short group axis of an ``(n_units, n_groups)`` array are
    an order of magnitude slower than contiguous row operations.

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` with non-negative counts.

    Returns:
        ``(ct, t)``: the counts as a float64 array of shape ``(n_groups, n_units)`` and the unit
        totals ``t`` of shape ``(n_units,)``.

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 group columns, or contains
            negative or non-finite values.

    """
    c = np.asarray(counts)
    if c.ndim != 2:
        raise ValueError(
            f"counts must be a 2-D array of shape (n_units, n_groups); got ndim={c.ndim} "
            f"with shape {c.shape}"
        )
    if c.shape[1] < 2:
        raise ValueError(
            f"counts must have at least 2 groups (columns); got {c.shape[1]} group column(s)"
        )
    ct = np.array(c.T, dtype=np.float64, order="C")  # single copy: cast + transpose
    if ct.size:
        if c.dtype.kind not in "biu" and not np.isfinite(ct).all():
            raise ValueError("counts must be finite; found NaN or infinite values")
        low = ct.min()
        if low < 0:
            raise ValueError(f"counts must be non-negative; found negative value {low:g}")
    return ct, ct.sum(axis=0)


def _check_group(index: int, n_groups: int, name: str) -> int:
    """Validate a group column index.

    Args:
        index: Column index of a group (negative indices are not allowed).
        n_groups: Number of group columns in ``counts``.
        name: Name of the argument, used in the error message.

    Returns:
        The index as a plain ``int``.

    Raises:
        ValueError: If ``index`` is not an integer in ``[0, n_groups)``.

    """
    try:
        i = operator.index(index)
    except TypeError:
        raise ValueError(f"{name} must be an integer column index; got {index!r}") from None
    if not 0 <= i < n_groups:
        raise ValueError(f"{name}={i} is out of range for counts with {n_groups} groups")
    return i


def _sum_of_products(a: FloatArray, b: FloatArray) -> float:
    """``sum(a * b)``, without BLAS.

    A multi-threaded BLAS dot product of a few thousand numbers waits milliseconds for its
    threads on a busy machine (parallel sweeps); numpy's own loop takes microseconds.
    """
    return float(np.einsum("i,i->", a.reshape(-1), b.reshape(-1)))


# The private kernels below take the validated output of _as_counts: ct (n_groups, n_units)
# and the unit totals t (n_units,).


def _unit(value: float) -> float:
    """``value`` clipped to [0, 1]: every index lies there, round-off does not (H = -1.8e-17)."""
    return float(np.clip(value, 0.0, 1.0))


def _dissimilarity(ct: FloatArray, t: FloatArray, group: int) -> float:
    """Binary dissimilarity on validated counts (see :func:`dissimilarity`)."""
    x = ct[group]
    big_x = x.sum()
    # Y = T - X >= 0 (rounding is monotone) and exactly 0 when only the focal group is present.
    big_y = t.sum() - big_x
    if big_x <= 0 or big_y <= 0:  # P == 0 or P == 1 (or empty city)
        return float("nan")
    # |x_i / X - y_i / Y| with y_i = t_i - x_i, evaluated in one buffer
    diff = x * (1.0 / big_x + 1.0 / big_y)
    diff -= t * (1.0 / big_y)
    np.abs(diff, out=diff)
    return _unit(0.5 * diff.sum())


def _theil_h(ct: FloatArray, t: FloatArray) -> float:
    """Multigroup information theory index H on validated counts (see :func:`theil_h`)."""
    t_m = ct.sum(axis=1)
    big_t = t_m.sum()
    if big_t <= 0:
        return float("nan")
    pi_m = t_m[t_m > 0] / big_t
    entropy = float(-(pi_m * np.log(pi_m)).sum())
    if entropy <= 0:
        return float("nan")
    # t_i pi_im ln(pi_im / pi_m) = c_im ln(pi_im * T / T_m). Only cells with c_im > 0 are
    # evaluated (there t_i > 0 and T_m > 0); the others keep a finite placeholder that is
    # multiplied by c_im = 0 in the final dot product, i.e. 0 log 0 = 0. One work buffer.
    nonzero = ct > 0
    buf = np.divide(ct, t, out=np.ones_like(ct), where=nonzero)  # pi_im
    buf *= np.divide(big_t, t_m, out=np.ones_like(t_m), where=t_m > 0)[:, None]  # / pi_m
    np.log(buf, out=buf, where=nonzero)
    return _unit(_sum_of_products(ct, buf) / (big_t * entropy))


def _exposure(ct: FloatArray, t: FloatArray, group: int, other: int) -> float:
    """Exposure/isolation on validated counts (see :func:`exposure`)."""
    x = ct[group]
    big_x = x.sum()
    if big_x <= 0:
        return float("nan")
    share_other = np.divide(ct[other], t, out=np.zeros_like(t), where=t > 0)
    return _unit(_sum_of_products(x, share_other) / big_x)


def dissimilarity(counts: ArrayLike, group: int = 0) -> float:
    """Binary index of dissimilarity of one group versus all other groups.

    Massey & Denton (1988, Social Forces 67(2)) evenness index::

        D = sum_i t_i |p_i - P| / (2 T P (1 - P)),   p_i = x_i / t_i,   P = X / T

    where ``x_i`` is the count of ``group`` in unit ``i``. It is computed in the algebraically
    equivalent form ``D = 1/2 sum_i |x_i / X - y_i / Y|`` with ``y_i = t_i - x_i`` (everyone
    else), which needs no per-unit division. ``D`` is the share of the focal group (or of the
    others) that would have to move to another unit to make every unit match the city
    composition: 0 for an even mix, 1 for complete separation.

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` of non-negative counts. Units with
            a total of 0 are ignored.
        group: Column index of the focal group; all other columns are pooled.

    Returns:
        D in ``[0, 1]``, or ``nan`` if ``P`` is 0 or 1 (no one, or everyone, is in ``group``).

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 groups, contains negative or
            non-finite values, or ``group`` is not a valid column index.

    """
    ct, t = _as_counts(counts)
    return _dissimilarity(ct, t, _check_group(group, ct.shape[0], "group"))


def theil_h(counts: ArrayLike) -> float:
    """Multigroup information theory index H (Theil's entropy index).

    Reardon & Firebaugh (2002, Sociological Methodology 32) formulation::

        H = sum_i sum_m t_i pi_im ln(pi_im / pi_m) / (T E),   E = -sum_m pi_m ln(pi_m)

    with ``pi_im = c_im / t_i`` the share of group ``m`` in unit ``i``, ``pi_m`` its city-wide
    share and ``E`` the city entropy (natural logarithm). ``0 log 0 = 0``, so groups that are
    absent from the whole city and units that are empty contribute nothing. H is the relative
    reduction of diversity inside units compared to the city: 0 when every unit has the city
    composition, 1 when every unit contains a single group.

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` of non-negative counts. Units with
            a total of 0 are ignored.

    Returns:
        H in ``[0, 1]``, or ``nan`` if ``E == 0`` (at most one group present in the city).

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 groups, or contains negative or
            non-finite values.

    """
    return _theil_h(*_as_counts(counts))


def isolation(counts: ArrayLike, group: int = 0) -> float:
    """Isolation index of one group (Massey & Denton 1988, Social Forces 67(2)).

    Defined as::

        xPx = sum_i (x_i / X) (x_i / t_i)

    The share of the focal group in the unit of an average member of the focal group. Equals
    the city share ``P`` under an even mix and 1 under complete separation.

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` of non-negative counts. Units with
            a total of 0 are ignored.
        group: Column index of the focal group.

    Returns:
        Isolation in ``[0, 1]``, or ``nan`` if ``X == 0`` (the group is absent).

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 groups, contains negative or
            non-finite values, or ``group`` is not a valid column index.

    """
    ct, t = _as_counts(counts)
    g = _check_group(group, ct.shape[0], "group")
    return _exposure(ct, t, g, g)


def exposure(counts: ArrayLike, group: int = 0, other: int = 1) -> float:
    """Interaction (exposure) index of ``group`` to ``other`` (Massey & Denton 1988).

    Defined as::

        xPy = sum_i (x_i / X) (y_i / t_i)

    with ``x`` the focal ``group`` and ``y`` the ``other`` group. The share of ``other`` in the
    unit of an average member of ``group``; ``t_i`` is the total over *all* groups, so with
    more than two groups the exposures of ``group`` to every other group and its isolation sum
    to 1. Asymmetric: ``X * xPy == Y * yPx``.

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` of non-negative counts. Units with
            a total of 0 are ignored.
        group: Column index of the focal group.
        other: Column index of the group it is exposed to (``other == group`` gives isolation).

    Returns:
        Exposure in ``[0, 1]``, or ``nan`` if ``X == 0`` (the focal group is absent).

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 groups, contains negative or
            non-finite values, or ``group``/``other`` is not a valid column index.

    """
    ct, t = _as_counts(counts)
    g = _check_group(group, ct.shape[0], "group")
    o = _check_group(other, ct.shape[0], "other")
    return _exposure(ct, t, g, o)


def index_set(counts: ArrayLike, group: int = 0, other: int = 1) -> dict[str, float]:
    """Compute the standard set of indices in one call (input validated once).

    Args:
        counts: Array-like of shape ``(n_units, n_groups)`` of non-negative counts. Units with
            a total of 0 are ignored.
        group: Focal group for D, isolation and exposure.
        other: Group the focal group's exposure is measured to.

    Returns:
        ``{"D": dissimilarity(counts, group), "H": theil_h(counts),
        "iso": isolation(counts, group), "exp": exposure(counts, group, other)}``.

    Raises:
        ValueError: If ``counts`` is not 2-D, has fewer than 2 groups, contains negative or
            non-finite values, or ``group``/``other`` is not a valid column index.

    """
    ct, t = _as_counts(counts)
    g = _check_group(group, ct.shape[0], "group")
    o = _check_group(other, ct.shape[0], "other")
    return {
        "D": _dissimilarity(ct, t, g),
        "H": _theil_h(ct, t),
        "iso": _exposure(ct, t, g, g),
        "exp": _exposure(ct, t, g, o),
    }
