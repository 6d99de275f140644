"""The fit: parameter recovery on a tiny city, resumable studies, the fitted config."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from calibration import fit
from calibration.moments import Moment, load_targets
from conftest import TINY
from sim.config import as_dict

OVERRIDES = [o for o in TINY if not o.startswith("years")] + ["city.n_families=600"]
# Two parameters with a moment each that they move strongly and apart: the first-time
# parents' foreign share sets the young children's, the moving logit the move rate.
TRUE = {"behaviour.demography.first_birth_foreign_share": 0.3,
        "behaviour.mobility.base_logit": -2.4}
PARAMS = [fit.Parameter("behaviour.demography.first_birth_foreign_share", 0.05, 0.6),
          fit.Parameter("behaviour.mobility.base_logit", -3.5, -1.5)]
SEEDS = [1, 2]


def moments_like(names: dict[str, float], years: tuple[int, int] = (1, 6)) -> list[Moment]:
    shipped = {m.name: m for m in load_targets(preset="small")}
    return [Moment(**{**shipped[n].__dict__, "years": years, "sd": sd}) for n, sd in
            names.items()]


def move_rate(years: tuple[int, int] = (1, 6)) -> Moment:
    """A point moment on the yearly move rate (a metric the shipped targets do not fit)."""
    return Moment(name="move_rate", kind="point", observed=0.1, sd=0.005, rationale="test",
                  source="test", statistic="metric_mean", args={"metric": "move_rate"},
                  years=years, presets=("small",))


def observed_at(moments: list[Moment], theta: dict[str, float],
                seeds: list[int] = SEEDS) -> list[Moment]:
    sims = fit.evaluate(theta, seeds, "small", moments, OVERRIDES)
    return [Moment(**{**m.__dict__, "kind": "point", "observed": float(sims[m.name].mean())})
            for m in moments]


def test_parameter_recovery_on_a_tiny_city(tmp_path) -> None:
    moments = observed_at(moments_like({"foreign_share_age1_6": 0.004}) + [move_rate()], TRUE)
    problem = fit.Problem("small", PARAMS, moments, [m.name for m in moments], SEEDS,
                          OVERRIDES)
    start = {p.key: p.low + 0.8 * (p.high - p.low) for p in PARAMS}  # far from the truth
    study = fit.run_study(problem, tmp_path / "study.db", "recovery", n_trials=30,
                          start=start, sampler_seed=3)
    best = study.best_params
    for p in PARAMS:  # within 15% of the interval (about the loss profile's width here)
        assert abs(best[p.key] - TRUE[p.key]) <= 0.15 * (p.high - p.low), (p.key, best)
    assert study.best_value < 4.0  # two moments, each within about 1.4 sd of its target


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("storage", ["study.db", "study.log"])
def test_interrupted_study_resumes_without_repeating_trials(tmp_path, monkeypatch,
                                                            storage) -> None:
    moments = moments_like({"local_share_g1": 0.02}, years=(1, 2))
    problem = fit.Problem("small", PARAMS, moments, [m.name for m in moments], [1],
                          OVERRIDES)
    calls: list[dict] = []
    real = fit.evaluate

    def counting(params, *args, **kwargs) -> pd.DataFrame:
        if len(calls) == 3 and kill:
            raise Interrupt  # the process dies during its fourth trial
        calls.append(dict(params))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(fit, "evaluate", counting)
    kill = True
    with pytest.raises(Interrupt):
        fit.run_study(problem, tmp_path / storage, "resume", n_trials=5)
    first = fit.trials_frame(fit.optuna.load_study(study_name="resume",
                                                   storage=fit.storage_for(tmp_path / storage)))
    assert len(first) == 3
    kill = False
    study = fit.run_study(problem, tmp_path / storage, "resume", n_trials=5)
    done = fit.trials_frame(study)
    assert len(done) == 5 and len(calls) == 5  # two new evaluations, none repeated
    pd.testing.assert_frame_equal(done.iloc[:3].reset_index(drop=True), first)


def test_one_short_line_per_trial_and_the_full_record_in_the_file(tmp_path, monkeypatch,
                                                                  caplog) -> None:
    moments = moments_like({"local_share_g1": 0.02})
    problem = fit.Problem("small", PARAMS, moments, [m.name for m in moments], [1], OVERRIDES)
    monkeypatch.setattr(fit, "evaluate", lambda params, seeds, *args: pd.DataFrame(
        {m.name: [0.5] for m in moments}))
    with caplog.at_level("INFO"):
        fit.run_study(problem, tmp_path / "s.db", "log", n_trials=3,
                      trial_log=tmp_path / "trials.log")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    assert len(lines) == 3 and all(len(line) < 80 for line in lines), lines
    assert lines[0].startswith("trial 0: loss ") and "best" in lines[0]
    assert not [r for r in caplog.records if r.name.startswith("optuna")]  # no long lines
    records = [json.loads(x) for x in (tmp_path / "trials.log").read_text().splitlines()]
    assert [r["trial"] for r in records] == [0, 1, 2]
    assert set(records[0]["params"]) == {p.key for p in PARAMS}
    assert records[0]["state"] == "COMPLETE" and "sims" in records[0]


def test_fitted_parameters_become_a_behaviour_option() -> None:
    base = fit.base_config("small", OVERRIDES, 2)
    params = {"behaviour.school.local_bonus": 0.7, "behaviour.school.look_prob.1": 0.3}
    text = fit.behaviour_yaml(base, params, "# test\n")
    assert text.startswith("# @package behaviour\n")
    doc = yaml.safe_load(text)
    assert doc["school"]["local_bonus"] == 0.7
    assert doc["school"]["look_prob"] == [0.15, 0.3, 0.55]  # a list is written whole
    merged = OmegaConf.merge(OmegaConf.create(as_dict(base)), {"behaviour": doc})
    assert merged.behaviour.school.look_prob[1] == 0.3


def test_loss_and_fit_table_on_known_numbers() -> None:
    (m,) = moments_like({"local_share_g1": 0.02})
    sims = pd.DataFrame({m.name: [0.89, 0.91]})
    z = fit.standardised([m], sims)[m.name]
    assert z == pytest.approx(0.05 / (0.02**2 + 0.0002 / 2) ** 0.5)
    assert fit.loss([m], sims) == pytest.approx(z**2)
    table = fit.fit_table([m], sims, [])
    assert table.loc[0, "role"] == "held out" and not table.loc[0, "met"]
