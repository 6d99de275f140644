"""Regression baseline: a small fixed-seed run's summary must match the checked-in file.

Only ``python tests/baseline/update.py`` rewrites the baseline.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import tiny_config
from sim.model import SegregationModel
from sim.outputs import write_run

BASELINE = Path(__file__).resolve().parent / "baseline" / "summary_final.json"


def baseline_run(run_dir: Path) -> dict:
    """The baseline configuration's final-year metrics, as written to summary.json."""
    model = SegregationModel(tiny_config("seed=2024", "years=6"))
    model.run()
    write_run(model, run_dir, figures=False)
    return json.loads((run_dir / "summary.json").read_text())["final"]


def test_summary_matches_baseline(tmp_path: Path) -> None:
    want = json.loads(BASELINE.read_text())
    got = baseline_run(tmp_path)
    assert sorted(got) == sorted(want), "metric columns changed; run tests/baseline/update.py"
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), (
                key, got[key], value)
