"""The evaluation layer: content-hashed chunks, failures that do not stop a study, sweeps."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd

from conftest import TINY, tiny_config
from experiments.collect import collect
from experiments.tasks import run_scenario_task
from sim.config import as_dict
from sim.evaluation import EvaluationConfig, evaluate, plan

ROOT = Path(__file__).resolve().parent.parent


def context() -> dict:
    d = as_dict(tiny_config("years=2"))
    return {"config": {k: v for k, v in d.items() if k != "scenario"},
            "scenarios": {"baseline": d["scenario"]}, "metrics": ["seg_school_ses_H"],
            "years": [2]}


def test_chunk_ids_hash_their_inputs() -> None:
    tasks = [{"scenario": "baseline", "seed": s, "replicate": 0} for s in range(4)]
    a = plan(run_scenario_task, context(), tasks, 2)
    assert [c.id for c in a] == [c.id for c in plan(run_scenario_task, context(), tasks, 2)]
    changed = context()
    changed["config"]["years"] = 3
    assert not {c.id for c in a} & {c.id for c in plan(run_scenario_task, changed, tasks, 2)}


def test_failing_chunk_is_reported_and_the_others_run(tmp_path: Path, caplog) -> None:
    tasks = [{"scenario": "baseline", "seed": 1, "replicate": 0},
             {"scenario": "no_such_scenario", "seed": 1, "replicate": 0},
             {"scenario": "baseline", "seed": 2, "replicate": 1}]
    study = evaluate(run_scenario_task, context(), tasks, tmp_path,
                     EvaluationConfig(backend="serial", chunk_size=1), progress=False)
    bad = study.chunk_ids[1]
    assert study.failed == [bad] and not study.missing
    assert "KeyError" in study.errors()[bad]
    assert study.table()["seed"].tolist() == [1, 2]
    with caplog.at_level(logging.INFO):
        assert collect(tmp_path) == 1
    assert f"failed: {bad}" in caplog.text and "2/3 chunks done" in caplog.text


def sweep(sweep_dir: Path, seeds: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "experiments.run", "--multirun", *TINY, "years=2",
           "output.figures=false", f"seed={seeds}", f"hydra.sweep.dir={sweep_dir}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_reordered_sweep_and_failing_job_do_not_stop_a_sweep(tmp_path: Path) -> None:
    first = sweep(tmp_path, "2,1")
    assert first.returncode == 0, first.stderr
    (run1,) = tmp_path.glob("*seed=1,*")  # folders are named by their overrides
    stamp = (run1 / "summary.json").read_text()
    # Reordered values, a job that fails first (bad seed), and a new value after it.
    second = sweep(tmp_path, "-1,1,2,3")
    assert second.returncode == 1  # the failed job is reported at the end...
    assert "seed=-1 is not allowed" in second.stderr
    assert second.stdout.count("already done, skipping") == 2  # ...old runs are kept...
    assert (run1 / "summary.json").read_text() == stamp
    assert len(list(tmp_path.glob("*/summary.json"))) == 3  # ...and the later job still ran
    assert json.loads((tmp_path / "provenance.json").read_text())["git_dirty"] in (
        True, False, None)
    assert collect(tmp_path) == 1  # seed=-1 is named as missing
    table = pd.read_parquet(tmp_path / "collected.parquet")
    assert sorted(table["seed"].unique()) == [1, 2, 3] and "run" in table.columns


def test_collect_again_reads_its_own_table_as_no_run(tmp_path: Path) -> None:
    assert sweep(tmp_path, "1,2").returncode == 0
    assert collect(tmp_path) == 0
    first = (tmp_path / "collected.parquet").read_bytes()
    assert collect(tmp_path) == 0  # collected.parquet is not an unfinished run folder
    assert (tmp_path / "collected.parquet").read_bytes() == first
