"""Bernelius & Vilkama's (2019) catchment flows: the booking and the estimator.

* the children's net moves booked by cell, age band and language equal a plain-Python
  count child by child, and cancel over the city every year;
* the estimator (``bv_net_moves``, ``bv_age_gap``, ``bv_flow_ratio``) gives the values
  computed by hand on a small synthetic areas table;
* a moment with an argument the estimator does not take is refused in one line;
* the replication command covers the new moments.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from calibration import studies
from calibration.moments import TargetsError, check_moment, source_keys
from calibration.registry import Outputs
from conftest import tiny_config
from experiments.replicate import study_moments
from sim.metrics import NET_MOVE_BANDS, NET_MOVE_COLS
from sim.model import SegregationModel


def reference_net_moves(model: SegregationModel, slots: np.ndarray,
                        old_cells: np.ndarray) -> np.ndarray:
    """The rule child by child: +1 at the new cell, -1 at the old, in its band's column."""
    f, ch = model.families, model.children
    out = np.zeros((model.city.n_cells, len(NET_MOVE_COLS)), dtype=np.int64)
    origin = dict(zip(slots.tolist(), old_cells.tolist(), strict=True))
    for k in range(ch.capacity):
        fam = int(ch.family[k])
        if not ch.active[k] or fam not in origin:
            continue
        band = next(b for b, (lo, hi) in enumerate(NET_MOVE_BANDS) if lo <= ch.age[k] <= hi)
        col = NET_MOVE_COLS.index(f"net_moves_age{NET_MOVE_BANDS[band][0]}_"
                                  f"{NET_MOVE_BANDS[band][1]}_lang{f.lang[fam]}")
        out[f.cell[fam], col] += 1
        out[origin[fam], col] -= 1
    return out


def test_booking_matches_reference_and_cancels() -> None:
    model = SegregationModel(tiny_config("seed=5", "years=2"))
    model.run()
    f = model.families
    with_kids = np.unique(model.children.family[model.children.active])
    slots = with_kids[::3]
    old = (f.cell[slots] + 7) % model.city.n_cells  # any other cells will do
    rec = model.recorder
    rec.net_moves[...] = 0
    rec.book_child_moves(slots, old)
    np.testing.assert_array_equal(rec.net_moves, reference_net_moves(model, slots, old))
    areas = Outputs.from_model(model).areas
    sums = areas.groupby(["year", "kind"])[NET_MOVE_COLS].sum()
    assert (sums == 0).all().all()
    assert areas[NET_MOVE_COLS].abs().to_numpy().sum() > 0  # the run's families did move


def synthetic() -> Outputs:
    """Eight catchments; low-status shares in year 0 rank them 0 (lowest status) to 7."""
    rows = []
    for year in range(4):
        for i in range(8):
            low = 8 - i if year == 0 else i  # year 1 reverses the ranking: year 0 counts
            row = {"year": year, "kind": "catchment_lower", "area_id": i,
                   "families_ses0": low, "families_ses1": 10 - low, "families_ses2": 0,
                   "children_lang0": 20, "age7_12_lang0": 8, "age13_15_lang0": 2,
                   "children_lang1": 0, "age7_12_lang1": 0, "age13_15_lang1": 0,
                   **dict.fromkeys(NET_MOVE_COLS, 0)}
            if year == 3:  # outside the sample [1, 2]
                row["net_moves_age0_6_lang0"] = 99
            rows.append(row)
    a = pd.DataFrame(rows)
    net = {  # (year, area): (0-6, 7-12, 13-15) of native children
        (1, 0): (-2, -1, 1), (2, 0): (-1, -1, 0), (1, 1): (-1, 0, 0), (2, 1): (0, 0, 0),
        (1, 6): (1, 0, 0), (2, 6): (0, 0, 0), (1, 7): (1, 0, 0), (2, 7): (0, 0, 0),
        (1, 3): (5, 5, 5)}
    for (year, i), vals in net.items():
        sel = (a["year"] == year) & (a["area_id"] == i)
        for col, v in zip(("net_moves_age0_6_lang0", "net_moves_age7_12_lang0",
                           "net_moves_age13_15_lang0"), vals, strict=True):
            a.loc[sel, col] = v
    district = a.assign(kind="district", net_moves_age0_6_lang0=50)  # not a catchment
    empty = pd.DataFrame()
    return Outputs(empty, empty, pd.concat([a, district], ignore_index=True), empty)


def test_estimator_against_hand_computed_values() -> None:
    out, y = synthetic(), (1, 2)
    assert sorted(studies.catchment_quarter(out, y, "low")) == [0, 1]
    assert sorted(studies.catchment_quarter(out, y, "high")) == [6, 7]
    # Low quarter: 0-6 net -4 over 4 area-years of 10 children; 7-12: -2 over 32;
    # 7-15: -1 over 40. High quarter: 0-6 net +2 over 40.
    assert studies.bv_net_moves(out, y, "0_6", "native", "low") == pytest.approx(-0.1)
    assert studies.bv_net_moves(out, y, "7_12", "native", "low") == pytest.approx(-0.0625)
    assert studies.bv_net_moves(out, y, "7_15", "native", "low") == pytest.approx(-0.025)
    assert studies.bv_net_moves(out, y, "0_6", "native", "high") == pytest.approx(0.05)
    assert studies.bv_age_gap(out, y, "7_12", "native", "low") == pytest.approx(-0.0375)
    assert studies.bv_flow_ratio(out, y, "0_6", "native") == pytest.approx(0.5)
    # No foreign-language child lives there: no rate, and no ratio.
    assert math.isnan(studies.bv_net_moves(out, y, "0_6", "foreign", "low"))
    assert math.isnan(studies.bv_flow_ratio(out, y, "0_6", "foreign"))


MOMENT = {"name": "bv", "kind": "below", "observed": -0.005, "sd": 0.005, "rationale": "r",
          "source": "bv_low_catchments_lose_young_native", "statistic": "bv_net_moves",
          "args": {"ages": "0_6", "group": "native", "quarter": "low"}, "years": [1, 10],
          "presets": ["small", "helsinki"]}


@pytest.mark.parametrize(("arg", "value", "allowed"), [
    ("quarter", "middle", "['low', 'high']"),
    ("ages", "0_15", "['0_6', '7_12', '7_15']"),
    ("group", "swedish", "['native', 'foreign']"),
])
def test_bad_argument_is_refused_in_one_line(arg: str, value: str, allowed: str) -> None:
    entry = {**MOMENT, "args": {**MOMENT["args"], arg: value}}
    with pytest.raises(TargetsError) as exc:
        check_moment(entry, "t", source_keys(), 10)
    assert str(exc.value) == (f"t (bv): {arg}={value!r} is not an argument bv_net_moves "
                              f"takes; expected one of {allowed}")


def test_replication_covers_the_flow_moments() -> None:
    for preset in ("small", "helsinki"):
        names = {m.name for m in study_moments(preset)}
        assert {"bv_young_native_low", "bv_school_native_low", "bv_age_gap_low",
                "bv_high_flows_small", "silliman_dropout_native"} <= names
