"""Reference-vs-kernel agreement for the relocation, daycare and school-choice rules.

The counting kernels (``youngest_age``, ``tally``, ``add_rows``) are checked against numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from conftest import tiny_config
from sim import kernels
from sim.kernels import (
    Applicants,
    DaycarePrefs,
    DaycareSeekers,
    DaycareUnits,
    Households,
    Programmes,
    SchoolPrefs,
    Search,
)
from sim.model import SegregationModel
from sim.phases import housing
from sim.rng import counter_uniform


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 300), n_f=st.integers(1, 50))
def test_youngest_age_is_the_grouped_minimum(seed, n, n_f) -> None:
    rng = np.random.default_rng(seed)
    fam, age, active = rng.integers(0, n_f, n), rng.integers(0, 16, n), rng.random(n) < 0.8
    got, want = np.full(n_f, 99), np.full(n_f, 99)
    kernels.youngest_age(fam, age, active, got)
    np.minimum.at(want, fam[active], age[active])
    np.testing.assert_array_equal(got, want)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(0, 300), n_u=st.integers(1, 20),
       n_f=st.integers(1, 50))
def test_tally_and_add_rows_are_numpy_group_counts(seed, n, n_u, n_f) -> None:
    rng = np.random.default_rng(seed)
    unit, fam = rng.integers(-1, n_u, n), rng.integers(0, n_f, n)
    ses, lang = rng.integers(0, 3, n_f), rng.integers(0, 2, n_f)
    got, want = np.zeros((n_u, 5), dtype=np.int64), np.zeros((n_u, 5), dtype=np.int64)
    kernels.tally(unit, fam, ses, lang, got)
    k = unit >= 0
    np.add.at(want, (unit[k], ses[fam[k]]), 1)
    np.add.at(want, (unit[k], 3 + lang[fam[k]]), 1)
    np.testing.assert_array_equal(got, want)
    label = rng.integers(-1, 3, n_u)  # the units grouped into 3 areas (-1: none)
    areas = np.zeros((3, 5), dtype=np.int64)
    kernels.add_rows(label, got, areas)
    np.testing.assert_array_equal(areas, [got[label == g].sum(0) for g in range(3)])


@settings(max_examples=20, deadline=None)
@given(key=st.integers(0, 2**64 - 1), n=st.integers(0, 60), m=st.integers(0, 9),
       seed=st.integers(0, 10**6))
def test_counter_uniform_matches_reference(key, n, m, seed) -> None:
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, 10**9, n), rng.integers(0, 10**4, m)
    got = counter_uniform(key, rows, cols)
    np.testing.assert_array_equal(got, reference.counter_uniform(key, rows, cols))
    assert ((got > 0) & (got < 1)).all()


def test_schelling_v_shape() -> None:
    assert kernels.schelling_v(0.25, 0.5, 0.6) == pytest.approx(0.5)
    assert kernels.schelling_v(0.5, 0.5, 0.6) == pytest.approx(1.0)
    assert kernels.schelling_v(1.0, 0.5, 0.6) == pytest.approx(0.6)
    for x in np.linspace(0, 1, 11):
        assert kernels.schelling_v(x, 0.4, 0.3) == reference.schelling_v(x, 0.4, 0.3)


@pytest.fixture(scope="module")
def model() -> SegregationModel:
    m = SegregationModel(tiny_config("seed=11"))
    m.run(2)
    return m


def relocation_inputs(m: SegregationModel, seed: int, n_movers: int, k: int, n_local: int = 6):
    rng = np.random.default_rng(seed)
    f = m.families
    order = rng.permutation(np.flatnonzero(f.active))[:n_movers]
    vac = housing.vacancies(m)
    draws = Search(u_cand=rng.random((len(order), k)),
                   u_local=rng.random((len(order), n_local, 3)),
                   gumbel=rng.gumbel(size=(len(order), k + 1 + n_local)))
    return dict(order=order, vac=vac, n_vac=len(vac), draws=draws)


def run_relocate(mod, m: SegregationModel, inp: dict, arriving: bool):
    f = m.families
    hh = Households(ses=f.ses, lang=f.lang, level=m.family_level(), cell=f.cell.copy(),
                    tenure=f.tenure.copy())
    comp = housing.composition(m)
    prefs = housing.dwelling_prefs(m)._replace(radius=3)
    vac = inp["vac"].copy()
    moved, n_vac = mod.relocate(inp["order"], arriving, vac, inp["n_vac"], hh, comp,
                                housing.grid(m), housing.catchments(m), prefs, inp["draws"])
    return moved, n_vac, hh.cell, hh.tenure, vac[:n_vac], list(comp)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 120), k=st.integers(1, 16),
       n_local=st.integers(0, 10), arriving=st.booleans())
def test_relocation_kernel_matches_reference(model, seed, n, k, n_local, arriving) -> None:
    inp = relocation_inputs(model, seed, n, k, n_local)
    got = run_relocate(kernels, model, inp, arriving)
    want = run_relocate(reference, model, inp, arriving)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]
    for a, b in zip(got[2:5], want[2:5], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got[5], want[5], strict=True):
        np.testing.assert_array_equal(a, b)


def test_relocation_moves_someone_and_books_counts(model) -> None:
    inp = relocation_inputs(model, 1, 80, 12)
    moved, n_vac, cell, _, vac, counts = run_relocate(kernels, model, inp, False)
    assert moved.any()
    assert n_vac == inp["n_vac"]  # each move frees one dwelling and takes one
    n_c = model.city.n_cells
    f = model.families
    a = f.active
    np.testing.assert_array_equal(
        counts[0].sum(1), np.bincount(cell[a], minlength=n_c))
    # Social housing is income-tested: no family above the limit moved into it.
    moved_in, tenure = inp["order"][moved], run_relocate(kernels, model, inp, False)[3]
    limit = model.cfg.behaviour.preferences.social_max_ses
    assert not np.any((f.ses[moved_in] > limit) & (tenure[moved_in] == 0))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 200), n_d=st.integers(1, 12),
       m_near=st.integers(1, 8))
def test_daycare_kernel_matches_reference(seed, n, n_d, m_near) -> None:
    rng = np.random.default_rng(seed)
    ses, lang = rng.integers(0, 3, n), rng.integers(0, 2, n)
    cand = rng.integers(-1, n_d, (n, m_near))
    km = rng.random((n, m_near)) * 3
    private = rng.random(n_d) < 0.3
    rep = rng.normal(size=(2, n_d))
    seats = rng.integers(0, 6, n_d)
    gum = rng.gumbel(size=(n, m_near))
    kids = DaycareSeekers(ses=ses, lang=lang, cand=cand, cand_km=km, gumbel=gum)
    prefs = DaycarePrefs(w_distance=1.5, w_reputation=np.array([0.3, 0.6, 1.0]),
                         w_private=np.array([-2.0, -0.8, 0.2]))
    s1, s2 = seats.copy(), seats.copy()
    got = kernels.daycare_choice(kids, DaycareUnits(private, rep, s1), prefs)
    want = reference.daycare_choice(kids, DaycareUnits(private, rep, s2), prefs)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(s1, s2)
    assert (s1 >= 0).all()
    assert np.all(np.bincount(got[got >= 0], minlength=n_d) == seats - s1)


def school_case(seed: int, n: int, n_s: int, n_ranked: int):
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(n_s + 3, size=n_s, replace=False))
    n_all = ids.max() + 1
    app = Applicants(looks=rng.random(n) < 0.6, ses=rng.integers(0, 3, n),
                     lang=rng.integers(0, 2, n), home_xy=rng.random((n, 2)) * 6,
                     local=rng.choice(ids, n), gumbel=rng.gumbel(size=(n, 2 * n_s)))
    prog = Programmes(ids=ids, xy=rng.random((n_all, 2)) * 6,
                      emphasis=rng.random(n_all) < 0.4, rep_perceived=rng.normal(size=(2, n_all)),
                      lang_share=rng.random((2, n_all)), local_bonus=0.5 + rng.random(n_all))
    prefs = SchoolPrefs(w_rep=np.array([0.6, 1.0, 1.6]), w_comp=np.array([0.2, 0.6, 1.0]),
                        w_dist=np.array([0.8, 0.6, 0.5]), w_emph=np.array([0.0, 0.5, 1.0]),
                        max_km=4.0, n_ranked=n_ranked)
    return app, prog, prefs


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 150), n_s=st.integers(1, 10),
       n_ranked=st.integers(1, 4))
def test_school_ranking_kernel_matches_reference(seed, n, n_s, n_ranked) -> None:
    app, prog, prefs = school_case(seed, n, n_s, n_ranked)
    got = kernels.rank_programmes(app, prog, prefs)
    want = reference.rank_programmes(app, prog, prefs)
    np.testing.assert_array_equal(got, want)
    # Every list ends with the catchment school's general class (the guaranteed place).
    last = np.array([row[row >= 0][-1] for row in got])
    np.testing.assert_array_equal(last, 2 * app.local)
    np.testing.assert_array_equal(got[~app.looks, 0], 2 * app.local[~app.looks])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10**6), years=st.integers(0, 3))
def test_dissatisfaction_kernel_matches_reference(seed, years) -> None:
    m = SegregationModel(tiny_config(f"seed={seed % 50}", "years=3"))
    m.run(years)
    f = m.families
    active = np.flatnonzero(f.active & (f.cell >= 0))
    args = (active, housing.households(m), housing.composition(m), housing.grid(m),
            housing.catchments(m), housing.dwelling_prefs(m))
    got, want = np.zeros(f.capacity), np.zeros(f.capacity)
    kernels.dissatisfaction(*args, got)
    reference.dissatisfaction(*args, want)
    np.testing.assert_array_equal(got, want)
    assert (got[active] > 0).any() and (got[~f.active] == 0).all()


def da_case(seed: int, n: int, n_p: int, n_l: int):
    rng = np.random.default_rng(seed)
    prefs = np.full((n, n_l), -1, dtype=np.int64)
    for j in range(n):
        k = min(int(rng.integers(1, n_l + 1)), n_p)
        prefs[j, :k] = rng.choice(n_p, size=k, replace=False)
    prio = rng.random((n, n_l)) + rng.integers(0, 3, (n, n_l))
    cap = rng.integers(0, max(2, n // n_p + 2), n_p)
    return prefs, prio, cap


def is_stable(prefs, prio, cap, match) -> bool:
    held = {p: [] for p in range(len(cap))}
    for j, p in enumerate(match):
        if p >= 0:
            held[p].append(prio[j, list(prefs[j]).index(p)])
    for j in range(len(prefs)):
        for k, p in enumerate(prefs[j]):
            if p < 0 or p == match[j]:
                break  # programmes after the assigned one are not preferred
            full = len(held[p]) >= cap[p]
            if not full or (held[p] and min(held[p]) < prio[j, k]):
                return False  # j and p would both rather be together: a blocking pair
    return True


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 120), n_p=st.integers(1, 12),
       n_l=st.integers(1, 5))
def test_deferred_acceptance_matches_reference_and_is_stable(seed, n, n_p, n_l) -> None:
    prefs, prio, cap = da_case(seed, n, n_p, n_l)
    got = kernels.deferred_acceptance(prefs, prio, cap)
    want = reference.deferred_acceptance(prefs, prio, cap)
    np.testing.assert_array_equal(got, want)
    assert np.all(np.bincount(got[got >= 0], minlength=n_p) <= cap)
    assert is_stable(prefs, prio, cap, got)


def test_catchment_priority_guarantees_the_local_place() -> None:
    # Three applicants all prefer school 1 (programme 2) which has one seat; applicant 2 lives
    # in its catchment and so has priority 2 + lottery; the others fall back to school 0.
    prefs = np.array([[2, 0], [2, 0], [2, -1]])
    prio = np.array([[0.9, 2.1], [0.8, 2.2], [2.05, -1.0]])
    got = kernels.deferred_acceptance(prefs, prio, np.array([5, 0, 1, 0]))
    np.testing.assert_array_equal(got, [0, 0, 2])


def test_whole_model_on_reference_rules_is_identical() -> None:
    cfg = tiny_config("seed=3", "years=3")
    fast = SegregationModel(cfg)
    fast.run()
    slow = SegregationModel(cfg, kernels=reference)
    slow.run()
    for attr in ("cell", "tenure", "ses"):
        np.testing.assert_array_equal(getattr(fast.families, attr), getattr(slow.families, attr))
    for attr in ("school", "daycare", "outcome"):
        np.testing.assert_array_equal(getattr(fast.children, attr), getattr(slow.children, attr))
    assert fast.recorder.metrics_frame().equals(slow.recorder.metrics_frame())


def test_local_search_finds_vacancies_near_home(model) -> None:
    vcount = np.zeros(model.city.n_cells * 3, dtype=np.int64)
    h = model.city.height
    home = 5 * h + 5
    near, far = 6 * h + 4, 15 * h + 12
    vcount[3 * near + 2] = 2
    vcount[3 * far + 1] = 5
    found = set()
    for u in np.random.default_rng(0).random((400, 3)):
        slot = kernels.local_candidate(home, h, 2, u, vcount)
        assert slot == reference.local_candidate(home, h, 2, u, vcount)
        found.add(slot)
    assert found == {-1, 3 * near + 2}  # the far vacancy is outside the 2-cell window


class Spy:
    """Kernel module wrapper that records the arguments of the school-choice kernels."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.relocate, self.daycare_choice = kernels.relocate, kernels.daycare_choice
        self.dissatisfaction = kernels.dissatisfaction

    def rank_programmes(self, app, prog, prefs):
        out = kernels.rank_programmes(app, prog, prefs)
        self.calls.append(("rank", app, out))
        return out

    def deferred_acceptance(self, prefs, prio, capacity):
        out = kernels.deferred_acceptance(prefs, prio, capacity)
        self.calls.append(("da", (prefs, prio, capacity), out))
        return out


def test_admission_gives_catchment_children_priority_at_their_school() -> None:
    spy = Spy()
    model = SegregationModel(tiny_config("seed=8", "years=3",
                                         "behaviour.school.look_prob=[0.9,0.9,0.9]"),
                             kernels=spy)
    model.run()
    ranks = [c for c in spy.calls if c[0] == "rank"]
    das = [c for c in spy.calls if c[0] == "da"]
    checked = 0
    for (_, app, prefs), (_, (prefs2, prio, _), _) in zip(ranks, das, strict=True):
        np.testing.assert_array_equal(prefs, prefs2)
        local = app.local
        listed = prefs >= 0
        general = listed & (prefs % 2 == 0)
        own = general & (prefs // 2 == local[:, None])
        # Catchment children rank first at their school's general class (2 + lottery);
        # others have a lottery number in [0, 1).
        assert (prio[own] >= 2).all() and (prio[general & ~own] < 1).all()
        # The catchment general class closes every list (the guaranteed place).
        np.testing.assert_array_equal(prefs[np.arange(len(prefs)), listed.sum(1) - 1],
                                      2 * local)
        checked += own.sum()
    assert checked > 0
