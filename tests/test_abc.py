"""ABC-SMC (calibration/abc.py, ``method=abc``): a posterior that concentrates on a tiny
city, the same posterior for the same command (also after a kill and a resume), the
command's outputs, and the one-line message without the optional extra."""

from __future__ import annotations

import sys
from functools import partial

import pandas as pd
import pytest

import calibration
from calibration import abc, fit
from calibration.moments import Moment
from experiments import calibrate, tasks
from sim.evaluation import EvaluationConfig
from test_calibration import OVERRIDES, observed_at

# The yearly move rate answers the mobility logit smoothly and strongly even in one year
# of one seed (0.05 to 0.23 over the interval), which keeps the runs short.
MOVES = Moment(name="move_rate", kind="point", observed=0.1, sd=0.01, rationale="test",
               source="test", statistic="metric_mean", args={"metric": "move_rate"},
               years=(1, 1), presets=("small",))
LOGIT = fit.Parameter("behaviour.mobility.base_logit", -3.5, -1.5)
TRUE = {LOGIT.key: -2.6}
SEEDS = [1]


@pytest.fixture(scope="module")
def targets() -> list[Moment]:
    return observed_at([MOVES], TRUE, SEEDS)


def test_posterior_concentrates_on_the_truth(tmp_path, targets) -> None:
    problem = fit.Problem("small", [LOGIT], targets, [MOVES.name], SEEDS, OVERRIDES)
    history = abc.run(problem, tmp_path / "abc.db",
                      abc.Settings(population=8, generations=2, seed=3))
    (s,) = abc.summary(abc.posterior(history), [LOGIT]).itertuples()
    width = LOGIT.high - LOGIT.low
    assert s.q05 <= TRUE[LOGIT.key] <= s.q95, s
    assert s.q95 - s.q05 < 0.5 * width, s  # the prior's 90% interval is 0.9 * width
    assert abs(s.mean - TRUE[LOGIT.key]) < 0.15 * width, s  # as the Optuna recovery test
    eps = abc.epsilons(history)
    assert list(eps["generation"]) == [0, 1] and eps["epsilon"].is_monotonic_decreasing


class Interrupt(Exception):
    """A run that dies."""


def test_the_command_writes_its_outputs_and_a_resumed_run_its_posterior(
        tmp_path, monkeypatch, targets) -> None:
    monkeypatch.setattr(calibrate, "load_targets", lambda preset: targets)
    monkeypatch.setattr(fit, "load_parameters", lambda name: [LOGIT])
    calls: list[int] = []
    real = fit.run_candidate

    def counting(*args, **kwargs) -> dict:
        if len(calls) == kill_at:
            raise Interrupt  # the process dies inside a generation
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit, "run_candidate", counting)
    argv = ["method=abc", "population=2", "generations=2", "replicates=1", "seed=1",
            "backend=serial", "batch=2", *OVERRIDES]
    kill_at = -1
    straight = calibrate.calibrate([*argv, f"out={tmp_path / 'straight'}"])
    files = ["posterior.csv", "posterior_summary.csv", "epsilons.csv", "fit.csv",
             "calibrated_small.yaml", "abc.db", "figures/posterior_marginals.png",
             "figures/epsilons.png", "figures/observed_vs_simulated.png"]
    assert all((straight / f).is_file() for f in files)
    summary = pd.read_csv(straight / "posterior_summary.csv")
    assert list(summary["parameter"]) == [LOGIT.key]
    assert (summary["q05"] <= summary["median"]).all()
    assert (summary["median"] <= summary["q95"]).all()
    eps = pd.read_csv(straight / "epsilons.csv")
    assert list(eps["generation"]) == [0, 1]
    assert pd.read_csv(straight / "fit.csv")["moment"].tolist() == [MOVES.name]
    fitted = (straight / "calibrated_small.yaml").read_text()
    assert "base_logit" in fitted
    assert "# Fit per moment: fit.csv beside this file." in fitted  # the fit it came with
    # Every candidate ran on the evaluation layer: a chunk file per candidate and seed.
    chunks = list((straight / "candidates").glob("chunks/*/done.json"))
    assert len(chunks) == len(calls) - 1  # the posterior median's run is not a batch's
    total = len(calls)
    kill_at = total - 3  # inside the last generation (the last call evaluates the median)
    calls.clear()
    with pytest.raises(RuntimeError, match="Interrupt"):  # the batch's runs failed
        calibrate.calibrate([*argv, f"out={tmp_path / 'resumed'}"])
    calls.clear()
    kill_at = -1
    resumed = calibrate.calibrate([*argv, f"out={tmp_path / 'resumed'}"])
    # The killed generation's finished candidates were read back, not run again.
    assert len(calls) < 4, calls
    for name in ("posterior.csv", "posterior_summary.csv", "epsilons.csv", "fit.csv",
                 "calibrated_small.yaml"):
        assert (resumed / name).read_bytes() == (straight / name).read_bytes(), name


def test_the_posterior_does_not_depend_on_the_backend_or_the_batch(tmp_path, targets) -> None:
    problem = fit.Problem("small", [LOGIT], targets, [MOVES.name], SEEDS, OVERRIDES)
    posts = []
    for name, backend, batch in (("serial", "serial", 1), ("joblib", "joblib", 3)):
        cfg = EvaluationConfig(backend=backend, n_jobs=2)
        batches = partial(fit.evaluate_batch, problem, root=tmp_path / name / "runs",
                          runner=tasks.run_particle, cfg=cfg)
        history = abc.run(problem, tmp_path / name / "abc.db",
                          abc.Settings(population=3, generations=2, seed=5, batch=batch),
                          batches)
        posts.append(abc.posterior(history))
    pd.testing.assert_frame_equal(posts[0], posts[1])


def test_a_run_of_another_problem_is_not_resumed(tmp_path, monkeypatch, targets) -> None:
    monkeypatch.setattr(fit, "evaluate", lambda params, seeds, *args: pd.DataFrame(
        {MOVES.name: [0.1 + params[LOGIT.key] / 100] * len(seeds)}))
    problem = fit.Problem("small", [LOGIT], targets, [MOVES.name], SEEDS, OVERRIDES)
    abc.run(problem, tmp_path / "abc.db", abc.Settings(population=2, generations=1))
    with pytest.raises(ValueError, match="another problem"):
        abc.run(problem, tmp_path / "abc.db", abc.Settings(population=3, generations=2))
    with pytest.raises(ValueError, match="generations=0 is not allowed"):
        abc.Settings(population=3, generations=0)


@pytest.mark.parametrize(("arg", "message"), [
    ("method=abc", "error: method=abc needs the optional extra: pip install -e '.[abc]'"),
    ("method=mcmc", "error: method=mcmc is not allowed; expected one of optuna, abc"),
])
def test_refused_methods_end_in_one_line(monkeypatch, capsys, arg, message) -> None:
    # As if pyabc were not installed: its import fails, calibration.abc is not loaded.
    monkeypatch.setitem(sys.modules, "pyabc", None)
    monkeypatch.delitem(sys.modules, "calibration.abc")
    monkeypatch.delattr(calibration, "abc")
    with pytest.raises(SystemExit) as exit_:
        calibrate.main([arg])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == message + "\n"


def test_an_unknown_parameter_set_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"^parameters=nope is not allowed; expected one of "
                                         r"the sets of parameters.yaml: small, helsinki, "):
        fit.load_parameters("nope")


@pytest.mark.parametrize(("parameters", "shipped"), [
    ("", {"calibration/fit_small.csv", "calibration/posterior_small.csv",
          "conf/behaviour/calibrated_small.yaml"}),
    ("decisive", {"calibration/posterior_small.csv"}),  # conditional: the point fit stays
])
def test_ship_writes_the_point_fit_only_for_the_presets_own_set(
        tmp_path, monkeypatch, parameters, shipped) -> None:
    monkeypatch.setattr(calibrate, "ROOT", tmp_path)
    monkeypatch.setattr(calibrate, "CONF_DIR", tmp_path / "conf")
    for d in ("calibration", "conf/behaviour", "out"):
        (tmp_path / d).mkdir(parents=True)
    pd.DataFrame({LOGIT.key: [-2.5], "weight": [1.0], "distance": [0.1]}).to_csv(
        tmp_path / "out" / "posterior.csv", index=False)
    found = calibrate.Found({LOGIT.key: -2.5}, pd.DataFrame(), "# header\n", "note")
    opts = {"preset": "small", "parameters": parameters, "method": "abc"}
    calibrate.ship(opts, fit.base_config("small", OVERRIDES), found,
                   pd.DataFrame({"moment": ["m"]}), tmp_path / "out")
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
               if p.is_file() and "out" not in p.parts}
    assert written == shipped
