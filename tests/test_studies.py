"""Studies replicated in the model: the grade-9 transitions, Silliman's design and estimator.

* the transition phase books what a plain-Python reference of its rule books;
* the difference-in-differences estimator equals the OLS coefficient of treated x post in a
  pupil-level linear probability model (the study's specification without covariates);
* a design run starts from the plain run's settled state and differs from it only from the
  lever's first year; the plain run's moments do not depend on the designs computed beside;
* every error of a design or a study argument has its one-line message.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from calibration import fit, studies
from calibration.moments import Moment, TargetsError, load_targets
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


# The joint recovery (issue #16): a city of 6,000 families, six upper schools, six years.
RECOVERY_CITY = [o for o in SETTLED if not o.startswith(
    ("years", "behaviour", "city.n_families", "city.width", "city.height", "city.n_upper",
     "city.n_lower"))] + ["city.n_families=6000", "city.width=30", "city.height=24",
                          "city.n_upper_schools=6", "city.n_lower_schools=8"]
RECOVERY_MOMENTS = ("silliman_dropout_native", "silliman_dropout_foreign",
                    "silliman_general_foreign", "grade9_dropout_share", "learning_gap_deciles",
                    "local_share_g1")
# The shipped fit (conf/behaviour/calibrated_small.yaml: resource and peer effects and the
# dropout logit at their schema defaults) and a truth away from it; the intervals are those
# of calibration/parameters.yaml.
SHIPPED = {"behaviour.outcomes.resource_effect": 0.5, "behaviour.outcomes.peer_effect": 1.0,
           "behaviour.transitions.dropout_logit": -3.9}
TRUTH = {"behaviour.outcomes.resource_effect": 25.0, "behaviour.outcomes.peer_effect": 2.0,
         "behaviour.transitions.dropout_logit": -3.0}
RECOVERY_PARAMS = [fit.Parameter("behaviour.outcomes.resource_effect", 0.0, 40.0),
                   fit.Parameter("behaviour.outcomes.peer_effect", 0.0, 3.0),
                   fit.Parameter("behaviour.transitions.dropout_logit", -5.5, -2.5)]


def recovery_moments(budget_factor: float = 8.0, start: int = 2,
                     years: int = 6) -> list[Moment]:
    """The shipped moments of the joint recovery, on ``years`` years and a design from ``start``.

    Silliman's design (``silliman_pd``) starts in year ``start`` with ``budget_factor`` times
    the study's budget: on a city this small the published budget moves the difference in
    differences too little for the moments to pin ``resource_effect``.
    """
    shipped = {m.name: m for m in load_targets(preset="small")}
    out = []
    for name in RECOVERY_MOMENTS:
        m = shipped[name]
        if m.design is not None:
            levers = tuple({**lv, "start_year": start,
                            "budget_eur": lv["budget_eur"] * budget_factor}
                           for lv in m.design.levers)
            m = dataclasses.replace(m, design=dataclasses.replace(m.design, levers=levers),
                                    args={**m.args, "start": start})
        out.append(dataclasses.replace(m, years=(1, years)))
    return out


def observed_at(moments: list[Moment], sims: pd.DataFrame, spread: float = 2.0) -> list[Moment]:
    """The moments with a simulation's replicate means as targets.

    Each sd is ``spread`` times the replicate standard deviation: wide enough that a
    candidate's own two-seed variance (``fit.standardised`` adds it) does not set its weight.
    """
    return [dataclasses.replace(m, kind="point", observed=float(sims[m.name].mean()),
                                sd=spread * float(sims[m.name].std(ddof=1)))
            for m in moments]


def recover(truth: dict[str, float], path: Path, n_trials: int = 40,
            seeds: tuple[int, ...] = (1, 2)) -> tuple[optuna.Study, float]:
    """Fit the recovery parameters to ``truth``'s own moments; the study and the truth's loss."""
    moments = recovery_moments()
    sims = fit.evaluate(truth, list(seeds), "small", moments, RECOVERY_CITY, build_levers)
    observed = observed_at(moments, sims)
    problem = fit.Problem("small", RECOVERY_PARAMS, observed, [m.name for m in observed],
                          list(seeds), RECOVERY_CITY, build_levers)
    study = fit.run_study(problem, path, "recovery", n_trials=n_trials, start=SHIPPED,
                          sampler_seed=0)
    return study, fit.loss(observed, sims)


def test_a_parameter_set_away_from_the_fit_is_recovered_jointly(tmp_path) -> None:
    """Three parameters set away from the shipped fit are found again by one fit from the prior.

    The truth (``TRUTH``: resource effect 25, peer effect 2, dropout logit -3; the shipped
    fit has 0.5, 1 and -3.9) gives the observed moments: its own simulated moments on the
    same two seeds (common random numbers), Silliman's three differences in differences
    among them, on a 6,000-family city (``RECOVERY_CITY``, ``recovery_moments``). Optuna's
    TPE (sampler seed 0) starts at the shipped fit and searches the intervals of
    ``calibration/parameters.yaml`` for 40 trials. Tolerance: every parameter within 25% of
    its interval of the truth (measured: 19%, 8% and 1%), and the best loss within 4 of the
    truth's (0; measured 2.2).
    """
    study, truth_loss = recover(TRUTH, tmp_path / "study.db")
    best = study.best_params
    for p in RECOVERY_PARAMS:
        assert abs(best[p.key] - TRUTH[p.key]) <= 0.25 * (p.high - p.low), (p.key, best)
    assert study.best_value <= truth_loss + 4.0, (study.best_value, truth_loss)
