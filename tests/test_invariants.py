"""Model invariants on random small configs, checked after initialisation and every year.

Capacities (schools, daycares, dwellings), enrolment by age and level, pool consistency
(children only of active families, 1..max_children children each, housed on land), the
family balance with booked flows, Mesa agents matching the family pool, and finite
headline segregation indices.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from agents import Family
from conftest import tiny_config
from sim.model import SegregationModel

FINITE_KEYS = ("seg_res_ses_H", "seg_school_ses_H")


def _fmt(x: float) -> str:
    return f"{x:.3f}"


@st.composite
def overrides(draw: st.DrawFn) -> list[str]:
    """Hydra overrides for a random small config (on top of ``tiny_config``)."""
    look = draw(st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3))
    return [
        f"seed={draw(st.integers(0, 10**6))}",
        f"years={draw(st.integers(2, 5))}",
        f"city.n_families={draw(st.integers(150, 600))}",
        f"city.n_lower_schools={draw(st.integers(2, 5))}",
        f"city.n_upper_schools={draw(st.integers(1, 3))}",
        f"city.n_daycares={draw(st.integers(2, 8))}",
        f"city.school_capacity_slack={_fmt(draw(st.floats(1.0, 2.0)))}",
        f"city.daycare_capacity_slack={_fmt(draw(st.floats(1.0, 2.0)))}",
        f"city.dwellings_per_family={_fmt(draw(st.floats(1.01, 1.3)))}",
        f"city.foreign_share={_fmt(draw(st.floats(0.0, 0.6)))}",
        f"behaviour.school.enabled={str(draw(st.booleans())).lower()}",
        f"behaviour.reputation.feedback={str(draw(st.booleans())).lower()}",
        "behaviour.school.look_prob=[" + ",".join(_fmt(v) for v in look) + "]",
    ]


def assert_within_capacity(yr: int, what: str, enrolled: np.ndarray,
                           capacity: np.ndarray) -> None:
    over = np.flatnonzero(enrolled > capacity)
    assert len(over) == 0, (
        f"{yr}: {what} over capacity {over.tolist()}: enrolled {enrolled[over].tolist()} "
        f"> capacity {capacity[over].tolist()}")


def check_invariants(model: SegregationModel, prev_n: int | None = None,
                     finite: tuple[str, ...] = FINITE_KEYS) -> None:
    """Assert every invariant on the model's current state (after init or a year).

    ``finite``: metrics that must be finite (test_properties checks all metrics itself).
    """
    cfg = model.cfg
    f, ch, sch, dcs, city = (model.families, model.children, model.schools, model.daycares,
                             model.city)
    yr = f"year {model.year}"
    fa, ca = f.active, ch.active
    age = ch.age[ca]
    school = ch.school[ca]
    daycare = ch.daycare[ca]

    # Children belong to active families; ages 0-15.
    fam = ch.family[ca]
    assert (fam >= 0).all() and (fam < f.capacity).all(), f"{yr}: child with bad family slot"
    assert fa[fam].all(), f"{yr}: active child of an inactive family slot"
    assert ((age >= 0) & (age <= 15)).all(), f"{yr}: child age outside 0-15: {np.unique(age)}"

    # Schools: capacity, and enrolment by age and level.
    n_s = len(sch.cell)
    assert ((school >= -1) & (school < n_s)).all(), f"{yr}: bad school index"
    assert_within_capacity(yr, "schools", np.bincount(school[school >= 0], minlength=n_s),
                           sch.capacity)
    school_age = (age >= 7) & (age <= 15)
    assert (school[school_age] >= 0).all(), (
        f"{yr}: {(school[school_age] < 0).sum()} children aged 7-15 without a school")
    assert (school[age < 7] < 0).all(), f"{yr}: child younger than 7 in a school"
    lower_age = (age >= 7) & (age <= 12)
    upper_age = (age >= 13) & (age <= 15)
    assert (sch.level[school[lower_age]] == 0).all(), f"{yr}: child 7-12 not in a lower school"
    assert (sch.level[school[upper_age]] == 1).all(), f"{yr}: child 13-15 not in an upper school"
    assert (ch.school[~ca] == -1).all(), f"{yr}: inactive child slot holds a school seat"

    # Daycares: capacity and ages.
    n_d = len(dcs.cell)
    assert ((daycare >= -1) & (daycare < n_d)).all(), f"{yr}: bad daycare index"
    assert_within_capacity(yr, "daycares", np.bincount(daycare[daycare >= 0], minlength=n_d),
                           dcs.capacity)
    no_dc = (age == 0) | (age >= 7)
    assert (daycare[no_dc] < 0).all(), f"{yr}: child aged 0 or >= 7 in a daycare"
    assert (ch.daycare[~ca] == -1).all(), f"{yr}: inactive child slot holds a daycare seat"

    # Families: 1..max_children children, housed on land.
    slots = np.flatnonzero(fa)
    n_kids = np.bincount(fam, minlength=f.capacity)[slots]
    max_children = cfg.behaviour.demography.max_children
    bad = (n_kids < 1) | (n_kids > max_children)
    assert not bad.any(), (
        f"{yr}: families {slots[bad][:5].tolist()} have {n_kids[bad][:5].tolist()} children, "
        f"allowed 1..{max_children}")
    cell, tenure = f.cell[slots], f.tenure[slots]
    assert (cell >= 0).all(), f"{yr}: active family without a home"
    assert city.land[cell].all(), f"{yr}: family housed on a sea cell"
    assert ((tenure >= 0) & (tenure <= 2)).all(), f"{yr}: bad tenure"

    # Dwellings: not over-filled; social rental only for eligible status.
    occ = np.bincount(cell * 3 + tenure, minlength=3 * city.n_cells).reshape(-1, 3)
    over = np.argwhere(occ > city.dwellings)[:5]
    at = tuple(over.T)
    assert len(over) == 0, (
        f"{yr}: over-filled (cell, tenure) {over.tolist()}: occupancy "
        f"{occ[at].tolist()} > dwellings {city.dwellings[at].tolist()}")
    max_ses = cfg.behaviour.preferences.social_max_ses
    social_ses = f.ses[slots][tenure == 0]
    assert (social_ses <= max_ses).all(), (
        f"{yr}: social-rental tenants with ses > {max_ses}: {np.unique(social_ses).tolist()}")

    # Family balance with booked flows.
    cur = model.recorder.current
    assert cur["year"] == model.year, f"{yr}: metrics are of year {cur['year']}"
    assert cur["n_families"] == f.n_active, f"{yr}: metrics n_families != active families"
    if prev_n is not None:
        expect = (prev_n - int(cur["aged_out"]) - int(cur["left_city"]) + int(cur["returns"])
                  + int(cur["first_births"]) + int(cur["arrivals"]))
        assert f.n_active == expect, (
            f"{yr}: {f.n_active} families, expected {prev_n} - {cur['aged_out']} aged out - "
            f"{cur['left_city']} left + {cur['returns']} returns + {cur['first_births']} "
            f"first births + {cur['arrivals']} arrivals = {expect}")
        assert cur["births"] >= cur["first_births"], f"{yr}: fewer births than first births"

    # Families away (leavers who will come back) hold their slots, outside the city.
    assert not (f.active & f.away).any(), f"{yr}: a family slot both in the city and away"
    assert not (ch.active & ch.away).any(), f"{yr}: a child slot both in the city and away"
    kid_fam = ch.family[ch.away]
    assert f.away[kid_fam].all(), f"{yr}: a child away whose family is not"
    assert np.isin(np.flatnonzero(f.away), kid_fam).all(), f"{yr}: a family away, no child"
    assert (f.return_year[f.away] > model.year).all(), f"{yr}: a family away past its return"
    assert (f.cell[f.away] == -1).all(), f"{yr}: a family away still holds a home"
    assert (ch.school[ch.away] == -1).all() and (ch.daycare[ch.away] == -1).all(), (
        f"{yr}: a child away holds a seat")
    assert (ch.age[ch.away] <= 15).all(), f"{yr}: a child away aged 16 or more"
    assert (f.return_year[~f.away] == -1).all(), f"{yr}: a return year outside the away set"
    assert len(np.unique(f.uid[fa | f.away])) == (fa | f.away).sum(), f"{yr}: a shared uid"

    # Mesa Family agents mirror the active slots.
    agents = list(model.agents_by_type.get(Family, []))
    assert len(agents) == f.n_active, f"{yr}: {len(agents)} Family agents, {f.n_active} active"
    agent_slots = np.array([a.slot for a in agents], dtype=np.int64)
    assert fa[agent_slots].all(), f"{yr}: Family agent on an inactive slot"
    assert len(np.unique(agent_slots)) == len(agent_slots), f"{yr}: two agents share a slot"
    assert sorted(model.family_agents) == slots.tolist(), f"{yr}: family_agents keys != slots"
    assert all(a.unique_id == f.uid[a.slot] for a in agents), f"{yr}: uid not in the pool"

    # Headline indices are finite.
    for key in finite:
        assert math.isfinite(cur[key]), f"{yr}: {key} = {cur[key]}"


def run_checked(cfg) -> SegregationModel:
    """Build a model and step it ``cfg.years`` times, checking invariants throughout."""
    model = SegregationModel(cfg)
    check_invariants(model)
    for _ in range(cfg.years):
        prev_n = model.families.n_active
        model.step()
        check_invariants(model, prev_n)
    return model


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ov=overrides())
def test_invariants_hold_every_year(ov: list[str]) -> None:
    note(f"overrides: {ov}")
    run_checked(tiny_config(*ov))


def test_no_school_choice_means_everyone_local() -> None:
    cfg = tiny_config("behaviour.school.enabled=false", "seed=7", "years=4")
    model = SegregationModel(cfg)
    shares = [(model.year, model.recorder.current["local_school_share_g1"],
               model.recorder.current["local_school_share_g7"])]
    for _ in range(cfg.years):
        model.step()
        shares.append((model.year, model.recorder.current["local_school_share_g1"],
                       model.recorder.current["local_school_share_g7"]))
    for year, g1, g7 in shares:
        assert g1 == 1.0 and g7 == 1.0, f"year {year}: local shares g1={g1}, g7={g7}"


def test_no_arrivals_population_only_shrinks() -> None:
    cfg = tiny_config("behaviour.demography.arrival_ratio=0", "seed=11", "years=5",
                      "behaviour.demography.first_birth_rate=0",
                      "behaviour.demography.return_logit=-20")
    model = SegregationModel(cfg)
    n = [model.families.n_active]
    for _ in range(cfg.years):
        model.step()
        cur = model.recorder.current
        assert cur["arrivals"] == cur["first_births"] == cur["returns"] == 0
        n.append(model.families.n_active)
    assert all(b <= a for a, b in zip(n, n[1:], strict=False)), n
    assert n[-1] < n[0], n
