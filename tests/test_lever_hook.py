"""The levers hook: called once a year after reputation, and common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_tiny, tiny_config
from scenarios.base import Lever
from sim.model import SegregationModel
from sim.phases.population import new_families


class Recorder(Lever):
    """Records when it is called; changes nothing."""

    def __init__(self, start_year: int = 1) -> None:
        super().__init__(start_year)
        self.calls: list[tuple[str, int]] = []

    def init(self, model: SegregationModel) -> None:
        self.calls.append(("init", model.year))

    def act(self, model: SegregationModel) -> None:
        self.calls.append(("apply", model.year))

    def finalize(self, model: SegregationModel) -> None:
        self.calls.append(("finalize", model.year))


class ExtraResources(Lever):
    """Test lever: doubles every school's per-pupil resources."""

    def act(self, model: SegregationModel) -> None:
        model.schools.resources[:] = 2.0


def metrics(levers: list[Lever]):
    return run_tiny(levers).recorder.metrics_frame()


def test_hook_order_and_calls() -> None:
    lever = Recorder(start_year=3)
    model = SegregationModel(tiny_config("years=4"), levers=[lever])
    model.run()
    assert lever.calls == [("init", 0), ("apply", 3), ("apply", 4), ("finalize", 4)]
    assert "Recorder(start_year=3" in repr(lever)


def test_lever_starting_in_year_k_leaves_earlier_years_identical() -> None:
    base = metrics([])
    noop = metrics([Recorder()])
    assert base.equals(noop)  # a lever that does nothing changes nothing
    late = metrics([ExtraResources(start_year=4)])
    assert base.iloc[:4].equals(late.iloc[:4])  # years 0-3 bit-identical
    assert not np.allclose(base["outcome_gap_decile"].iloc[5:], late["outcome_gap_decile"].iloc[5:])


@pytest.mark.parametrize(("start", "end"), [(0, None), (3, 2)])
def test_bad_lever_years(start: int, end: int | None) -> None:
    with pytest.raises(ValueError, match="year"):
        Lever(start, end)


def test_new_families_do_not_depend_on_how_many_arrive() -> None:
    # Common random numbers: the k-th arriving family is the same family whether 5 or 9
    # arrive (e.g. because a lever changed how many left the city).
    a, b = (SegregationModel(tiny_config("seed=4")) for _ in range(2))
    sa, ka = new_families(a, 5, "arrivals", 0.3, 7, 0.5)
    sb, kb = new_families(b, 9, "arrivals", 0.3, 7, 0.5)
    for attr in ("ses", "lang", "info", "low_edu", "unemployed", "parent_age"):
        np.testing.assert_array_equal(getattr(a.families, attr)[sa],
                                      getattr(b.families, attr)[sb[:5]])
    np.testing.assert_array_equal(ka, kb[:5])
    kids_a = [np.sort(a.children.age[a.children.family == s]) for s in sa]
    kids_b = [np.sort(b.children.age[b.children.family == s]) for s in sb[:5]]
    for x, y in zip(kids_a, kids_b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_school_choice_shocks_do_not_depend_on_who_else_applies() -> None:
    from sim.rng import counter_uniform

    full = counter_uniform(123, np.arange(50), np.arange(8))
    part = counter_uniform(123, np.array([7, 3, 41]), np.array([6, 1]))
    np.testing.assert_array_equal(part, full[np.ix_([7, 3, 41], [6, 1])])
    assert 0 < full.min() and full.max() < 1 and abs(full.mean() - 0.5) < 0.1
