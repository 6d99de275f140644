"""The policy search: toy-front recovery, kill and resume, space errors, reproduction."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from toy_front import SPACE, toy_search, true_gap

from conftest import TINY
from experiments.front import indistinguishable, pareto, pareto_mask, trials_frame
from experiments.optimise import OptimiseConfig, split
from experiments.optimise_space import parse_space
from experiments.optimise_study import STUDY_NAME, run_search, storage

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# The tiny city, at city=small (the command's default city is helsinki).
TINY_OPT = ["city=small", *TINY, "years=3"]


def test_toy_front_is_recovered(tmp_path: Path) -> None:
    # NSGA-II, 6 generations of 8. Tolerance: every front point within 0.2 of the true front
    # (gap = 1 - sqrt(cost); measured: 0.07-0.16, where the first, random generation's
    # median is 0.57), and the front spans costs 0.05..0.9 with no hole wider than 0.3.
    search = toy_search(generations=6, population=8)
    study = run_search(search, tmp_path)
    front = pareto(trials_frame(study, search.space), search.space)
    excess = front["outcome_gap_decile"] - front["cost_meur"].map(true_gap)
    assert (excess > -1e-9).all()  # nothing beats the true front
    assert excess.max() < 0.2
    cost = np.sort(front["cost_meur"].to_numpy())
    assert cost[0] < 0.05 and cost[-1] > 0.9 and np.diff(cost).max() < 0.3
    assert (front["cost_meur_low"] == front["cost_meur"]).all()  # the paired effect is exact


def run_toy(root: Path, generations: int, log: Path, kill_at: int | None = None) -> int:
    env = {**os.environ, "TOY_LOG": str(log), "PYTHONPATH": str(HERE)}
    if kill_at:
        env["TOY_KILL_AT"] = str(kill_at)
    proc = subprocess.run([sys.executable, str(HERE / "toy_front.py"), str(root),
                           str(generations)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    return proc.returncode


def front_of(root: Path) -> pd.DataFrame:
    space = parse_space(SPACE, "space toy")
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage(root))
    return pareto(trials_frame(study, space), space).drop(columns="description")


def test_killed_search_resumes_without_lost_or_repeated_runs(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_toy(whole, 2, tmp_path / "whole.log") == 0
    # 2 baseline runs, 6 x 2 in generation 1, then killed at the 20th run: mid-generation 2.
    assert run_toy(killed, 2, tmp_path / "killed.log", kill_at=20) == 3
    assert run_toy(killed, 2, tmp_path / "killed.log") == 0
    runs = (tmp_path / "killed.log").read_text().splitlines()
    assert len(runs) == len(set(runs))  # nothing run twice
    assert sorted(runs) == sorted((tmp_path / "whole.log").read_text().splitlines())
    pd.testing.assert_frame_equal(front_of(killed), front_of(whole))


def test_pareto_and_indistinguishable_by_hand() -> None:
    space = parse_space(SPACE, "space toy")
    assert pareto_mask(np.array([[0, 1], [1, 0], [1, 1], [0, 1]])).tolist() == [
        True, True, False, True]
    front = pd.DataFrame({"trial": [1, 2, 3], "cost_meur": [0.0, 0.1, 1.0],
                          "cost_meur_low": [0.0, 0.05, 1.0], "cost_meur_high": [0.0, 0.15, 1.0],
                          "outcome_gap_decile": [0.5, 0.45, 0.0],
                          "outcome_gap_decile_low": [0.4, 0.3, -0.1],
                          "outcome_gap_decile_high": [0.6, 0.6, 0.1]})
    # 1 and 2 overlap in the gap but not in the cost (zero-width at 0 vs 0.05..0.15).
    assert indistinguishable(front, space) == ["", "", ""]
    front.loc[1, "cost_meur_low"] = 0.0
    assert indistinguishable(front, space) == ["2", "1", ""]


def space_with(change) -> dict:
    raw = copy.deepcopy(SPACE)
    change(raw)
    return raw


BAD_SPACES = {
    "unknown key": (lambda r: r.update(extra=1), "keys=['extra', 'levers', 'name', "),
    "no levers": (lambda r: r.update(levers=[]), "levers=[] is not allowed; expected a non-empty"),
    "block": (lambda r: r["levers"][0].pop("lever"), "levers[0]={"),
    "unknown lever": (lambda r: r["levers"][0].update(lever="magic"), "levers[0].lever='magic'"),
    "twice": (lambda r: r["levers"].append(copy.deepcopy(r["levers"][0])), "distinct lever"),
    "nothing searched": (lambda r: r["levers"][0].pop("search"), "at least one searched"),
    "fixed and searched": (lambda r: r["levers"][0].update(args={"coverage": 0.5}),
                           "arguments not also fixed in args"),
    "range form": (lambda r: r["levers"][0]["search"].update(coverage={"low": 0}),
                   "{low, high} (optional: int, log) or {choices"),
    "empty range": (lambda r: r["levers"][0]["search"].update(coverage={"low": 1, "high": 0}),
                    "low < high"),
    "no choices": (lambda r: r["levers"][0]["search"].update(units={"choices": []}),
                   "choices: a non-empty list"),
    "bad extreme": (lambda r: r["levers"][0]["search"].update(coverage={"low": 0, "high": 2}),
                    "coverage=2.0 is not allowed; expected a number in [0, 1] (at "
                    "toy.coverage=2.0)"),
    "objective form": (lambda r: r["objectives"].append({"name": "x"}),
                       "objectives[2]={'name': 'x'}"),
    "better": (lambda r: r["objectives"][1].update(better="up"), "lower or higher"),
    "window": (lambda r: r["objectives"][1].update(window="mid"), "window='mid'"),
    "no cost": (lambda r: r["objectives"].pop(0), "distinct metrics, policy_cost_eur and"),
    "constraint form": (lambda r: r.update(constraints=[{"metric": "policy_cost_eur"}]),
                        "a mapping with metric or param, and max or min"),
    "constraint bound": (lambda r: r.update(constraints=[{"metric": "x", "max": "a"}]),
                         "constraints[0].max='a' is not allowed; expected a finite number"),
    "constraint param": (lambda r: r.update(constraints=[{"param": "toy.x", "max": 1}]),
                         "constraints[0].param='toy.x'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_gives_one_clear_error(case: str) -> None:
    change, fragment = BAD_SPACES[case]
    with pytest.raises(ValueError) as err:
        parse_space(space_with(change), "space toy")
    message = str(err.value)
    assert "\n" not in message and message.startswith("space toy")
    assert fragment in message


@pytest.mark.parametrize(("options", "fragment"), [
    ({"sampler": "cmaes"}, "sampler='cmaes' is not allowed; expected one of ['nsga2', 'tpe']"),
    ({"population": 1}, "population=1 is not allowed; expected an integer >= 2"),
    ({"uncertainty": "posterior"}, "posterior needs the calibration's posterior"),
    ({"references": ["baseline"]}, "expected scenarios other than the baseline"),
])
def test_search_options_are_checked(options: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as err:
        split(OptimiseConfig(**options))
    assert fragment in str(err.value)


def test_unknown_metric_and_space_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("levers: " + str(SPACE["levers"]).replace("'", '"') + "\nobjectives: "
                   "[{metric: policy_cost_eur}, {metric: happiness}]\n")
    for space, fragment in ((str(bad), "metric='happiness' is not allowed"),
                            ("nowhere", "space='nowhere' is not allowed")):
        out = tmp_path / space.replace("/", "_")
        proc = subprocess.run([sys.executable, "-m", "experiments.optimise", *TINY_OPT,
                               f"space={space}", f"hydra.run.dir={out}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and fragment in proc.stderr, proc.stderr
        assert not out.exists()


def test_front_point_reproduces_through_compare(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    cmp = opt / "compare"  # inside the search folder: the report gets the search section
    common = [*TINY_OPT, "seed=3", "evaluation.backend=serial"]
    proc = subprocess.run([sys.executable, "-m", "experiments.optimise", *common,
                           "population=3", "generations=1", "replicates=2", "recheck=false",
                           "references=[flexible_catchment]", f"hydra.run.dir={opt}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    front = pd.read_csv(opt / "front.csv")
    point = front.iloc[-1]  # the dearest: it has levers
    file = opt / "front" / f"{point['scenario']}.yaml"
    proc = subprocess.run([sys.executable, "-m", "experiments.compare", *common,
                           f"scenarios=[baseline,{file}]", "replicates=2", "horizons=[3]",
                           f"hydra.run.dir={cmp}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    eff = pd.read_csv(cmp / "effects.csv").set_index(["metric", "year"])
    for metric in ("seg_school_ses_H", "outcome_gap_decile", "seg_res_ses_H"):
        assert eff.loc[(metric, 3), "mean_diff"] == pytest.approx(point[metric], abs=1e-12)
    cost = eff.loc["policy_cost_eur"].loc[1:3, "mean_diff"].mean() / 1e6
    assert cost == pytest.approx(point["cost_meur"], abs=1e-12)
    report = (cmp / "report.html").read_text()
    assert "The search for the best policy mix" in report and "flexible_catchment" in report
