"""Demography: first births, returns, and the cohort accounts against tracked children.

A child is followed by its identity, (child slot, birth year): a slot is reused only after
it is freed, and a born-here child cannot leave in its birth year (out-migration comes
before births), so no two born-here children share an identity. The tracked events are
counted from one snapshot of the pools per year and must equal the ``ages`` table that
the moments are computed from, age by age and year by year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.moments import (
    Outputs,
    childhood_leaving,
    first_move_share,
    return_age_ratio,
    return_share,
)
from conftest import tiny_config
from sim.model import SegregationModel
from sim.phases import returns
from sim.units import ENTRY_AGE

YEARS = 14


def snapshot(model: SegregationModel) -> pd.DataFrame:
    """Every child slot in the city or away: identity, place and cohort flags."""
    ch = model.children
    slots = np.flatnonzero(ch.active | ch.away)
    return pd.DataFrame({
        "slot": slots, "birth": model.year - ch.age[slots], "age": ch.age[slots],
        "active": ch.active[slots], "away": ch.away[slots], "born_here": ch.born_here[slots],
        "left": ch.left[slots], "moved": ch.moved[slots], "family": ch.family[slots],
    }).set_index(["slot", "birth"])


def tracked_accounts(snaps: dict[int, pd.DataFrame], year: int) -> pd.DataFrame:
    """The cohort accounts of ``year`` from the snapshots at the end of years ``year-1`` and
    ``year``: born-here children at risk of a first leaving, first leavers, returners and
    first moves, by age in ``year``."""
    before, after = snaps[year - 1], snaps[year]
    here_before = before[before.active & before.born_here]
    risk = here_before[~here_before.left & (here_before.age + 1 <= 15)]
    status = after.reindex(risk.index)  # the same child a year later (NaN: gone)
    leavers = risk[~status.active.fillna(False).astype(bool)]
    away_before = before[before.away & before.born_here]
    back = away_before[after.reindex(away_before.index).active.fillna(False).astype(bool)]
    now = after[after.active & after.born_here & after.moved]
    first = now[~before.reindex(now.index).moved.fillna(False).astype(bool)]
    ages = np.arange(16)
    return pd.DataFrame({
        "born_here": np.bincount(risk.age + 1, minlength=16)[ages],
        "left_born_here": np.bincount(leavers.age + 1, minlength=16)[ages],
        "returned_born_here": np.bincount(back.age + 1, minlength=16)[ages],
        "first_moves": np.bincount(first.age, minlength=16)[ages],
    }, index=pd.Index(ages, name="age"))


@pytest.fixture(scope="module")
def tracked() -> tuple[SegregationModel, dict[int, pd.DataFrame]]:
    """A small city run year by year with a snapshot of its children after each year."""
    cfg = tiny_config("city.n_families=900", "city.width=24", "city.height=20", "seed=5",
                      f"years={YEARS}", "behaviour.demography.return_logit=-1.5",
                      "behaviour.demography.first_birth_rate=0.06")
    model = SegregationModel(cfg)
    snaps = {0: snapshot(model)}
    for _ in range(YEARS):
        model.step()
        snaps[model.year] = snapshot(model)
    return model, snaps


def test_ages_table_counts_the_tracked_children(tracked) -> None:
    model, snaps = tracked
    table = Outputs.from_model(model).ages.set_index(["year", "age"])
    cols = ["born_here", "left_born_here", "returned_born_here", "first_moves"]
    total = pd.Series(0, index=cols)
    for year in range(1, YEARS + 1):
        want = tracked_accounts(snaps, year)
        got = table.loc[year, cols]
        pd.testing.assert_frame_equal(got, want[cols], check_dtype=False, obj=f"year {year}")
        total += want[cols].sum()
    # Each account saw real children, so the comparison is not of empty tables.
    assert (total > 20).all(), total


def test_moment_functions_match_tracked_children(tracked) -> None:
    model, snaps = tracked
    out = Outputs.from_model(model)
    years = (2, YEARS)
    acc = sum(tracked_accounts(snaps, y) for y in range(years[0], years[1] + 1))
    q = acc.left_born_here / acc.born_here.clip(lower=1)
    assert childhood_leaving(out, years) == pytest.approx(1 - np.prod(1 - q))
    assert return_share(out, years) == pytest.approx(
        acc.returned_born_here.sum() / acc.left_born_here.sum())
    fm = acc.first_moves
    assert first_move_share(out, years, 1, 1) == pytest.approx(fm[1] / fm.sum())
    assert first_move_share(out, years, 0, 6) == pytest.approx(fm[:7].sum() / fm.sum())
    r = acc.returned_born_here.loc[1:15]
    assert return_age_ratio(out, years, 5, 6) == pytest.approx(
        r.loc[5:6].mean() / r.drop([5, 6]).mean())


def test_returners_are_the_same_children(tracked) -> None:
    """A child that leaves and comes back keeps its slot, birth year, flags and family."""
    model, snaps = tracked
    n_back = 0
    for year in range(1, YEARS + 1):
        before, after = snaps[year - 1], snaps[year]
        away = before[before.away]
        again = after.reindex(away.index)
        back = again[again.active.fillna(False).astype(bool)]
        n_back += len(back)
        assert back.left.all() and (back.family == away.loc[back.index, "family"]).all()
        assert (back.born_here == away.loc[back.index, "born_here"]).all()
    assert n_back > 20


def test_first_births_form_families_with_a_newborn(tracked) -> None:
    model, _ = tracked
    met = Outputs.from_model(model).metrics.set_index("year").loc[1:]
    assert (met.first_births > 0).all()
    assert (met.births >= met.first_births).all()
    assert met.born_here_share_age0_6.iloc[-1] > 0.5  # most young children born here


def test_return_years_follow_the_hazard() -> None:
    """The drawn return years: none without a child under 16, more at ages 5-6 when raised,
    and the return probability of a family that leaves with a newborn."""
    cfg = tiny_config("seed=3", "behaviour.demography.return_logit=-2.5",
                      "behaviour.demography.return_school_start=2.0")
    model = SegregationModel(cfg)
    ch, f = model.children, model.families
    leave = np.flatnonzero(f.active)
    when = returns.return_years(model, leave)
    ahead = when - model.year
    ages = {s: ch.age[model.children_of(np.array([s]))] for s in leave}
    for s, k in zip(leave, ahead, strict=True):
        if k > 0:
            assert (ages[s] + k <= 15).any(), "a return after every child turned 16"
    # With a raised school-start hazard, returns pile up where a child is 5-6.
    at_school = [k > 0 and ((ages[s] + k >= 5) & (ages[s] + k <= 6)).any()
                 for s, k in zip(leave, ahead, strict=True)]
    assert np.mean(at_school) > 0.1
    assert ENTRY_AGE[0] == 7  # the school-start band sits just before grade 1


def test_leavers_come_back_in_the_burn_in_too() -> None:
    """Burn-in years are negative: a return year before 0 is a year, not "no return"."""
    model = SegregationModel(tiny_config("years=2", "behaviour.demography.return_logit=-1.0"))
    model.year = -14  # as in a burn-in (its years are negative)
    back = 0
    for _ in range(12):
        model._advance(model.phases[:-1])  # the year without recording it, as BURN_IN
        back += model.recorder.flows["returns"]
    assert back > 0
    assert (model.families.return_year[model.families.away] > model.year).all()
