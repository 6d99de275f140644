"""Studies replicated in the model: the grade-9 transitions, Silliman's design and estimator.

* the transition phase books what a plain-Python reference of its rule books;
* the difference-in-differences estimator equals the OLS coefficient of treated x post in a
  pupil-level linear probability model (the study's specification without covariates);
* a design run starts from the plain run's settled state and differs from it only from the
  lever's first year; the plain run's moments do not depend on the designs computed beside;
* every error of a design or a study argument has its one-line message.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from calibration import fit, studies
from calibration.moments import TargetsError, load_targets
from calibration.registry import Outputs
from conftest import TINY, tiny_config
from scenarios import build_levers
from sim.model import SegregationModel
from sim.rng import counter_uniform

SETTLED = [o for o in TINY if o not in ("start=fresh", "city.n_upper_schools=2")] + [
    "start=settled", "burn_in_years=8", "city.n_upper_schools=4"]
DESIGN = {"description": "old funding from year 2", "source": "pd_effect_dropout_native_pp",
          "levers": [{"lever": "tp_funding", "variant": "area_based", "budget_eur": 2.5e6,
                      "threshold": 0.1, "start_year": 2}]}
MOMENT = {"name": "did", "observed": -0.03, "sd": 0.015, "rationale": "published",
          "source": "pd_effect_dropout_native_pp", "statistic": "silliman_did",
          "args": {"outcome": "dropout", "group": "native", "start": 2},
          "design": "pd", "years": [1, 4], "presets": ["small", "helsinki"]}
PLAIN = {"name": "drop", "observed": 0.08, "sd": 0.015, "rationale": "register",
         "source": "grade9_continuing_share", "statistic": "metric_mean",
         "args": {"metric": "g9_dropout_share"}, "years": [1, 4],
         "presets": ["small", "helsinki"]}


def write(tmp_path: Path, designs: object, *moments: dict) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"designs": designs, "moments": list(moments)}),
                    encoding="utf-8")
    return path


def reference_transitions(model: SegregationModel) -> np.ndarray:
    """The rule pupil by pupil: the booked matrix (schools x G9 columns) of this year."""
    t = model.cfg.behaviour.transitions
    ch, f = model.children, model.families
    out = np.zeros_like(model.recorder.g9)
    key = model.streams.key("transitions", model.year)
    for k in range(ch.capacity):
        s = int(ch.school[k])
        if not ch.active[k] or s < 0 or model.schools.level[s] != 1 or ch.age[k] != 15:
            continue
        fam = int(ch.family[k])
        ses, lang, ach = int(f.ses[fam]), int(f.lang[fam]), float(ch.outcome[k])
        p_drop = 1 / (1 + math.exp(-(t.dropout_logit + t.dropout_foreign * lang
                                     + t.dropout_achievement * ach + t.dropout_ses[ses])))
        p_gen = 1 / (1 + math.exp(-(t.general_logit + t.general_foreign * lang
                                    + t.general_achievement * ach + t.general_ses[ses])))
        u = counter_uniform(key, np.array([k]), np.arange(2))[0]
        drop = u[0] < p_drop
        out[s, lang] += 1
        out[s, 2 + lang] += drop
        out[s, 4 + lang] += (not drop) and u[1] < p_gen
    return out


def test_transitions_agree_with_the_reference() -> None:
    model = SegregationModel(tiny_config("years=2"))
    model.run()
    booked = model.recorder.g9.copy()
    assert booked[:, :2].sum() > 20  # leavers of both years' tiny cohorts
    np.testing.assert_array_equal(booked, reference_transitions(model))
    units = model.recorder.units_frame()
    last = units[(units["year"] == 2) & units["kind"].str.startswith("school")]
    np.testing.assert_array_equal(last["g9_leavers_lang0"], booked[:, 0])
    m = model.recorder.metrics_frame().iloc[-1]
    assert m["g9_dropout_share"] == pytest.approx(booked[:, 2:4].sum() / booked[:, :2].sum())


def test_did_equals_the_ols_interaction_coefficient() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for year in range(1, 9):
        for school in range(6):
            n = rng.integers(20, 60, size=2)
            drop = rng.binomial(n, 0.1 + 0.02 * school - 0.03 * (school < 3) * (year > 4))
            rows.append({"year": year, "kind": "school_upper", "index": school,
                         "funding_eur": 1e5 * (school < 3) * (year >= 4),
                         "g9_leavers_lang0": n[0], "g9_leavers_lang1": n[1],
                         "g9_dropout_lang0": drop[0], "g9_dropout_lang1": drop[1],
                         "g9_general_lang0": 0, "g9_general_lang1": 0})
    units = pd.DataFrame(rows)
    out = Outputs(pd.DataFrame(), units, pd.DataFrame(), pd.DataFrame())
    did = studies.silliman_did(out, (1, 8), "dropout", "native", 4)
    # Pupil-level OLS: y = a + b treated + c post + d treated x post.
    y, x = [], []
    for r in rows:
        treated, post = float(r["index"] < 3), float(r["year"] > 4)
        for drop in (1.0, 0.0):
            k = r["g9_dropout_lang0"] if drop else r["g9_leavers_lang0"] - r["g9_dropout_lang0"]
            y += [drop] * int(k)
            x += [[1.0, treated, post, treated * post]] * int(k)
    coef = np.linalg.lstsq(np.array(x), np.array(y), rcond=None)[0]
    assert did == pytest.approx(coef[3], abs=1e-12)


def test_design_runs_share_the_settled_state_and_leave_the_plain_run_alone() -> None:
    cfg = tiny_config(*SETTLED, "years=4")
    designs = {"pd": studies.check_designs({"pd": DESIGN}, "t", {DESIGN["source"]})["pd"]}
    outs, resettled = studies.simulate(cfg, designs, build_levers)
    assert resettled == 0  # cold
    plain = SegregationModel(cfg)
    plain.run()
    pd.testing.assert_frame_equal(outs[None].metrics, plain.recorder.metrics_frame())
    m_plain, m_design = outs[None].metrics, outs["pd"].metrics
    early = ["seg_school_ses_H", "g9_dropout_share", "n_families"]
    pd.testing.assert_frame_equal(m_plain[m_plain.year < 2][early],
                                  m_design[m_design.year < 2][early])
    funded = outs["pd"].units.query("year == 2 and kind == 'school_upper'")["funding_eur"]
    assert (funded > 0).any()
    assert outs[None].units["funding_eur"].max() == 0


def test_study_moments_through_evaluate(tmp_path) -> None:
    path = write(tmp_path, {"pd": DESIGN}, MOMENT, PLAIN)
    moments = load_targets(path, horizon=4)
    overrides = [o for o in SETTLED if not o.startswith("years")]
    sims = fit.evaluate({}, [1, 2], "small", moments, overrides, build_levers)
    assert np.isfinite(sims["did"]).all() and (sims["did"].abs() < 0.5).all()
    alone = fit.evaluate({}, [1, 2], "small", [moments[1]], overrides)
    pd.testing.assert_series_equal(alone["drop"], sims["drop"])
    with pytest.raises(ValueError, match="pass build_levers"):
        fit.evaluate({}, [1], "small", moments, overrides)


@pytest.mark.parametrize(("designs", "change", "message"), [
    ({"pd": DESIGN}, {"design": "other"}, "design='other' is not a design of the file"),
    ({}, {}, "design='pd' is not a design of the file; known: none"),
    ({"pd": DESIGN}, {"args": {**MOMENT["args"], "group": "boys"}},
     "group='boys' is not an argument silliman_did takes"),
    ({"pd": DESIGN}, {"args": {**MOMENT["args"], "outcome": "grades"}},
     "outcome='grades' is not an argument silliman_did takes"),
    ({"pd": {**DESIGN, "colour": 1}}, {}, "design pd: expected the fields"),
    ({"pd": {**DESIGN, "levers": []}}, {}, "levers must be a non-empty list of lever specs"),
    ({"pd": {**DESIGN, "source": "nowhere"}}, {}, "source='nowhere' is not a key"),
    ([1], {}, "designs must be a mapping"),
])
def test_each_design_error_has_one_message(tmp_path, designs, change, message) -> None:
    with pytest.raises(TargetsError, match=message):
        load_targets(write(tmp_path, designs, {**MOMENT, **change}))


def test_a_bad_design_lever_is_refused_before_any_run() -> None:
    bad = studies.Design("pd", "x", ({"lever": "tp_funding", "budget_eur": -1},), "s")
    with pytest.raises(ValueError, match="design pd.*budget_eur=-1"):
        studies.check_levers({"pd": bad}, build_levers)


def test_a_study_moment_recovers_its_parameter_on_a_small_city(tmp_path) -> None:
    """Parameters set away from the fit are recovered from their own simulated moments.

    The truth is the city's with ``resource_effect`` = 24 (the shipped fit has 0.5) and a
    dropout logit of -3; the observed values are the truth's moments on the same seeds
    (common random numbers), and the loss profile along each parameter (the others at the
    truth) must be lowest within one grid step (a quarter of the interval) of the truth.
    """
    path = write(tmp_path, {"pd": DESIGN}, {**MOMENT, "years": [1, 6]},
                 {**PLAIN, "years": [1, 6]})
    moments = load_targets(path, horizon=6)
    overrides = [o for o in SETTLED if not o.startswith(("years", "city.n_families"))] + [
        "city.n_families=1500"]
    truth = {"behaviour.outcomes.resource_effect": 24.0,
             "behaviour.transitions.dropout_logit": -3.0}
    params = [fit.Parameter("behaviour.outcomes.resource_effect", 0.0, 48.0),
              fit.Parameter("behaviour.transitions.dropout_logit", -5.0, -1.0)]
    seeds = [1, 2, 3]
    sims = fit.evaluate(truth, seeds, "small", moments, overrides, build_levers)
    observed = [type(m)(**{**m.__dict__, "kind": "point", "observed": float(sims[m.name].mean())})
                for m in moments]
    problem = fit.Problem("small", params, observed, [m.name for m in observed], seeds,
                          overrides, build_levers)
    prof = fit.profile(problem, truth, points=5)
    for p in params:
        rows = prof[prof["parameter"] == p.key]
        best = float(rows.loc[rows["loss"].idxmin(), "value"])
        assert abs(best - truth[p.key]) <= 0.25 * (p.high - p.low), (p.key, rows)
