"""The urban-renewal lever: infill dwellings by tenure, amenity, cost, identity, errors."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd
import pytest

from conftest import lever, run_tiny, tiny_config
from scenarios.base import build_levers
from scenarios.urban_renewal import largest_remainder
from sim.config import load_config
from sim.model import SegregationModel

YEARS = 6
REF = 60_000  # Helsinki scale the expected numbers below use (passed to the lever)
SCALE = 400 / REF  # tiny city: 400 families


renewal = partial(lever, "urban_renewal")
run = run_tiny


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return run([]).recorder.metrics_frame()


def test_largest_remainder() -> None:
    assert largest_remainder(10, np.array([0.3, 0.3, 0.4])).tolist() == [3, 3, 4]
    assert largest_remainder(7, np.array([1.0, 1.0, 1.0])).tolist() == [3, 2, 2]
    assert largest_remainder(5, np.array([0.0, 2.0, 1.0])).tolist() == [0, 3, 2]


@pytest.mark.parametrize("districts", ["renewal", [1, 4]])
def test_adds_exactly_the_planned_dwellings_by_tenure_in_target_districts(districts) -> None:
    lever = renewal(districts=districts, dwellings_per_year=6000, construction_years=4,
                    reference_families=REF,
                    tenure_mix=[0.2, 0.3, 0.5], amenity_gain=0.0)
    model = SegregationModel(tiny_config("seed=9", f"years={YEARS}"), levers=[lever])
    before = model.city.dwellings.copy()
    model.run()
    added = model.city.dwellings - before
    target = (np.flatnonzero(model.city.renewal) if districts == "renewal"
              else np.array(districts))
    assert len(target) and np.array_equal(lever.target_districts, target)
    in_target = np.isin(model.city.district, target)
    total = math.floor(6000 * SCALE * 4 + 0.5)  # 160
    assert added.sum(0).tolist() == [32, 48, 80] and added.sum() == total
    assert (added >= 0).all() and not added[~in_target].any()
    assert not added[before.sum(1) == 0].any()  # spread over cells that have dwellings
    # built in years 1-4, 40 a year, each year with its share of every tenure
    assert sorted(lever.built) == [1, 2, 3, 4]
    for add in lever.built.values():
        assert add.sum() == 40 and np.abs(add.sum(0) - [8, 12, 20]).max() <= 1
    # spread in proportion to the existing stock (cells with more dwellings get more)
    stock = before[in_target].sum(1)
    big, small = stock >= np.quantile(stock, 0.75), stock <= np.quantile(stock, 0.25)
    assert added[in_target][big].sum(1).mean() > added[in_target][small].sum(1).mean()


def test_amenity_rises_only_in_target_districts_and_price_if_asked() -> None:
    lever = renewal(dwellings_per_year=0, amenity_gain=0.25, price_gain=0.1,
                    construction_years=5)
    model = SegregationModel(tiny_config("seed=9", f"years={YEARS}"), levers=[lever])
    a0, p0 = model.city.amenity.copy(), model.city.price.copy()
    model.run()
    inside = model.renewal_cell
    expected = a0[inside].copy()
    for _ in range(5):
        expected = np.clip(expected + 0.05, 0, 1)
    assert np.allclose(model.city.amenity[inside], expected)
    assert (model.city.amenity[inside] > a0[inside]).all()
    assert np.array_equal(model.city.amenity[~inside], a0[~inside])
    assert np.allclose(model.city.price[inside], p0[inside] + 0.1)
    assert np.array_equal(model.city.price[~inside], p0[~inside])
    # edited in place: the Mesa property layer shows the new amenity
    assert np.array_equal(model.grid.amenity.data.reshape(-1), model.city.amenity)


def test_infill_makes_room_for_more_families_in_the_target_districts() -> None:
    more = 0
    for seed in (1, 2):
        base = run([], seed=seed)
        ur = run([renewal(dwellings_per_year=9000, amenity_gain=0.0)], seed=seed)
        for m, sign in ((base, -1), (ur, 1)):
            f = m.families
            a = f.active & (f.cell >= 0)
            more += sign * int(m.renewal_cell[f.cell[a]].sum())
    assert more > 20  # 300 new dwellings; most are taken up by movers and arrivals


@pytest.mark.parametrize("kw", [
    {"dwellings_per_year": 0, "amenity_gain": 0.0, "price_gain": 0.0},
    {"start_year": YEARS + 1},
])
def test_zero_strength_or_late_start_is_identical_to_baseline(baseline, kw) -> None:
    lever = renewal(**kw)
    assert run([lever]).recorder.metrics_frame().equals(baseline)
    assert sum(lever.spent.values()) == 0


def test_years_before_start_are_identical(baseline) -> None:
    late = run([renewal(dwellings_per_year=9000, start_year=3)]).recorder.metrics_frame()
    assert late.iloc[:3].equals(baseline.iloc[:3])
    assert not late.iloc[4:].equals(baseline.iloc[4:])


def test_end_year_stops_construction() -> None:
    lever = renewal(dwellings_per_year=6000, construction_years=4, end_year=2,
                    reference_families=REF)
    run([lever])
    assert sorted(lever.built) == [1, 2] and sum(b.sum() for b in lever.built.values()) == 80


def test_policy_cost_is_the_booked_spending() -> None:
    lever = renewal(dwellings_per_year=6000, construction_years=4, amenity_gain=0.1,
                    reference_families=REF, cost_per_dwelling_eur=1000.0,
                    amenity_cost_eur=600_000.0)
    m = run([lever]).recorder.metrics_frame()
    n_d = len(lever.target_districts)
    per_year = 40 * 1000.0 + 600_000.0 * SCALE * n_d
    assert np.allclose(m["policy_cost_eur"], [0] + [per_year] * 4 + [0] * (YEARS - 4))
    assert m["policy_cost_eur"].tolist() == [lever.spent.get(y, 0.0) for y in range(YEARS + 1)]


def test_spec_rebuilds_the_lever_and_scenario_file_loads() -> None:
    lever = renewal(districts=[0, 3], tenure_mix=[0.1, 0.4, 0.5])
    (again,) = build_levers([lever.spec()])
    assert repr(again) == repr(lever)
    cfg = load_config(["scenario=urban_renewal"])
    (ur,) = build_levers(cfg.scenario.levers)
    assert ur.districts == "renewal" and ur.amenity_gain > 0
    assert ur.tenure_mix[0] < cfg.city.renewal_social_share  # less social rental than now


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(("key", "value"), [
    ("districts", "north"), ("districts", []), ("districts", [-1]), ("districts", ["2"]),
    ("districts", [True]), ("dwellings_per_year", -10), ("construction_years", 0),
    ("construction_years", 2.5), ("tenure_mix", [0.5, 0.5]), ("tenure_mix", [0.5, 0.6, 0.1]),
    ("tenure_mix", [-0.1, 0.6, 0.5]), ("tenure_mix", "mixed"), ("amenity_gain", -0.1),
    ("price_gain", -1.0), ("cost_per_dwelling_eur", -1.0), ("amenity_cost_eur", -5),
    ("reference_families", 0), ("end_year", 0),
])
def test_bad_argument_gives_one_clear_error(key: str, value) -> None:
    with pytest.raises(ValueError, match=rf"lever urban_renewal: {key}="):
        renewal(**{key: value})


def test_unknown_district_fails_at_model_construction() -> None:
    with pytest.raises(ValueError, match=r"lever urban_renewal: districts=6 .*0\.\.5"):
        SegregationModel(tiny_config(), levers=[renewal(districts=[1, 6])])
