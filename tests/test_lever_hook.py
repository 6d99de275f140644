"""The levers hook: called once a year after reputation, and common random numbers."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_tiny, tiny_config
from scenarios.base import Lever
from sim.model import SegregationModel


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
