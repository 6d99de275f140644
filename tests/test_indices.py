"""Tests for sim.indices: hand-built cities, a PySAL `segregation` oracle, and input errors."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.indices import dissimilarity, exposure, index_set, isolation, theil_h

# Importing segregation.multigroup runs `np.seterr(divide="ignore", invalid="ignore")` at module
# level, silently changing numpy's *global* error state for the whole pytest session. Import it
# once here and restore the previous state so other tests (and our own no-warning checks) are
# unaffected; oracle calls re-enable the silencing locally.
_np_err = np.geterr()
from segregation.multigroup import MultiInfoTheory  # noqa: E402
from segregation.singlegroup import Dissim, Interaction, Isolation  # noqa: E402

np.seterr(**_np_err)

TOL = 1e-9
ORACLE_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

no_warnings = pytest.mark.filterwarnings("error")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def all_indices(counts, group=0, other=1):
    return index_set(counts, group=group, other=other)


def _frame(counts):
    c = np.asarray(counts)
    df = pd.DataFrame({f"g{m}": c[:, m] for m in range(c.shape[1])})
    df["total"] = c.sum(axis=1)
    return df


def oracle(counts, group=0):
    """PySAL segregation values: D, H, isolation and interaction (group vs everyone else)."""
    df = _frame(counts)
    groups = [f"g{m}" for m in range(np.asarray(counts).shape[1])]
    g = f"g{group}"
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "D": Dissim(df, g, "total").statistic,
            "H": MultiInfoTheory(df, groups=groups).statistic,
            "iso": Isolation(df, g, "total").statistic,
            "int": Interaction(df, g, "total").statistic,
        }


def count_matrices(n_groups, max_units=30, max_count=40):
    """Integer count matrices; hypothesis readily produces empty units and empty groups."""
    return st.integers(1, max_units).flatmap(
        lambda n: arrays(np.int64, (n, n_groups), elements=st.integers(0, max_count))
    )


def same(a, b, tol=TOL):
    """Equal within tol, treating nan == nan."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


# --------------------------------------------------------------------------------------------
# 1. hand-built cities
# --------------------------------------------------------------------------------------------


@no_warnings
def test_full_separation_two_groups():
    counts = [[5, 0], [0, 7], [3, 0], [0, 1]]
    r = all_indices(counts)
    assert r["D"] == pytest.approx(1.0, abs=1e-12)
    assert r["H"] == pytest.approx(1.0, abs=1e-12)
    assert r["iso"] == pytest.approx(1.0, abs=1e-12)
    assert r["exp"] == pytest.approx(0.0, abs=1e-12)
    # and from the other group's point of view
    r1 = all_indices(counts, group=1, other=0)
    assert (r1["D"], r1["iso"], r1["exp"]) == pytest.approx((1.0, 1.0, 0.0), abs=1e-12)


@no_warnings
def test_full_separation_three_groups_h_is_one():
    counts = [[4, 0, 0], [0, 6, 0], [0, 0, 2], [1, 0, 0], [0, 0, 9]]
    assert theil_h(counts) == pytest.approx(1.0, abs=1e-12)
    for g in range(3):
        assert dissimilarity(counts, g) == pytest.approx(1.0, abs=1e-12)
        assert isolation(counts, g) == pytest.approx(1.0, abs=1e-12)
        for o in range(3):
            if o != g:
                assert exposure(counts, g, o) == pytest.approx(0.0, abs=1e-12)


@no_warnings
def test_even_mix():
    # every unit has the city composition (2 : 3 : 5) -> P0 = 0.2, P1 = 0.3
    counts = np.outer([1, 2, 3, 7], [2, 3, 5])
    r = all_indices(counts, group=0, other=1)
    assert r["D"] == pytest.approx(0.0, abs=1e-12)
    assert r["H"] == pytest.approx(0.0, abs=1e-12)
    assert r["iso"] == pytest.approx(0.2, abs=1e-12)
    assert r["exp"] == pytest.approx(0.3, abs=1e-12)
    assert exposure(counts, 2, 0) == pytest.approx(0.2, abs=1e-12)


@no_warnings
def test_hand_computed_two_units():
    # unit A: 3 of group 0, 1 of group 1 (t=4); unit B: 1 of group 0, 5 of group 1 (t=6)
    # T = 10, X = 4, Y = 6, P = 0.4; p_A = 3/4, p_B = 1/6
    # D   = (4*|3/4 - 0.4| + 6*|1/6 - 0.4|) / (2*10*0.4*0.6) = (1.4 + 1.4) / 4.8 = 7/12
    #       (= 1/2 * (|3/4 - 1/6| + |1/4 - 5/6|) = 1/2 * (7/12 + 7/12))
    # iso = (3/4)(3/4) + (1/4)(1/6) = 9/16 + 1/24 = 29/48
    # exp = (3/4)(1/4) + (1/4)(5/6) = 3/16 + 5/24 = 19/48      (iso + exp = 1)
    # exp of group 1 to group 0 = (1/6)(3/4) + (5/6)(1/6) = 1/8 + 5/36 = 19/72  (X*19/48 = Y*19/72)
    # H: E = -(0.4 ln 0.4 + 0.6 ln 0.6); within-unit entropies E_A = h(3/4), E_B = h(1/6) with
    #    h(p) = -(p ln p + (1-p) ln(1-p)): E = h(0.4) = 0.366516 + 0.306495 = 0.673012,
    #    E_A = 0.215762 + 0.346574 = 0.562335, E_B = 0.298627 + 0.151935 = 0.450561,
    #    H = 1 - (0.4 * 0.562335 + 0.6 * 0.450561) / 0.673012 = 1 - 0.495271 / 0.673012
    #      = 1 - 0.735902 = 0.264098,
    #    which equals sum_i sum_m t_i pi_im ln(pi_im / pi_m) / (T E) (checked literally below).
    counts = [[3, 1], [1, 5]]

    def h(p):
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    expected_h = 1 - (0.4 * h(3 / 4) + 0.6 * h(1 / 6)) / h(0.4)
    assert expected_h == pytest.approx(0.264098, abs=1e-6)  # sanity check on the comment
    literal_h = sum(
        t_i * pi_im * math.log(pi_im / pi_m)
        for t_i, shares in [(4, (3 / 4, 1 / 4)), (6, (1 / 6, 5 / 6))]
        for pi_im, pi_m in zip(shares, (0.4, 0.6), strict=True)
    ) / (10 * h(0.4))
    assert literal_h == pytest.approx(expected_h, abs=1e-12)

    r = all_indices(counts)
    assert r["D"] == pytest.approx(7 / 12, abs=1e-12)
    assert r["iso"] == pytest.approx(29 / 48, abs=1e-12)
    assert r["exp"] == pytest.approx(19 / 48, abs=1e-12)
    assert r["H"] == pytest.approx(expected_h, abs=1e-12)
    assert exposure(counts, 1, 0) == pytest.approx(19 / 72, abs=1e-12)
    assert dissimilarity(counts, 1) == pytest.approx(7 / 12, abs=1e-12)


@no_warnings
@given(
    counts=count_matrices(3),
    positions=st.lists(st.integers(0, 1000), min_size=1, max_size=10),
)
@settings(max_examples=50, deadline=None)
def test_empty_units_do_not_change_results(counts, positions):
    padded = counts.copy()
    for pos in positions:
        padded = np.insert(padded, pos % (len(padded) + 1), 0, axis=0)
    for g, o in [(0, 1), (2, 0)]:
        base, pad = all_indices(counts, g, o), all_indices(padded, g, o)
        for key in base:
            assert same(base[key], pad[key], 1e-12), (key, base[key], pad[key])


@no_warnings
def test_empty_units_simple():
    counts = [[3, 1], [1, 5]]
    padded = [[0, 0], [3, 1], [0, 0], [0, 0], [1, 5], [0, 0]]
    assert all_indices(padded) == pytest.approx(all_indices(counts), abs=1e-12)


@no_warnings
def test_undefined_cases_return_nan():
    only_group1 = [[0, 3], [0, 2], [0, 0]]
    assert math.isnan(dissimilarity(only_group1, 0))  # P == 0
    assert math.isnan(dissimilarity(only_group1, 1))  # P == 1
    assert math.isnan(theil_h(only_group1))  # E == 0
    assert math.isnan(isolation(only_group1, 0))  # X == 0
    assert math.isnan(exposure(only_group1, 0, 1))  # X == 0
    assert isolation(only_group1, 1) == 1.0
    assert exposure(only_group1, 1, 0) == 0.0
    empty_city = np.zeros((4, 3))
    assert all(math.isnan(v) for v in all_indices(empty_city).values())
    no_units = np.zeros((0, 2))
    assert all(math.isnan(v) for v in all_indices(no_units).values())


@no_warnings
def test_absent_group_column_is_ignored_by_h():
    # 0 log 0 = 0: a group absent from the whole city does not change H
    counts = np.array([[3, 1], [1, 5], [2, 2]])
    with_absent = np.insert(counts, 1, 0, axis=1)
    assert theil_h(with_absent) == pytest.approx(theil_h(counts), abs=1e-12)


@no_warnings
@given(counts=count_matrices(3), scale=st.floats(0.01, 1000), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_invariances_and_identities(counts, scale, seed):
    r = all_indices(counts, 0, 1)
    # permuting units and rescaling all counts (float input) change nothing
    perm = np.random.default_rng(seed).permutation(len(counts))
    r2 = all_indices(counts[perm] * scale, 0, 1)
    for key in r:
        assert same(r[key], r2[key], 1e-9), key
    # ranges
    for v in r.values():
        assert math.isnan(v) or -1e-12 <= v <= 1 + 1e-12
    # isolation + exposures to all other groups = 1; X * xPy = Y * yPx
    x_tot, y_tot = counts[:, 0].sum(), counts[:, 1].sum()
    if x_tot > 0:
        assert r["iso"] + r["exp"] + exposure(counts, 0, 2) == pytest.approx(1.0, abs=1e-12)
        if y_tot > 0:
            assert x_tot * r["exp"] == pytest.approx(y_tot * exposure(counts, 1, 0), rel=1e-12)


def test_index_set_matches_single_functions():
    counts = np.random.default_rng(1).integers(0, 20, size=(50, 4))
    r = index_set(counts, group=2, other=3)
    assert set(r) == {"D", "H", "iso", "exp"}
    assert r["D"] == dissimilarity(counts, 2)
    assert r["H"] == theil_h(counts)
    assert r["iso"] == isolation(counts, 2)
    assert r["exp"] == exposure(counts, 2, 3)
    assert all(type(v) is float for v in r.values())


# --------------------------------------------------------------------------------------------
# 2. oracle: PySAL segregation 2.6
# --------------------------------------------------------------------------------------------


@ORACLE_SETTINGS
@given(counts=count_matrices(2), group=st.integers(0, 1))
def test_oracle_two_groups(counts, group):
    other = 1 - group
    ours = all_indices(counts, group, other)
    ref = oracle(counts, group)
    assert same(ours["D"], ref["D"]), (ours["D"], ref["D"])
    assert same(ours["H"], ref["H"]) or _h_diverges(counts), (ours["H"], ref["H"])
    if counts[:, group].sum() > 0:
        assert same(ours["iso"], ref["iso"]), (ours["iso"], ref["iso"])
        assert same(ours["exp"], ref["int"]), (ours["exp"], ref["int"])
    else:
        # divergence: segregation's nansum turns 0/0 into 0, we return nan for an absent group
        assert math.isnan(ours["iso"]) and math.isnan(ours["exp"])
        assert ref["iso"] == 0.0 and ref["int"] == 0.0


def _h_diverges(counts):
    """Segregation's H is nan whenever a group column sums to 0 (it computes 0 * log(1/0))."""
    return (np.asarray(counts).sum(axis=0) == 0).any()


@ORACLE_SETTINGS
@given(counts=count_matrices(3), group=st.integers(0, 2))
def test_oracle_three_groups(counts, group):
    ours = all_indices(counts, group, (group + 1) % 3)
    ref = oracle(counts, group)
    assert same(ours["D"], ref["D"]), (ours["D"], ref["D"])
    if _h_diverges(counts):
        # absent groups are dropped by 0 log 0 = 0; compare with segregation on present groups
        assert math.isnan(ref["H"])
        present = counts[:, counts.sum(axis=0) > 0]
        if present.shape[1] >= 2:
            assert same(ours["H"], oracle(present)["H"]), (ours["H"], oracle(present)["H"])
        else:
            assert math.isnan(ours["H"])
    else:
        assert same(ours["H"], ref["H"]), (ours["H"], ref["H"])
    if counts[:, group].sum() > 0:
        assert same(ours["iso"], ref["iso"]), (ours["iso"], ref["iso"])
        # segregation's Interaction is exposure to *everyone else*: sum over the other groups
        exp_all = sum(exposure(counts, group, o) for o in range(3) if o != group)
        assert same(exp_all, ref["int"]), (exp_all, ref["int"])


@pytest.mark.parametrize("n_groups", [2, 3, 5])
@pytest.mark.parametrize("seed", range(5))
def test_oracle_seeded_float_counts(n_groups, seed):
    rng = np.random.default_rng(seed)
    counts = rng.gamma(0.7, 30.0, size=(30, n_groups))  # skewed compositions
    counts[rng.random(30) < 0.2] = 0.0  # some empty units
    ref = oracle(counts, 0)
    ours = all_indices(counts, 0, 1)
    assert ours["D"] == pytest.approx(ref["D"], abs=TOL)
    assert ours["H"] == pytest.approx(ref["H"], abs=TOL)
    assert ours["iso"] == pytest.approx(ref["iso"], abs=TOL)
    exp_all = sum(exposure(counts, 0, o) for o in range(1, n_groups))
    assert exp_all == pytest.approx(ref["int"], abs=TOL)


def test_oracle_large_city():
    # the simulation size (~10,000 units) with many small units, a few empty
    rng = np.random.default_rng(42)
    counts = rng.poisson(rng.gamma(1.0, 3.0, size=(10_000, 1)) * [0.6, 0.3, 0.1])
    ref = oracle(counts, 1)
    ours = all_indices(counts, 1, 2)
    assert (counts.sum(axis=1) == 0).any()
    assert ours["D"] == pytest.approx(ref["D"], abs=TOL)
    assert ours["H"] == pytest.approx(ref["H"], abs=TOL)
    assert ours["iso"] == pytest.approx(ref["iso"], abs=TOL)


def test_segregation_import_does_not_leak_numpy_error_state():
    # guards the np.seterr restore at the top of this module (see comment there)
    assert np.geterr() == _np_err


# --------------------------------------------------------------------------------------------
# 3. errors
# --------------------------------------------------------------------------------------------

ALL_FUNCS = [dissimilarity, theil_h, isolation, exposure, index_set]


@pytest.mark.parametrize("func", ALL_FUNCS)
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1, 2, 3], r"2-D.*ndim=1"),
        (np.ones((2, 2, 2)), r"2-D.*ndim=3"),
        (5, r"2-D.*ndim=0"),
        ([[1, -2], [3, 4]], r"non-negative.*-2"),
        ([[1.0, 2.0], [3.0, -0.5]], r"non-negative.*-0\.5"),
        ([[1], [2]], r"at least 2 groups.*got 1"),
        (np.zeros((3, 0)), r"at least 2 groups.*got 0"),
        ([[1, np.nan], [3, 4]], r"finite"),
        ([[1, np.inf], [3, 4]], r"finite"),
    ],
)
def test_invalid_counts(func, bad, match):
    with pytest.raises(ValueError, match=match):
        func(bad)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: dissimilarity(c, 2), r"group=2 is out of range.*2 groups"),
        (lambda c: isolation(c, -1), r"group=-1 is out of range"),
        (lambda c: exposure(c, 0, 5), r"other=5 is out of range"),
        (lambda c: exposure(c, 1.5, 0), r"group must be an integer"),
        (lambda c: index_set(c, 0, 2), r"other=2 is out of range"),
    ],
)
def test_invalid_group_index(call, match):
    with pytest.raises(ValueError, match=match):
        call([[1, 2], [3, 4]])


def test_indices_are_clipped_to_the_unit_interval() -> None:
    """Issue #7: round-off gave H = -1.8e-17 on an even city; every index is in [0, 1]."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        share = rng.dirichlet(np.ones(3))
        even = np.outer(rng.integers(1, 50, size=7), share * 97.0)  # same mix in every unit
        for value in index_set(even, group=0, other=2).values():
            assert 0.0 <= value <= 1.0, value
