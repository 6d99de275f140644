"""Needs-based (TP) funding: index, allocation, timing, buffer, no-op identity, effect, errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from conftest import run_tiny, tiny_config
from scenarios.base import build_levers
from scenarios.needs import needs_index, needs_indicators
from scenarios.tp_funding import TPFunding
from sim.config import load_config, preset_families
from sim.model import SegregationModel

TARGETS = Path(__file__).resolve().parent.parent / "calibration" / "targets.csv"
N_TINY = 400  # families in the tiny config: reference_families=N_TINY gives budget scale 1


# ---------------------------------------------------------------- hand-built case
def hand_built() -> tuple[SegregationModel, list[int], list[int]]:
    """A tiny model rewritten so that every school's index is known by hand.

    Five families F1..F5 with one pupil each (k1..k5); everybody else lives in a cell of lower
    school 3's catchment with no indicator set and no pupil enrolled anywhere.

    ======  =====================  ===  ===  =====  ====  =======
    family  home (lower catchment)  edu  ses  unemp  lang  school
    ======  =====================  ===  ===  =====  ====  =======
    F1      school 0               1    0    1      1     0
    F2      school 0               0    2    0      0     1
    F3      school 1               0    0    0      1     0
    F4      school 1               1    1    1      0     1
    F5      school 0               0    1    0      0     1
    ======  =====================  ===  ===  =====  ====  =======

    k1 and k2 also attend daycare 0.
    """
    model = SegregationModel(tiny_config("seed=9"), levers=[])
    f, ch = model.families, model.children
    lower = model.school_of_cell[0]
    cell0, cell1, far = (int(np.flatnonzero(lower == s)[0]) for s in (0, 1, 3))
    act = np.flatnonzero(f.active)
    f.cell[act], f.ses[act], f.lang[act] = far, 1, 0
    f.low_edu[act], f.unemployed[act] = False, False
    ch.school[:], ch.daycare[:] = -1, -1
    kids, fams = [], []
    for k in np.flatnonzero(ch.active):
        if ch.family[k] not in fams:
            kids.append(int(k))
            fams.append(int(ch.family[k]))
        if len(kids) == 5:
            break
    rows = [(cell0, 1, 0, 1, 1, 0), (cell0, 0, 2, 0, 0, 1), (cell1, 0, 0, 0, 1, 0),
            (cell1, 1, 1, 1, 0, 1), (cell0, 0, 1, 0, 0, 1)]
    for fam, kid, (cell, edu, ses, unemp, lang, school) in zip(fams, kids, rows, strict=True):
        f.cell[fam], f.low_edu[fam], f.ses[fam] = cell, bool(edu), ses
        f.unemployed[fam], f.lang[fam], ch.school[kid] = bool(unemp), lang, school
    ch.daycare[kids[:2]] = 0
    return model, kids, fams


def test_needs_index_school_based_by_hand() -> None:
    model, _, _ = hand_built()
    shares = needs_indicators(model, "school")
    # school 0: pupils of F1, F3; school 1: pupils of F2, F4, F5; others: no pupils -> 0
    assert np.allclose(shares[0], [1 / 2, 1, 1 / 2, 1])
    assert np.allclose(shares[1], [1 / 3, 0, 1 / 3, 0])
    assert np.allclose(needs_index(model, "school"), [0.75, 1 / 6, 0, 0, 0, 0])
    weighted = needs_index(model, "school", weights=[1, 0, 0, 3])
    assert np.allclose(weighted, [(0.5 + 3) / 4, (1 / 3) / 4, 0, 0, 0, 0])
    # daycare 0: children of F1 and F2
    assert np.allclose(needs_index(model, "daycare"), [0.5, 0, 0, 0, 0, 0])


def test_needs_index_area_based_by_hand() -> None:
    model, _, _ = hand_built()
    shares = needs_indicators(model, "school", "area_based")
    # school 0: residents F1, F2, F5; pupils k1, k3 (both foreign); catchment pupils k1 (stays),
    # k2, k5 (leave); k3 comes in -> net outflow (2 - 1) / 3
    assert np.allclose(shares[0], [1 / 3, 1 / 3, 1, 1 / 3])
    # school 1: residents F3, F4; pupils k2, k4, k5 (native); catchment pupils k3 (leaves),
    # k4 (stays); k2, k5 come in -> net outflow (1 - 2) / 2
    assert np.allclose(shares[1], [1 / 2, 1 / 2, 0, -1 / 2])
    # school 3 has residents but no pupils: index 0 like the pupil-less others
    assert np.allclose(needs_index(model, "school", variant="area_based"),
                       [0.5, 0.125, 0, 0, 0, 0])
    w = needs_index(model, "school", weights=[0, 0, 0, 1], variant="area_based")
    assert np.allclose(w, [1 / 3, -1 / 2, 0, 0, 0, 0])


# ---------------------------------------------------------------- allocation
def fund(model: SegregationModel, year: int = 1, **kw) -> TPFunding:
    """Build, init and apply a lever on ``model`` in ``year`` (outside a run)."""
    kw = {"budget_eur": 100_000, "threshold": 0.1, "reference_families": N_TINY, **kw}
    lever = TPFunding(**kw)
    model.levers = [lever]
    lever.bind(model)
    model.year = year
    lever.apply(model)
    return lever


@pytest.mark.parametrize(("kw", "euros"), [
    ({}, [75_000, 25_000]),  # weights 0.75 x 2 pupils : 1/6 x 3 pupils = 3 : 1
    ({"allocation": "equal_per_pupil"}, [40_000, 60_000]),  # 2 : 3 pupils
    ({"threshold": 0.2}, [100_000, 0]),  # only school 0 eligible
    ({"target": ["S001"]}, [0, 100_000]),  # only school 1 targeted
    ({"reference_families": 60_000}, [500, 500 / 3]),  # budget scaled by 400 / 60,000
])
def test_allocation_amounts_by_hand(kw: dict, euros: list[float]) -> None:
    model, _, _ = hand_built()
    lever = fund(model, **kw)
    sch = model.schools
    expected = np.array([*euros, 0, 0, 0, 0], dtype=float)
    assert np.allclose(sch.needs_funding, expected)
    assert np.allclose(sch.resources, 1 + expected / (np.array([2, 3, 1, 1, 1, 1]) * 10_000))
    assert sch.resources[2:].tolist() == [1.0] * 4  # unfunded units exactly 1
    assert lever.spent == {1: pytest.approx(expected.sum())}
    assert np.isclose(expected.sum(), lever.scaled_budget)
    assert np.array_equal(model.daycares.resources, np.ones(6))  # the school lever only


def test_allocation_on_a_running_model_sums_to_the_scaled_budget() -> None:
    model = SegregationModel(tiny_config("seed=9", "years=3"),
                             levers=[TPFunding(9_737_000, threshold=0.2),
                                     TPFunding(2_000_000, kind="daycare", threshold=0.2,
                                               allocation="equal_per_pupil")])
    model.run()
    school, daycare = model.levers
    for lever, units in ((school, model.schools), (daycare, model.daycares)):
        kind = lever.kind
        idx, n = needs_index(model, kind), model.enrolment(kind)
        eligible = (idx > 0.2) & (n > 0)
        assert eligible.any() and not eligible.all()
        assert np.array_equal(lever.eligible, eligible)  # year 3 is an update year
        assert np.isclose(units.needs_funding.sum(), lever.scaled_budget)
        helsinki = preset_families("helsinki")
        assert np.isclose(lever.scaled_budget, lever.budget_eur * N_TINY / helsinki)
        assert (units.needs_funding[~eligible] == 0).all()
        w = idx * n if lever.allocation == "proportional" else n.astype(float)
        assert np.allclose(units.needs_funding[eligible],
                           lever.scaled_budget * w[eligible] / w[eligible].sum())
        assert np.allclose(units.resources, 1 + units.needs_funding / (np.maximum(n, 1) * 1e4))
    cost = model.recorder.metrics_frame().set_index("year")["policy_cost_eur"]
    for year in range(4):
        assert cost[year] == school.spent.get(year, 0.0) + daycare.spent.get(year, 0.0)
    assert cost[2] == pytest.approx(school.scaled_budget + daycare.scaled_budget)


# ---------------------------------------------------------------- timing and buffer
def test_allocation_changes_only_in_update_years() -> None:
    lever = TPFunding(300_000, threshold=0.15, update_interval=3, reference_families=N_TINY)
    model = SegregationModel(tiny_config("seed=9", "years=8"), levers=[lever])
    model.run()
    a = lever.allocated
    assert sorted(a) == list(range(1, 9))
    assert sorted(lever.formulas) == [1, 4, 7]
    for year in (2, 3, 5, 6, 8):
        assert np.array_equal(a[year], a[year - 1]), year
    assert not np.array_equal(a[4], a[1]) or not np.array_equal(a[7], a[4])
    assert np.array_equal(model.schools.needs_funding, a[8])


def test_buffer_by_hand_phase_in_and_unspent_money() -> None:
    model, _, fams = hand_built()
    f = model.families
    f4 = fams[3]
    f.low_edu[f4], f.unemployed[f4] = False, False  # school 1's index drops to 0
    lever = fund(model, allocation="equal_per_pupil", update_interval=1, buffer_max_change=0.2)
    assert np.allclose(lever.allocated[1][:2], [100_000, 0])  # first allocation: the formula
    f.low_edu[f4], f.unemployed[f4] = True, True  # school 1 eligible again (index 1/6)
    model.year = 2
    lever.apply(model)
    # formula 40,000 / 60,000; school 0 may fall by 0.2 x 100,000, school 1 rise 0.2 x 60,000
    assert np.allclose(lever.formulas[2][:2], [40_000, 60_000])
    assert np.allclose(lever.allocated[2][:2], [80_000, 12_000])
    assert lever.spent[2] == pytest.approx(92_000)  # only what is allocated is booked
    assert lever.unspent[2] == pytest.approx(8_000)


def test_buffer_keeps_the_budget_ceiling() -> None:
    model, _, fams = hand_built()
    lever = fund(model, update_interval=1, buffer_max_change=0.2)
    assert np.allclose(lever.allocated[1][:2], [75_000, 25_000])
    f1, f3 = fams[0], fams[2]
    f = model.families
    f.low_edu[[f1, f3]], f.ses[[f1, f3]] = False, 1  # school 0's index drops to 0
    f.unemployed[[f1, f3]], f.lang[[f1, f3]] = False, 0
    model.year = 2
    lever.apply(model)
    # formula 0 / 100,000; school 0 keeps 75,000 - 15,000 (buffer); school 1 could rise to
    # 45,000 but only 40,000 is left under the budget
    assert np.allclose(lever.allocated[2][:2], [60_000, 40_000])
    assert lever.spent[2] == pytest.approx(100_000)


def test_buffer_caps_year_to_year_change_in_a_run() -> None:
    def run(buffer: float | None) -> TPFunding:
        lever = TPFunding(300_000, threshold=0.17, update_interval=1, reference_families=N_TINY,
                          buffer_max_change=buffer)
        SegregationModel(tiny_config("seed=9", "years=8"), levers=[lever]).run()
        return lever

    free, capped = run(None), run(0.1)
    assert any((np.abs(free.allocated[y] - free.allocated[y - 1])  # the buffer matters here
                > 0.1 * np.maximum(free.allocated[y - 1], free.formulas[y])).any()
               for y in range(2, 9))
    binds = False
    for y in range(2, 9):
        prev, new, target = capped.allocated[y - 1], capped.allocated[y], capped.formulas[y]
        assert (np.abs(new - prev) <= 0.1 * np.maximum(prev, target) + 1e-6).all(), y
        assert new.sum() <= capped.scaled_budget + 1e-6
        assert capped.spent[y] == pytest.approx(new.sum())
        binds |= not np.allclose(new, target)
    assert binds


def test_funding_stops_after_end_year() -> None:
    lever = TPFunding(300_000, threshold=0.15, reference_families=N_TINY, end_year=3)
    model = SegregationModel(tiny_config("seed=9", "years=5"), levers=[lever])
    for _ in range(3):
        model.step()
    assert model.schools.needs_funding.sum() == pytest.approx(300_000)
    model.step()
    assert (model.schools.needs_funding == 0).all()
    assert (model.schools.resources == 1.0).all()
    assert sorted(lever.spent) == [1, 2, 3]


# ---------------------------------------------------------------- no-op identity
def metrics(levers: list, *overrides: str):
    return run_tiny(levers, *overrides).recorder.metrics_frame()


def test_zero_budget_and_late_start_are_byte_identical_to_baseline() -> None:
    base = metrics([])
    zero = metrics([TPFunding(0.0, threshold=-1.0),
                    TPFunding(0, kind="daycare", allocation="equal_per_pupil", threshold=-1.0),
                    TPFunding(0, variant="area_based", update_interval=1, buffer_max_change=0.5)])
    assert base.equals(zero)
    assert base.equals(metrics([TPFunding(9_737_000, start_year=7)]))
    late = metrics([TPFunding(300_000, threshold=0.15, reference_families=N_TINY, start_year=3),
                    TPFunding(300_000, kind="daycare", threshold=0.15,
                              reference_families=N_TINY, start_year=3)])
    assert base.iloc[:3].equals(late.iloc[:3])  # years 0-2 bit-identical
    assert late["policy_cost_eur"].iloc[3] == 600_000
    assert not base["outcome_gap_decile"].iloc[4:].equals(late["outcome_gap_decile"].iloc[4:])


# ---------------------------------------------------------------- effect
def test_funding_raises_funded_schools_outcomes_through_outcomes() -> None:
    years = 8
    base = SegregationModel(tiny_config("seed=9", f"years={years}"), levers=[])
    lever = TPFunding(300_000, threshold=0.18, reference_families=N_TINY)
    tp = SegregationModel(tiny_config("seed=9", f"years={years}"), levers=[lever])
    diffs = []
    for _ in range(years):
        funded = tp.schools.needs_funding > 0  # money set last year acts on this year
        base.step()
        tp.step()
        if funded.any():
            diffs.append((tp.schools.mean_outcome[funded]
                          - base.schools.mean_outcome[funded]).mean())
    assert 0 < lever.eligible.sum() < len(lever.eligible)
    # about +15 % resources: target +0.1 school years, reached partially (adjustment 0.3/yr,
    # cohorts renew), so funded schools end a few hundredths of a school year ahead
    assert len(diffs) == years - 1 and min(diffs) > 0 and np.mean(diffs) > 0.02
    # The money acts only through the outcome channels: switched off, nothing changes.
    off = ("behaviour.outcomes.resource_effect=0", "behaviour.outcomes.turnover_resources=0")
    b = metrics([], *off)
    t = metrics([TPFunding(300_000, threshold=0.18, reference_families=N_TINY)], *off)
    assert b.drop(columns="policy_cost_eur").equals(t.drop(columns="policy_cost_eur"))


def test_daycare_funding_raises_perceived_quality() -> None:
    base = SegregationModel(tiny_config("seed=9", "years=2"), levers=[])
    lever = TPFunding(300_000, kind="daycare", threshold=0.15, reference_families=N_TINY)
    tp = SegregationModel(tiny_config("seed=9", "years=2"), levers=[lever])
    base.step()
    tp.step()
    funded = tp.daycares.needs_funding > 0
    assert funded.any()
    base.step()
    tp.step()  # year 2's reputation sees year 1's money
    diff = tp.daycares.rep_perceived[0] - base.daycares.rep_perceived[0]
    assert (diff[funded] > 0).all()


# ---------------------------------------------------------------- scenarios and errors
def test_shipped_scenarios_load_and_cite_targets() -> None:
    with TARGETS.open() as fh:
        t = {r["key"]: float(r["value"]) for r in csv.DictReader(fh) if r["kind"] == "funding"
             and r["value"].replace(".", "").isdigit()}
    tp = build_levers(load_config(["scenario=tp_funding"]).scenario.levers)
    assert [lv.kind for lv in tp] == ["school", "daycare"]
    assert tp[0].budget_eur == t["tp_budget_basic_education_eur"]
    assert tp[0].variant == "school_based" and tp[0].update_interval == 2
    (old,) = build_levers(load_config(["scenario=tp_area_based"]).scenario.levers)
    assert old.budget_eur == t["old_pd_funding_eur"] and old.variant == "area_based"


def test_tp_index_target_selects_needy_units() -> None:
    model, _, _ = hand_built()
    lever = fund(model, target="tp_index_above:0.5", threshold=-1.0)
    assert np.allclose(lever.allocated[1][:2], [100_000, 0])


@pytest.mark.parametrize(("kw", "match"), [
    ({"budget_eur": -1.0}, r"budget_eur=-1\.0 .*>= 0"),
    ({"budget_eur": float("nan")}, "budget_eur=nan"),
    ({"kind": "college"}, r"kind='college' .*'school', 'daycare'"),
    ({"variant": "mixed"}, r"variant='mixed' .*'school_based', 'area_based'"),
    ({"kind": "daycare", "variant": "area_based"}, r"variant='area_based' .*kind='daycare'"),
    ({"allocation": "lottery"}, "allocation='lottery' .*'proportional', 'equal_per_pupil'"),
    ({"weights": [1, 1, 1]}, r"weights=\[1, 1, 1\] .*4 finite non-negative"),
    ({"weights": [1, -1, 1, 1]}, r"weights=\[1, -1, 1, 1\]"),
    ({"weights": [0, 0, 0, 0]}, r"weights=\[0, 0, 0, 0\] .*positive sum"),
    ({"update_interval": 0}, "update_interval=0 .*integer >= 1"),
    ({"update_interval": 1.5}, "update_interval=1.5"),
    ({"threshold": float("inf")}, "threshold=inf .*finite"),
    ({"buffer_max_change": 0.0}, r"buffer_max_change=0\.0 .*\(0, 1\]"),
    ({"buffer_max_change": 1.5}, r"buffer_max_change=1\.5"),
    ({"base_cost_per_pupil_eur": 0}, "base_cost_per_pupil_eur=0"),
    ({"reference_families": 0}, "reference_families=0"),
    ({"start_year": 0}, "start_year=0"),
])
def test_bad_arguments_have_clear_messages(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=f"lever tp_funding: {match}"):
        TPFunding(**{"budget_eur": 1000.0, **kw})


@pytest.mark.parametrize(("kw", "match"), [
    ({"target": ["S001", "S999"]}, "target='S999' .*school id S000..S005"),
    ({"kind": "daycare", "target": ["S001"]}, "target='S001' .*daycare id D000..D005"),
])
def test_bad_targets_fail_at_model_construction(kw: dict, match: str) -> None:
    (lever,) = build_levers([{"lever": "tp_funding", "budget_eur": 1000, **kw}])
    with pytest.raises(ValueError, match=f"lever tp_funding: {match}"):
        SegregationModel(tiny_config(), levers=[lever])


def test_malformed_target_fails_when_the_lever_is_built() -> None:
    with pytest.raises(ValueError, match="lever tp_funding: target='somewhere'"):
        build_levers([{"lever": "tp_funding", "budget_eur": 1000, "target": "somewhere"}])


def test_scenario_errors_name_the_scenario() -> None:
    with pytest.raises(ValueError, match="scenario s: lever tp_funding: unknown argument"):
        build_levers([{"lever": "tp_funding", "budget_eur": 1, "budget": 2}], "scenario s")
    with pytest.raises(ValueError, match="budget_eur=-5"):
        build_levers([{"lever": "tp_funding", "budget_eur": -5}], "scenario s")


def test_needs_index_rejects_bad_arguments() -> None:
    model, _, _ = hand_built()
    with pytest.raises(ValueError, match="kind='daycare'"):
        needs_index(model, "daycare", variant="area_based")
    with pytest.raises(ValueError, match="weights=.*4 finite"):
        needs_index(model, "school", weights=[1, 2])
    with pytest.raises(ValueError, match="variant='x'"):
        needs_index(model, "school", variant="x")
