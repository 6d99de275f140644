"""The targets file: every shipped moment loads and computes; every error has its message."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from calibration.moments import (
    EXTRACTORS,
    TARGETS_YAML,
    Outputs,
    TargetsError,
    load_targets,
    metric_columns,
)
from conftest import tiny_config
from sim.model import SegregationModel

GOOD = {"name": "g1", "observed": 0.85, "sd": 0.02, "rationale": "admin data",
        "source": "local_school_share_grade1", "statistic": "metric_mean",
        "args": {"metric": "local_school_share_g1"}, "years": [1, 3],
        "presets": ["small", "helsinki"]}


def write(tmp_path: Path, *entries: dict) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(yaml.safe_dump({"moments": list(entries)}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def outputs() -> Outputs:
    model = SegregationModel(tiny_config("start=settled", "burn_in_years=6", "years=3"))
    model.run()
    return Outputs.from_model(model)


def test_shipped_targets_load_and_every_moment_computes(outputs) -> None:
    moments = load_targets()
    names = {m.name for m in moments}
    for required in ("local_share_g1", "renewal_children_share", "pupil_foreign_share",
                     "childhood_leaving", "first_moves_age1", "children_0_6", "ecec_age1_2",
                     "mean_school_size", "children_per_family", "learning_gap_deciles"):
        assert required in names
    assert {m.name for m in load_targets(preset="small")} < names  # helsinki-only ones
    for m in moments:
        short = type(m)(**{**m.__dict__, "years": (1, 3)})
        value = short.simulate(outputs)
        assert isinstance(value, float) and not math.isinf(value), m.name


def test_metric_columns_match_a_run(outputs) -> None:
    assert set(outputs.metrics.columns) == metric_columns()


def test_user_added_moment_needs_no_code(tmp_path) -> None:
    extra = {**GOOD, "name": "ecec_all", "source": "ecec_participation_age_1_6",
             "args": {"metric": "daycare_participation"}, "observed": 0.82}
    (m1, m2) = load_targets(write(tmp_path, GOOD, extra))
    assert m2.name == "ecec_all" and m2.statistic == "metric_mean"


@pytest.mark.parametrize(("change", "message"), [
    ({"statistic": None}, "names no extraction function"),
    ({"statistic": "median_income"}, "'median_income' is no extraction function"),
    ({"args": {"metric": "no_such_column"}}, "not a column of metrics.parquet"),
    ({"args": {"column": "x"}}, "the outputs cannot serve metric_mean with args"),
    ({"statistic": "children_count", "args": {"ages": "0_6"}, "observed": 43187},
     "cannot serve children_count on presets"),
    ({"years": [1, 50]}, "the run has 10 years"),
    ({"years": [3, 1]}, r"years=\[3, 1\]"),
    ({"observed": 1.7, "statistic": "pupil_foreign_share", "args": {}},
     r"outside the valid range \[0.0, 1.0\]"),
    ({"kind": "range", "observed": [0.9, 0.8]}, "a range is"),
    ({"kind": "roughly"}, "kind='roughly'"),
    ({"sd": 0}, "sd=0: expected a positive number"),
    ({"weight": -1}, "weight=-1"),
    ({"source": "no_such_key"}, "is not a key of targets.csv"),
    ({"rationale": " "}, "rationale is empty"),
    ({"colour": "red"}, "unknown fields"),
])
def test_each_error_has_one_clear_message(tmp_path, change, message) -> None:
    entry = {**GOOD, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(TargetsError, match=message):
        load_targets(write(tmp_path, entry), horizon=10)


def test_duplicate_names_and_bad_files_are_refused(tmp_path) -> None:
    with pytest.raises(TargetsError, match="appears twice"):
        load_targets(write(tmp_path, GOOD, GOOD))
    bad = tmp_path / "bad.yaml"
    bad.write_text("moments: 3\n", encoding="utf-8")
    with pytest.raises(TargetsError, match="a list 'moments'"):
        load_targets(bad)


def test_registry_functions_document_themselves() -> None:
    assert TARGETS_YAML.exists()
    for name, ex in EXTRACTORS.items():
        assert ex.fn.__doc__, name
