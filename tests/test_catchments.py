"""Catchment and school-network levers (scenarios.catchments)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from conftest import TINY, tiny_config
from scenarios.base import build_levers
from scenarios.catchments import (
    CatchmentReassign,
    CatchmentRedraw,
    SchoolNetwork,
    SharedCatchment,
    catchment_array,
    components,
    neighbours4,
    redraw,
    school_age_counts,
    spread,
)
from sim.config import load_config
from sim.model import SegregationModel
from sim.units import LOWER, UPPER

NO_LOOK = "behaviour.school.enabled=false"  # every entrant goes to the catchment school


def model(levers: list, *overrides: str) -> SegregationModel:
    return SegregationModel(tiny_config("seed=5", *overrides), levers=levers)


def run_metrics(levers: list, years: int = 5):
    m = model(levers, f"years={years}")
    m.run()
    return m.recorder.metrics_frame()


@functools.cache
def baseline_metrics(years: int):
    return run_metrics([], years)


def steps(m: SegregationModel, n: int) -> SegregationModel:
    for _ in range(n):
        m.step()
    return m


def sid(i: int) -> str:
    return f"S{int(i):03d}"


def far_land_cell(m: SegregationModel, level: int) -> int:
    """The inhabited land cell farthest from every school of the level."""
    c = m.city
    xy = c.xy[m.schools.cell[m.level_ids(level)]]
    d = np.hypot(*(c.xy[:, None, :] - xy[None]).transpose(2, 0, 1)).min(1)
    d[~c.land | (c.dwellings.sum(1) == 0)] = -1
    return int(np.argmax(d))


@pytest.fixture(scope="module")
def tiny_model() -> SegregationModel:
    return model([])


# ---------------------------------------------------------------------- reassign
def reassign_move(m: SegregationModel, by: str) -> tuple[dict, np.ndarray]:
    """A move from lower school 0 to its neighbour: half its cells, or a district part."""
    lab = m.city.catchment_lower
    ids = m.level_ids(LOWER)
    src = 0
    xy = m.school_xy[ids]
    dst = int(np.argsort(np.hypot(*(xy - xy[src]).T))[1])  # nearest other lower school
    mine = np.flatnonzero(lab == src)
    mine = mine[mine != m.schools.cell[ids[src]]]
    if by == "cells":
        d = np.hypot(*(m.city.xy[mine] - xy[dst]).T)
        cells = np.sort(mine[np.argsort(d, kind="stable")[: len(mine) // 2]])
        return {"from": sid(ids[src]), "to": sid(ids[dst]), "cells": cells.tolist()}, cells
    dist = int(np.bincount(m.city.district[mine]).argmax())
    cells = np.flatnonzero((m.city.district == dist) & (lab == src))
    return {"from": sid(ids[src]), "to": sid(ids[dst]), "districts": [dist]}, cells


@pytest.mark.parametrize("by", ["cells", "districts"])
def test_reassign_changes_only_targeted_cells(by: str) -> None:
    probe = model([], NO_LOOK)
    move, cells = reassign_move(probe, by)
    assert len(cells) > 0
    lever = CatchmentReassign([move], level="lower", start_year=2)
    m = steps(model([lever], NO_LOOK, "years=4"), 1)
    lower0, upper0 = m.city.catchment_lower.copy(), m.city.catchment_upper.copy()
    m.step()  # the lever acts at the end of year 2
    lower1 = m.city.catchment_lower
    changed = np.flatnonzero(lower1 != lower0)
    assert np.array_equal(changed, np.sort(cells))
    dst = int(move["to"][1:])
    assert (lower1[cells] == list(m.level_ids(LOWER)).index(dst)).all()
    assert np.array_equal(m.city.catchment_upper, upper0)
    assert (m.school_of_cell[LOWER, cells] == dst).all()
    layer = m.grid._mesa_property_layers["catchment_lower"].data
    assert np.array_equal(layer.reshape(-1), lower1)  # the Mesa layer sees the change

    ch, f = m.children, m.families
    enrolled = np.flatnonzero(ch.active & (ch.school >= 0) & (ch.age < 12))
    before, apt = ch.school[enrolled].copy(), ch.aptitude[enrolled].copy()
    m.step()  # year 3: admissions under the new catchments
    still = ch.active[enrolled] & (ch.aptitude[enrolled] == apt)  # the same children
    assert still.sum() > 0
    assert np.array_equal(ch.school[enrolled[still]], before[still])  # pupils keep their school
    new = ch.active & (ch.age == 7) & np.isin(f.cell[ch.family], cells)
    assert new.sum() > 0
    assert (ch.school[new] == dst).all()  # grade-1 entrants from moved cells: the new school


def test_reassign_moves_apply_in_order() -> None:
    probe = model([])
    cells = np.flatnonzero(probe.city.catchment_lower == 0)[:3].tolist()
    chain = [{"from": "S000", "to": "S001", "cells": cells},
             {"from": "S001", "to": "S002", "cells": cells}]
    m = steps(model([CatchmentReassign(chain, start_year=1)]), 1)
    assert (m.school_of_cell[LOWER, cells] == 2).all()
    with pytest.raises(ValueError, match=r"moves\[0\]\.cells=.*catchment of from='S001'"):
        CatchmentReassign(chain[::-1]).init(probe)


def test_reassign_to_a_school_closed_by_then_stops_the_run() -> None:
    move = {"from": "S000", "to": "S001", "cells": [int(np.flatnonzero(
        model([]).city.catchment_lower == 0)[0])]}
    levers = [SchoolNetwork(close=["S001"], start_year=1), CatchmentReassign([move])]
    with pytest.raises(ValueError, match=r"moves\[0\]\.to='S001' .*open when the lever acts"):
        steps(model(levers), 1)


def test_shared_group_needs_open_schools_when_it_acts() -> None:
    levers = [SchoolNetwork(close=["S001"]), SharedCatchment([["S000", "S001"]])]
    with pytest.raises(ValueError, match=r"groups=\['S000', 'S001'\] .*at least 2 open"):
        steps(model(levers), 1)
    levers = [SharedCatchment([["S000", "S001"]]), SchoolNetwork(close=["S000", "S001"])]
    with pytest.raises(ValueError, match=r"close=.*one open school in each shared catchment"):
        steps(model(levers), 1)


def test_reassign_is_recorded_and_rebuilt_from_its_spec() -> None:
    lever = CatchmentReassign([{"from": "S000", "to": "S001", "cells": [3, 4]}], start_year=2)
    again = build_levers([lever.spec()])[0]
    assert repr(again) == repr(lever)


# ---------------------------------------------------------------------- network
def test_closed_school_gets_no_intake_but_keeps_its_pupils() -> None:
    lever = SchoolNetwork(close=["S001"], start_year=2)
    m = steps(model([lever], "years=6"), 2)
    assert not m.schools.open[1]
    lab = m.city.catchment_lower
    assert not (lab == 1).any()  # its cells went to open schools
    assert m.schools.open[m.school_of_cell[LOWER, m.city.land]].all()
    ch = m.children
    pupils = set(np.flatnonzero(ch.active & (ch.school == 1)).tolist())
    assert pupils
    for _ in range(4):
        m.step()
        now = set(np.flatnonzero(ch.active & (ch.school == 1)).tolist())
        assert now <= pupils  # nobody new; the enrolled stay until they leave
        pupils = now
    units = m.recorder.units_frame()
    s1 = units[units["unit_id"] == "S001"].set_index("year")
    assert (s1.loc[3:, "intake"] == 0).all()
    assert s1.loc[3, "enrolled"] > 0
    assert s1.loc[6, "enrolled"] < s1.loc[2, "enrolled"]


def test_opened_school_receives_its_catchment_entrants() -> None:
    probe = model([])
    n_s = len(probe.schools.cell)
    cell = far_land_cell(probe, LOWER)
    lever = SchoolNetwork(open=[{"cell": cell, "level": "lower", "capacity": 60}],
                          start_year=2)
    m = steps(model([lever], NO_LOOK, "years=4"), 1)
    assert len(m.schools.cell) == n_s  # nothing is added before the start year
    m.step()
    assert lever.opened_ids == [sid(n_s)]
    assert m.schools.open[n_s] and m.schools.level[n_s] == LOWER
    assert m.schools.capacity[n_s] == 60
    area = np.flatnonzero(m.school_of_cell[LOWER] == n_s)
    assert cell in area
    m.step()
    ch, f = m.children, m.families
    new = ch.active & (ch.age == 7) & np.isin(f.cell[ch.family], area)
    assert new.sum() > 0
    assert (ch.school[new] == n_s).all()
    units = m.recorder.units_frame()
    assert units[(units["unit_id"] == sid(n_s)) & (units["year"] == 3)]["intake"].iloc[0] > 0


def test_capacity_change_is_applied() -> None:
    m = steps(model([SchoolNetwork(capacity={"S002": 77, "S004": 5}, start_year=2)]), 3)
    units = m.recorder.units_frame().set_index(["year", "unit_id"])
    assert units.loc[(2, "S002"), "design_capacity"] == 77
    assert units.loc[(2, "S004"), "design_capacity"] == 5
    # From the next admissions, seats are the new design, or more while pupils need them.
    nxt = units.loc[3]
    assert nxt.loc["S002", "capacity"] == max(77, nxt.loc["S002", "enrolled"])
    assert nxt.loc["S004", "capacity"] == max(5, nxt.loc["S004", "enrolled"])
    # No seat is free at S004, so only its own catchment's children enter (the guarantee).
    assert nxt.loc["S004", "intake"] == nxt.loc["S004", "intake_local"]


# ---------------------------------------------------------------------- redraw
@pytest.mark.parametrize("level", ["lower", "upper"])
def test_redraw_contiguous_within_reach_and_capacity_and_mixes(level: str) -> None:
    lev = LOWER if level == "lower" else UPPER
    lever = CatchmentRedraw(level=level, max_km=3.0, start_year=1)
    cfg = load_config(["seed=2", "years=1", "output.progress=false", "start=fresh",
                       "behaviour=default"])
    m = SegregationModel(cfg, levers=[lever])
    before = catchment_array(m, lev).copy()
    m.step()
    after = catchment_array(m, lev)
    ids = m.level_ids(lev)
    assert lever.n_moved == int((after != before).sum()) > 0
    assert lever.spread_after < lever.spread_before  # strictly better on the small city
    nb = neighbours4(m.city.width, m.city.height)
    for k in range(len(ids)):
        assert components(np.flatnonzero(after == k), nb) == 1
    moved = np.flatnonzero(after != before)
    xy = m.school_xy[ids[after[moved]]]
    assert (np.hypot(*(m.city.xy[moved] - xy).T) <= 3.0).all()
    low, tot = school_age_counts(m, lev)  # the counts the lever saw (no change since)
    n = len(ids)
    tot_k = np.bincount(after[after >= 0], weights=tot[after >= 0], minlength=n)
    low_k = np.bincount(after[after >= 0], weights=low[after >= 0], minlength=n)
    gained = np.unique(after[moved])
    assert (tot_k[gained] <= m.schools.capacity[ids[gained]]).all()
    assert spread(low_k, tot_k) == pytest.approx(lever.spread_after)
    tot_0 = np.bincount(before[before >= 0], weights=tot[before >= 0], minlength=n)
    low_0 = np.bincount(before[before >= 0], weights=low[before >= 0], minlength=n)
    assert spread(low_0, tot_0) == pytest.approx(lever.spread_before)
    assert (after[m.schools.cell[ids]] == np.arange(n)).all()  # schools keep their own cell


def test_redraw_ends_in_a_local_optimum_and_is_deterministic() -> None:
    out = []
    for _ in range(2):
        lever = CatchmentRedraw(level="lower", max_km=2.0, start_year=1)
        m = steps(model([lever]), 1)
        assert lever.spread_after <= lever.spread_before
        out.append(m.city.catchment_lower.copy())
    assert np.array_equal(*out)
    # No single allowed move improves the result any further.
    lab, n_iter, before, after = redraw(m, LOWER, out[0].copy(), *school_age_counts(m, LOWER),
                                        2.0, 100)
    assert n_iter == 0 and np.array_equal(lab, out[0]) and before == after


# ---------------------------------------------------------------------- shared
def pupil_low_shares(m: SegregationModel, schools: np.ndarray) -> np.ndarray:
    """Low-status share of each school's pupils (every grade)."""
    ch, f = m.children, m.families
    p = ch.active & np.isin(ch.school, schools)
    k = np.searchsorted(schools, ch.school[p])
    tot = np.bincount(k, minlength=len(schools))
    low = np.bincount(k, weights=f.ses[ch.family[p]] == 0, minlength=len(schools))
    return low / np.maximum(tot, 1)


def test_shared_catchment_evens_out_pupil_status() -> None:
    """Admission balances the group's pupils (continuing pupils plus intake), so after a
    few intakes the schools' low-status shares nearly agree; without it they differ."""
    group = [sid(i) for i in model([]).level_ids(LOWER)]
    schools = np.array([int(u[1:]) for u in group])
    spreads = []
    for levers in ([], [SharedCatchment([group], level="lower", start_year=1)]):
        m = steps(model(levers, NO_LOOK, "years=5"), 5)
        spreads.append(np.std(pupil_low_shares(m, schools)))
    assert spreads[0] > 0.05  # the catchments differ in status
    assert spreads[1] < 0.2 * spreads[0]


def test_shared_catchment_marks_the_union_of_catchments() -> None:
    lever = SharedCatchment([["S000", "S002"]], level="lower", start_year=1)
    m = steps(model([lever]), 1)
    assert len(m.shared_schools) == 1 and list(m.shared_schools[0]) == [0, 2]
    area = np.isin(m.school_of_cell[LOWER], [0, 2])
    assert (m.shared_cell[LOWER, area] == 0).all()
    assert (m.shared_cell[LOWER, ~area] == -1).all()
    assert (m.shared_cell[UPPER] == -1).all()


@pytest.mark.parametrize("level", ["lower", "upper"])
def test_renewal_groups_are_disjoint_and_deterministic(level: str) -> None:
    cfg = load_config(["seed=1", "years=1", "output.progress=false", "start=fresh",
                       "behaviour=default"])
    got = []
    for _ in range(2):
        lever = SharedCatchment("renewal", level=level, start_year=1)
        m = SegregationModel(cfg, levers=[lever])
        m.step()
        got.append(lever.resolved_groups)
    assert got[0] == got[1] and got[0]
    flat = [u for g in got[0] for u in g]
    assert len(flat) == len(set(flat)) and all(len(g) >= 2 for g in got[0])
    lev = LOWER if level == "lower" else UPPER
    ren = m.renewal_cell & (m.shared_cell[lev] >= 0)
    assert ren.any()  # the groups cover renewal areas


# ---------------------------------------------------------------------- identity
def late_levers() -> dict[str, list]:
    probe = model([])
    move, _ = reassign_move(probe, "cells")
    cell = far_land_cell(probe, LOWER)
    return {
        "reassign": [CatchmentReassign([move], start_year=3)],
        "redraw": [CatchmentRedraw(level="lower", start_year=3)],
        "shared": [SharedCatchment([["S000", "S001", "S002", "S003"]], start_year=3)],
        "open": [SchoolNetwork(open=[{"cell": cell, "level": "lower", "capacity": 40}],
                               start_year=3)],
        "close": [SchoolNetwork(close=["S001"], start_year=3)],
    }


@pytest.mark.parametrize("name", ["reassign", "redraw", "shared", "open", "close"])
def test_years_before_start_are_identical(name: str) -> None:
    base = baseline_metrics(6)
    late = run_metrics(late_levers()[name], years=6)
    assert base.iloc[:3].equals(late.iloc[:3])  # years 0-2 bit-identical
    assert not base.equals(late)  # and the lever does something


@pytest.mark.parametrize("levers", [
    [CatchmentReassign([], start_year=1)],
    [SchoolNetwork(start_year=1)],
    [SchoolNetwork(open=[], close=[], capacity={}, start_year=2)],
    [CatchmentRedraw(level="upper", max_km=0.01, start_year=1)],
], ids=["empty-moves", "empty-network", "empty-lists", "redraw-out-of-reach"])
def test_no_op_levers_change_nothing(levers: list) -> None:
    assert baseline_metrics(5).equals(run_metrics(levers, years=5))


def test_scenarios_load_and_run() -> None:
    for name in ("catchment_mix", "flexible_catchment"):
        cfg = load_config([f"scenario={name}", "years=2", "output.progress=false",
                           *[o for o in TINY if "years" not in o]])
        assert cfg.scenario.name == name and cfg.scenario.description
        m = SegregationModel(cfg)
        m.run()
        assert len(m.recorder.metrics_frame()) == 3


# ---------------------------------------------------------------------- validation
def sea_cell(m: SegregationModel) -> int:
    return int(np.flatnonzero(~m.city.land)[0])


def foreign_cell(m: SegregationModel) -> int:
    """A land cell outside lower school 0's catchment."""
    return int(np.flatnonzero(m.city.catchment_lower == 1)[0])


BAD = {
    "unknown school id": (
        lambda m: CatchmentReassign([{"from": "S999", "to": "S001", "cells": [0]}]),
        r"catchment_reassign: moves\[0\]\.from='S999' .*school id S000\.\."),
    "wrong level": (
        lambda m: CatchmentReassign([{"from": sid(m.level_ids(UPPER)[0]), "to": "S001",
                                      "cells": [0]}]),
        r"moves\[0\]\.from=.*expected a lower school \(it is an upper school\)"),
    "cells not in from": (
        lambda m: CatchmentReassign([{"from": "S000", "to": "S002",
                                      "cells": [foreign_cell(m)]}]),
        r"moves\[0\]\.cells=\[\d+\] .*cells in the catchment of from='S000'"),
    "to equals from": (
        lambda m: CatchmentReassign([{"from": "S000", "to": "S000", "cells": [1]}]),
        r"moves\[0\]\.to='S000' .*a school other than from"),
    "both cells and districts": (
        lambda m: CatchmentReassign([{"from": "S000", "to": "S001", "cells": [1],
                                      "districts": [0]}]),
        r"moves\[0\]=.*exactly one of cells or districts"),
    "unknown level": (
        lambda m: CatchmentRedraw(level="middle"),
        r"catchment_redraw: level='middle' .*'lower' or 'upper'"),
    "end year": (
        lambda m: CatchmentRedraw(start_year=2, end_year=4),
        r"end_year=4 .*None \(the change is made once"),
    "overlapping shared catchments": (
        lambda m: SharedCatchment([["S000", "S001"], ["S001", "S002"]]),
        r"shared_catchment: groups\[1\]='S001' .*one group only \(it is also in groups\[0\]"),
    "too-small group": (
        lambda m: SharedCatchment([["S000", "S000"]]),
        r"groups\[0\]=\['S000', 'S000'\] .*at least 2 different schools"),
    "shared group of the other level": (
        lambda m: SharedCatchment([["S000", "S001"]], level="upper"),
        r"groups\[0\]='S000' .*expected an upper school \(it is a lower school\)"),
    "closing all schools": (
        lambda m: SchoolNetwork(close=[sid(i) for i in m.level_ids(UPPER)]),
        r"school_network: close=\[.*leaving at least one open upper school"),
    "non-land cell": (
        lambda m: SchoolNetwork(open=[{"cell": sea_cell(m), "level": "lower", "capacity": 9}]),
        r"open\[0\]\.cell=\d+ .*a land cell"),
    "non-positive capacity": (
        lambda m: SchoolNetwork(open=[{"cell": 0, "level": "lower", "capacity": 0}]),
        r"open\[0\]\.capacity=0 .*positive integer"),
    "capacity of unknown school": (
        lambda m: SchoolNetwork(capacity={"S777": 10}),
        r"capacity='S777' .*school id"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_validation_errors(case: str, tiny_model: SegregationModel) -> None:
    make, pattern = BAD[case]
    with pytest.raises(ValueError, match=pattern):
        make(tiny_model).init(tiny_model)


def test_bad_scenario_entry_is_refused_when_levers_are_built() -> None:
    # The config is checked by the core; its levers by the policy layer, before any model.
    cfg = load_config(["scenario.levers=[{lever: shared_catchment, groups: [[S000]]}]"])
    with pytest.raises(ValueError, match="shared_catchment: groups"):
        build_levers(cfg.scenario.levers)
