"""Stylized facts the model must reproduce, on the small city with several seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.config import load_config
from sim.indices import theil_h
from sim.metrics import counts
from sim.model import SegregationModel

SEEDS = (1, 2, 3)

# Pure Schelling: only neighbourhood status composition matters (no schools, prices, tenure).
SCHELLING = [
    "behaviour.school.enabled=false",
    "behaviour.preferences.w_school=[0,0,0]",
    "behaviour.preferences.w_afford=0",
    "behaviour.preferences.tenure_taste=[[0.0,0.0,0.0],[0.0,0.0,0.0],[0.0,0.0,0.0]]",
    "behaviour.preferences.social_max_ses=2",
    "behaviour.preferences.w_amenity=[0,0,0]",
    "behaviour.preferences.w_comp_lang=[0,0]",
    "behaviour.preferences.w_distance=0",
    "behaviour.demography.outmig_dissatisfaction=0",
    "behaviour.mobility.base_logit=-1",
]


def run(seed: int, *overrides: str, years: int = 15) -> tuple[SegregationModel, pd.DataFrame]:
    cfg = load_config([f"seed={seed}", f"years={years}", "output.progress=false",
                       "start=fresh", "behaviour=default", *overrides])
    model = SegregationModel(cfg)
    model.run()
    return model, model.recorder.metrics_frame()


def random_baseline_h(model: SegregationModel, n_perm: int = 20) -> float:
    """Expected cell-level status H if the same families were placed at random in the same
    occupied dwellings (status labels permuted across families; children follow). Cells hold
    few families, so this baseline is well above 0: the small-unit bias of H."""
    f, ch, c = model.families, model.children, model.city
    slots = np.flatnonzero(f.active)
    rng = np.random.default_rng(0)
    kids = np.bincount(ch.family[ch.active], minlength=f.capacity)[slots]
    cell = f.cell[slots]
    hs = []
    for _ in range(n_perm):
        ses = rng.permutation(f.ses[slots])
        cnt = counts(np.repeat(cell, kids), np.repeat(ses, kids), c.n_cells, 3)
        hs.append(theil_h(cnt))
    return float(np.mean(hs))


@pytest.mark.parametrize("seed", SEEDS)
def test_schelling_sorting_rises_above_random_baseline(seed: int) -> None:
    model, df = run(seed, *SCHELLING, "behaviour.preferences.w_comp_ses=[2,2,2]")
    baseline = random_baseline_h(model)
    final = df["seg_cell_ses_H"].iloc[-3:].mean()
    assert final > baseline + 0.05, (final, baseline)
    # Control: the same city without composition preferences stays at the baseline.
    model0, df0 = run(seed, *SCHELLING, "behaviour.preferences.w_comp_ses=[0,0,0]")
    control = df0["seg_cell_ses_H"].iloc[-3:].mean()
    assert control < random_baseline_h(model0) + 0.02, control
    assert final > control + 0.05, (final, control)
    assert df["seg_res_ses_H"].iloc[-1] > df0["seg_res_ses_H"].iloc[-1]


def test_school_choice_gives_excess_school_segregation() -> None:
    on = [run(s, years=20)[1]["excess_school_ses_H"].iloc[8:].mean() for s in SEEDS]
    off = [run(s, "behaviour.school.enabled=false", years=20)[1]["excess_school_ses_H"]
           .iloc[8:].mean() for s in SEEDS]
    assert np.mean(on) > 0.01, on
    # Without choice pupils mirror their catchments, up to movers who keep their school.
    assert all(a > b + 0.01 for a, b in zip(on, off, strict=True)), (on, off)


def test_reputation_feedback_amplifies_segregation() -> None:
    def growth(df: pd.DataFrame, col: str) -> float:
        return df[col].iloc[-5:].mean() - df[col].iloc[0]

    on = [run(s, years=20)[1] for s in SEEDS]
    off = [run(s, "behaviour.reputation.feedback=false", years=20)[1] for s in SEEDS]
    for col in ("seg_res_ses_H", "seg_school_ses_H"):
        g_on = np.mean([growth(d, col) for d in on])
        g_off = np.mean([growth(d, col) for d in off])
        assert g_on > g_off + 0.01, (col, g_on, g_off)
    # Year 0 is the same world: switching the feedback off changes nothing before it acts.
    assert on[0].iloc[0].equals(off[0].iloc[0])


def test_grade7_pupils_who_weigh_distance_less_leave_their_catchment_more() -> None:
    def g7_local(*overrides: str) -> float:
        return float(np.mean([run(s, *overrides, years=8)[1]["local_school_share_g7"]
                              .iloc[1:].mean() for s in SEEDS[:2]]))

    near = g7_local()
    far = g7_local("behaviour.school.g7_distance_factor=0.2")
    assert far < near - 0.02, (far, near)
