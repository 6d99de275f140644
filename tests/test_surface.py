"""The model's declared structure: phases as data, the lever surface, the ledger, Mesa agents."""

from __future__ import annotations

import numpy as np
import pytest
from mesa.model import ModelSignals

from agents import Family
from conftest import run_tiny, tiny_config
from scenarios import LEVERS, build_levers
from sim.model import SETUP, YEAR, SegregationModel
from sim.units import LOWER, UPPER, parse_unit_id, unit_id

# One valid spec per lever, and a target (or school id) the tiny city does not have.
VALID = {
    "tp_funding": {"budget_eur": 1000},
    "engagement": {},
    "urban_renewal": {},
    "catchment_reassign": {"moves": [{"from": "S000", "to": "S001",
                                      "districts": [0, 1, 2, 3, 4, 5]}]},
    "catchment_redraw": {},
    "shared_catchment": {"groups": [["S000", "S001"]]},
    "school_network": {"close": ["S000"]},
}
UNKNOWN_UNIT = {
    "tp_funding": {"target": ["S999"]},
    "engagement": {"target": ["D999"]},
    "urban_renewal": {"districts": [999]},
    "catchment_reassign": {"moves": [{"from": "S000", "to": "S999", "districts": [0]}]},
    "catchment_redraw": None,  # acts on a whole level: no unit to name
    "shared_catchment": {"groups": [["S000", "S999"]]},
    "school_network": {"close": ["S999"]},
}


@pytest.fixture
def tiny_model() -> SegregationModel:
    return SegregationModel(tiny_config("seed=5"))


def test_every_lever_has_cases() -> None:
    assert set(VALID) == set(LEVERS) == set(UNKNOWN_UNIT)


@pytest.mark.parametrize("name", sorted(LEVERS))
def test_unknown_argument_is_refused_when_built(name: str) -> None:
    with pytest.raises(ValueError, match=rf"lever {name}: unknown argument\(s\) \['bogus'\]"):
        build_levers([{"lever": name, **VALID[name], "bogus": 1}], "scenario x")


@pytest.mark.parametrize("name", sorted(k for k, v in UNKNOWN_UNIT.items() if v))
def test_unknown_target_is_refused_before_any_year_runs(name: str, monkeypatch) -> None:
    levers = build_levers([{"lever": name, **VALID[name], **UNKNOWN_UNIT[name]}])
    ran = []
    monkeypatch.setattr(SegregationModel, "step", lambda self: ran.append(self))
    with pytest.raises(ValueError, match=f"lever {name}: "):
        SegregationModel(tiny_config(), levers=levers)
    assert not ran


@pytest.mark.parametrize("name", sorted(LEVERS))
def test_valid_specs_bind(name: str, tiny_model: SegregationModel) -> None:
    (lever,) = build_levers([{"lever": name, **VALID[name]}])
    lever.bind(tiny_model)  # no error


def test_renewal_target_on_a_city_without_renewal_areas_is_refused() -> None:
    (lever,) = build_levers([{"lever": "tp_funding", "budget_eur": 1, "target": "renewal"}])
    with pytest.raises(ValueError, match="no urban-renewal areas"):
        SegregationModel(tiny_config("city.n_renewal_areas=0"), levers=[lever])


def test_step_runs_the_declared_phases_in_order(tiny_model: SegregationModel) -> None:
    seen = []
    tiny_model.phases = tuple((lambda m, p=p: seen.append(p.__name__) or p(m)) for p in YEAR)
    tiny_model.step()
    assert seen == [p.__name__ for p in YEAR]
    assert seen[-1] == "record" and seen[-2] == "apply_levers"
    assert [p.__name__ for p in SETUP][0] == "initial_population"
    doc = SegregationModel.step.__doc__
    assert all(p.__module__.rsplit(".", 1)[-1] in doc for p in YEAR[:-1])


def test_unit_ids_round_trip() -> None:
    assert unit_id("school", 3) == "S003" and unit_id("daycare", 12) == "D012"
    assert parse_unit_id("S003", "school", 10) == 3
    for bad in ("S010", "D003", "S-1", "S", 3, None):
        assert parse_unit_id(bad, "school", 10) is None


# ------------------------------------------------------------------ the lever surface
def test_set_funding_sums_sources_and_sets_resources(tiny_model: SegregationModel) -> None:
    m = tiny_model
    n = len(m.schools.cell)
    a, b = np.zeros(n), np.zeros(n)
    a[0], b[0], b[1] = 10_000.0, 5_000.0, 2_000.0
    m.set_funding("school", "a", a, 10_000.0)
    m.set_funding("school", "b", b, 10_000.0)
    pupils = np.maximum(m.enrolment("school"), 1)
    assert m.schools.needs_funding[:2].tolist() == [15_000.0, 2_000.0]
    np.testing.assert_allclose(m.schools.resources[:2],
                               1 + np.array([15_000.0, 2_000.0]) / (pupils[:2] * 10_000.0))
    assert (m.schools.resources[2:] == 1.0).all()
    m.set_funding("school", "a", np.zeros(n), 10_000.0)  # a source withdraws
    assert m.schools.needs_funding[0] == 5_000.0
    assert (m.daycares.resources == 1.0).all()


@pytest.mark.parametrize(("call", "match"), [
    (lambda m: m.set_funding("school", "x", np.ones(3), 1.0), "set_funding: euros="),
    (lambda m: m.set_funding("school", "x", -np.ones(len(m.schools.cell)), 1.0),
     "set_funding: euros="),
    (lambda m: m.set_funding("school", "x", np.zeros(len(m.schools.cell)), 0.0),
     "set_funding: base_cost_per_pupil_eur=0.0"),
    (lambda m: m.set_funding("pool", "x", np.zeros(3), 1.0), "units_of: kind='pool'"),
    (lambda m: m.set_trust("school", [999], 0.1), "set_trust: units=\\[999\\]"),
    (lambda m: m.set_trust("school", [0], float("nan")), "set_trust: trust=nan"),
    (lambda m: m.set_trust("daycare", [0], 0.1, optout=0.5), "set_trust: optout=0.5"),
    (lambda m: m.inform_families(np.array([0]), 1.5), "inform_families: gain=1.5"),
    (lambda m: m.set_catchments(LOWER, np.zeros(3)), "set_catchments: labels="),
    (lambda m: m.set_catchments(LOWER, np.full(m.city.n_cells, 99)), "set_catchments: labels="),
    (lambda m: m.share_catchment(LOWER, np.array([0])), "share_catchment: schools=\\[0\\]"),
    (lambda m: m.open_school(-1, LOWER, 10), "open_school: cell=-1"),
    (lambda m: m.open_school(int(np.flatnonzero(m.city.land)[0]), LOWER, 0),
     "open_school: capacity=0"),
    (lambda m: m.resize_school(0, 0), "resize_school: capacity=0"),
    (lambda m: m.close_school(999), "close_school: units=\\[999\\]"),
    (lambda m: m.add_dwellings(-np.ones_like(m.city.dwellings)), "add_dwellings: dwellings="),
    (lambda m: m.improve_cells(np.array([0]), amenity=float("inf")), "improve_cells: "),
    (lambda m: m.book_cost("x", -1.0), "cost of x in year 0: -1.0"),
])
def test_surface_refuses_bad_arguments(tiny_model, call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call(tiny_model)


def test_set_catchments_refreshes_the_school_map(tiny_model: SegregationModel) -> None:
    m = tiny_model
    lab = m.city.catchment_upper.copy()
    lab[m.city.land] = 1
    m.set_catchments(UPPER, lab)
    assert (m.school_of_cell[UPPER][m.city.land] == m.level_ids(UPPER)[1]).all()
    assert (m.school_of_cell[UPPER][~m.city.land] == -1).all()


def test_open_close_resize_and_rebuild(tiny_model: SegregationModel) -> None:
    m = tiny_model
    n_agents = len(m.agents)
    cell = int(np.flatnonzero(m.city.land)[-1])
    i = m.open_school(cell, LOWER, 120)
    assert m.schools.open[i] and m.schools.capacity[i] == 120 and len(m.agents) == n_agents + 1
    m.rebuild_catchments(LOWER)
    assert m.school_of_cell[LOWER, cell] == i  # its own cell is nearest to it
    m.close_school(i)
    m.rebuild_catchments(LOWER)
    assert i not in set(m.school_of_cell[LOWER].tolist())
    m.resize_school(0, 77)
    assert m.schools.design_capacity[0] == 77


def test_add_dwellings_and_improve_cells(tiny_model: SegregationModel) -> None:
    m = tiny_model
    add = np.zeros_like(m.city.dwellings)
    cell = int(np.flatnonzero(m.city.land)[0])
    add[cell, 1] = 3
    before = m.city.dwellings.copy()
    m.add_dwellings(add)
    assert (m.city.dwellings - before).sum() == 3
    assert m.city.dwellings[cell, 1] == before[cell, 1] + 3
    m.improve_cells(np.array([cell]), amenity=5.0, price=0.25)
    assert m.city.amenity[cell] == 1.0  # kept in [0, 1]
    assert m.grid.amenity.data.reshape(-1)[cell] == 1.0  # the Mesa property layer


def test_costs_reach_the_metrics_through_the_ledger() -> None:
    levers = build_levers([{"lever": "engagement", "start_year": 2},
                           {"lever": "tp_funding", "budget_eur": 9_700_000}])
    m = run_tiny(levers, "city.n_renewal_areas=2", years=4)
    cost = m.recorder.metrics_frame()["policy_cost_eur"].tolist()
    assert cost == [m.ledger.total(y) for y in range(5)]
    assert cost[1] > 0 and cost[2] > cost[1]  # engagement starts in year 2
    assert sum(m.ledger.by_source().values()) == pytest.approx(sum(cost))
    assert [lv.label for lv in m.levers] == ["engagement", "tp_funding"]


def test_duplicate_lever_labels_are_made_unique() -> None:
    levers = build_levers([{"lever": "tp_funding", "budget_eur": 1},
                           {"lever": "tp_funding", "budget_eur": 2, "kind": "daycare"}])
    m = SegregationModel(tiny_config(), levers=levers)
    assert [lv.label for lv in m.levers] == ["tp_funding", "tp_funding#2"]


# ------------------------------------------------------------------ Mesa agents
def test_family_agents_are_registered_with_mesa() -> None:
    m = run_tiny([], years=3)
    fams = m.agents_by_type[Family]
    assert set(fams) == set(m.family_agents.values())
    assert sorted(m.family_agents) == np.flatnonzero(m.families.active).tolist()
    assert all(a.slot == s for s, a in m.family_agents.items())
    ids = [a.unique_id for a in m.agents]
    assert len(ids) == len(set(ids)) == len(fams) + len(m.schools.cell) + len(m.daycares.cell)
    assert max(ids) < m.agent_id_counter
    assert fams.select(lambda a: a.ses == 0).agg("ses", sum) == 0  # Mesa's AgentSet tools work


class Listener:
    """Collects Mesa signals (Mesa keeps weak references to bound methods)."""

    def __init__(self) -> None:
        self.added: list = []
        self.removed: list = []

    def on_added(self, signal) -> None:
        self.added.append(signal)

    def on_removed(self, signal) -> None:
        self.removed.append(signal)


def test_observed_family_agents_send_mesa_signals() -> None:
    listener = Listener()
    m = SegregationModel(tiny_config("seed=3"))
    m.observe("agents", ModelSignals.AGENT_ADDED, listener.on_added)
    m.observe("agents", ModelSignals.AGENT_REMOVED, listener.on_removed)
    m.run(2)
    n_new = int((m.families.arrived > 0).sum())
    assert len(listener.added) >= n_new > 0 and len(listener.removed) > 0
    assert set(m.agents_by_type[Family]) == set(m.family_agents.values())
