"""Tests for the run directory: files, columns, indices recomputed from the tables, flows."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import TINY, tiny_config
from sim.config import as_dict, validate
from sim.indices import index_set
from sim.io import atomic_write
from sim.model import SegregationModel
from sim.outputs import is_complete, write_run

ROOT = Path(__file__).resolve().parent.parent
YEARS = 3
SES = [f"ses{k}" for k in range(3)]
LANG = [f"lang{k}" for k in range(2)]
REQUIRED = [
    "year", "n_families", "n_children", "seg_res_ses_H", "seg_res_lang_H", "seg_school_ses_H",
    "seg_school_lang_H", "seg_daycare_ses_H", "seg_school_ses_D", "seg_res_ses_D",
    "excess_school_ses_H", "local_school_share_g1", "local_school_share_g7",
    "outcome_gap_decile", "move_rate", "outmigration_rate",
]
FILES = ["config.yaml", "metrics.parquet", "units.parquet", "areas.parquet", "ages.parquet",
         "summary.json"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run written with figures; returns (model, run_dir)."""
    cfg = tiny_config(f"years={YEARS}", "seed=11")
    model = SegregationModel(cfg)
    run_dir = tmp_path_factory.mktemp("run") / "r"
    assert not is_complete(run_dir)
    model.run()
    write_run(model, run_dir, figures=True)
    return model, run_dir


@pytest.fixture(scope="module")
def tables(run):
    _, run_dir = run
    return tuple(pd.read_parquet(run_dir / f) for f in
                 ("metrics.parquet", "areas.parquet", "units.parquet"))


# ------------------------------------------------------------------------------ files


def test_files_exist(run):
    _, run_dir = run
    for name in FILES:
        assert (run_dir / name).is_file(), name
        assert (run_dir / name).stat().st_size > 0, name
    pngs = sorted((run_dir / "figures").glob("*.png"))
    assert len(pngs) == 3, pngs
    for png in pngs:
        data = png.read_bytes()
        assert len(data) > 1000, png
        assert data[:8] == b"\x89PNG\r\n\x1a\n", png


def test_no_temporary_files_left(run):
    _, run_dir = run
    names = [p.relative_to(run_dir) for p in run_dir.rglob("*")]
    assert not [n for n in names if n.name.endswith(".tmp") or n.name.startswith(".")], names
    assert {str(n) for n in names if n.parent == Path(".")} == {*FILES, "figures"}


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "file.txt"

    def broken(p: Path) -> None:
        p.write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError, match="crash while writing"):
        atomic_write(target, broken)
    assert list((tmp_path / "sub").iterdir()) == []
    atomic_write(target, lambda p: p.write_text("whole"))
    assert target.read_text() == "whole"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text() == "whole"  # a failed rewrite keeps the old file
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["file.txt"]


def test_metrics_rows_and_columns(run, tables):
    model, _ = run
    metrics, _, _ = tables
    assert len(metrics) == YEARS + 1
    assert metrics["year"].tolist() == list(range(YEARS + 1))
    assert metrics["year"].dtype == np.int64
    missing = [c for c in REQUIRED if c not in metrics.columns]
    assert not missing, missing
    assert metrics.columns.is_unique
    pd.testing.assert_frame_equal(metrics, model.recorder.metrics_frame())
    for col in ("n_families", "n_children"):
        assert (metrics[col] > 0).all()
    for col in ("seg_res_ses_H", "seg_school_ses_H", "seg_daycare_ses_H", "move_rate",
                "outmigration_rate", "local_school_share_g1"):
        v = metrics[col].iloc[1:]
        assert v.notna().all() and ((v >= 0) & (v <= 1)).all(), (col, v.tolist())


def test_units_and_areas_tables(run, tables):
    model, _ = run
    _, areas, units = tables
    c = model.city
    per_year = {"district": c.n_districts, "catchment_lower": len(c.lower_cells),
                "catchment_upper": len(c.upper_cells), "cell": c.n_cells}
    for year, a in areas.groupby("year"):
        sizes = a["kind"].value_counts().to_dict()
        assert sizes == per_year, (year, sizes)
        for kind, g in a.groupby("kind"):
            assert g["area_id"].tolist() == list(range(per_year[kind]))
    n_s, n_d = len(model.schools.cell), len(model.daycares.cell)
    assert sorted(units["year"].unique()) == list(range(YEARS + 1))
    assert (units.groupby("year").size() == n_s + n_d).all()
    assert not units.duplicated(["year", "unit_id"]).any()


def test_summary_json(run, tables):
    model, run_dir = run
    metrics, _, _ = tables
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("seed", "git", "versions", "config", "final"):
        assert key in summary, key
    assert summary["seed"] == model.cfg.seed == 11
    assert summary["years"] == YEARS
    assert summary["config"] == as_dict(model.cfg)
    assert summary["git"] == "unknown" or len(summary["git"]) == 40
    for pkg in ("python", "mesa", "numpy", "numba", "pandas", "pyarrow", "hydra-core"):
        assert summary["versions"].get(pkg) not in (None, "missing"), pkg
    last = metrics.iloc[-1]
    assert set(summary["final"]) == set(metrics.columns)
    for key, value in summary["final"].items():
        if value is None:
            assert math.isnan(last[key]), key
        else:
            assert value == float(last[key]), key


def test_config_yaml_reproduces_config(run):
    model, run_dir = run
    loaded = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    assert loaded == as_dict(model.cfg)
    assert validate(loaded) == model.cfg


# ------------------------------------------------------------------------------ indices


def _block(df: pd.DataFrame, prefix: str, cols: list[str]) -> np.ndarray:
    return df[[f"{prefix}{c}" for c in cols]].to_numpy()


def _expected_indices(areas: pd.DataFrame, units: pd.DataFrame) -> dict[str, float]:
    """All seg_* and excess_* metrics of one year from the area and unit tables alone."""

    def by_kind(df, col, *kinds):
        return df[df["kind"].isin(kinds)].sort_values(["kind", col], kind="stable")

    districts = by_kind(areas, "area_id", "district")
    cells = by_kind(areas, "area_id", "cell")
    lower = by_kind(areas, "area_id", "catchment_lower")
    upper = by_kind(areas, "area_id", "catchment_upper")
    schools = units[units["kind"].str.startswith("school_")].sort_values("index")
    assert len(schools) == len(units[units["unit_id"].str.startswith("S")])
    sets = {
        "seg_res": (districts, "children_"),
        "seg_cell": (cells, "children_"),
        "seg_school": (schools, "enrol_"),
        "seg_school_lower": (schools[schools["kind"] == "school_lower"], "enrol_"),
        "seg_school_upper": (schools[schools["kind"] == "school_upper"], "enrol_"),
        "seg_daycare": (by_kind(units, "index", "daycare_municipal", "daycare_private"),
                        "enrol_"),
    }
    out: dict[str, float] = {}
    for name, (df, pre) in sets.items():
        mats = {"ses": _block(df, pre, SES), "lang": _block(df, pre, LANG)}
        assert len(df) > 0, name
        for dim, grp, oth in (("ses", 0, 2), ("lang", 1, 0)):
            for idx, v in index_set(mats[dim], group=grp, other=oth).items():
                out[f"{name}_{dim}_{idx}"] = v
    for dim, cols, grp, oth in (("ses", SES, 0, 2), ("lang", LANG, 1, 0)):
        mat = np.vstack([_block(lower, "age7_12_", cols), _block(upper, "age13_15_", cols)])
        for idx, v in index_set(mat, group=grp, other=oth).items():
            out[f"seg_catchment_{dim}_{idx}"] = v
    for dim in ("ses", "lang"):
        out[f"excess_school_{dim}_H"] = out[f"seg_school_{dim}_H"] - out[f"seg_catchment_{dim}_H"]
        out[f"excess_school_{dim}_H_res"] = out[f"seg_school_{dim}_H"] - out[f"seg_res_{dim}_H"]
    return out


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-12


def test_every_index_recomputed_from_tables(tables):
    metrics, areas, units = tables
    seg_cols = {c for c in metrics.columns if c.startswith(("seg_", "excess_"))}
    checked = 0
    for year in range(YEARS + 1):
        exp = _expected_indices(areas[areas["year"] == year], units[units["year"] == year])
        assert set(exp) == seg_cols, sorted(set(exp) ^ seg_cols)
        row = metrics[metrics["year"] == year].iloc[0]
        bad = {k: (row[k], v) for k, v in exp.items() if not _same(float(row[k]), v)}
        assert not bad, (year, bad)
        checked += len(exp)
    assert checked == (YEARS + 1) * (7 * 2 * 4 + 4)
    assert metrics["seg_res_ses_H"].notna().all()


def test_index_recomputation_detects_a_change(tables):
    """The recomputation is sensitive: one pupil moved between schools changes the index."""
    metrics, areas, units = tables
    year = YEARS
    u = units[units["year"] == year].copy()
    s = u.index[(u["kind"] == "school_lower") & (u["enrol_ses0"] > 0)
                 & (u["enrol_lang0"] > 0)][0]
    t = u.index[(u["kind"] == "school_lower") & (u.index != s)][0]
    u.loc[s, ["enrol_ses0", "enrol_lang0"]] -= 1
    u.loc[t, ["enrol_ses0", "enrol_lang0"]] += 1
    exp = _expected_indices(areas[areas["year"] == year], u)
    assert not _same(float(metrics.iloc[year]["seg_school_ses_H"]), exp["seg_school_ses_H"])


# ------------------------------------------------------------------------------ flows


def test_population_flows_reconcile(tables):
    metrics, areas, _ = tables
    m = metrics.set_index("year")
    for t in range(1, YEARS + 1):
        entries = m.at[t, "arrivals"] + m.at[t, "first_births"] + m.at[t, "returns"]
        expect = (m.at[t - 1, "n_families"] - m.at[t, "aged_out"] - m.at[t, "left_city"]
                  + entries)
        assert m.at[t, "n_families"] == expect, t
    assert (m.loc[1:, "aged_out"] + m.loc[1:, "left_city"]).sum() > 0
    assert m.loc[1:, "moves"].sum() > 0 and m.loc[1:, "arrivals"].sum() > 0
    assert m.loc[1:, "first_births"].sum() > 0
    cells = areas[areas["kind"] == "cell"].groupby("year")[["move_ins", "move_outs"]].sum()
    for t in range(YEARS + 1):
        assert cells.at[t, "move_ins"] == (m.at[t, "moves"] + m.at[t, "arrivals"]
                                           + m.at[t, "first_births"] + m.at[t, "returns"]), t
        assert cells.at[t, "move_outs"] == (m.at[t, "moves"] + m.at[t, "aged_out"]
                                            + m.at[t, "left_city"]), t
    assert cells.at[0, "move_ins"] == cells.at[0, "move_outs"] == 0


def test_area_stocks_match_population(tables):
    metrics, areas, units = tables
    m = metrics.set_index("year")
    for kind in ("cell", "district"):
        tot = areas[areas["kind"] == kind].groupby("year").sum(numeric_only=True)
        for t in range(YEARS + 1):
            fam = tot.loc[t, [f"families_{c}" for c in SES]].sum()
            assert fam == tot.loc[t, [f"families_{c}" for c in LANG]].sum()
            assert fam == m.at[t, "n_families"], (kind, t)
            kids = tot.loc[t, [f"children_{c}" for c in SES]].sum()
            assert kids == m.at[t, "n_children"], (kind, t)
    for kind, band in (("catchment_lower", "age7_12"), ("catchment_upper", "age13_15")):
        a = areas[areas["kind"] == kind].groupby("year")[[f"{band}_{c}" for c in SES]].sum()
        c = areas[areas["kind"] == "cell"].groupby("year")[[f"{band}_{c}" for c in SES]].sum()
        pd.testing.assert_frame_equal(a, c)
    enrolled = units.groupby("year")["enrolled"].sum()
    assert (enrolled <= m["n_children"]).all()


# ------------------------------------------------------------------------------ completeness


def test_is_complete_before_and_after(tmp_path):
    model = SegregationModel(tiny_config("years=1"))
    model.run()
    run_dir = tmp_path / "run"
    assert not is_complete(run_dir)
    run_dir.mkdir()
    assert not is_complete(run_dir)
    write_run(model, run_dir, figures=False)
    assert is_complete(run_dir)
    assert not (run_dir / "figures").exists()


def test_cli_skips_complete_directory(tmp_path):
    overrides = [*TINY, "years=1", "output.figures=false"]
    model = SegregationModel(tiny_config("years=1", "output.figures=false"))
    model.run()
    run_dir = tmp_path / "done"
    write_run(model, run_dir, figures=False)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.run", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert "already done" in proc.stdout, proc.stdout
    assert "done in" not in proc.stdout
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.iterdir()
             if p.name != "run.log"}
    assert after == before
    assert "already done" in (run_dir / "run.log").read_text()  # the run's own log
