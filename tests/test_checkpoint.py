"""Settled start: burn-in, checkpoints restored byte-identically, refused when mismatched."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import lever, tiny_config
from experiments.compare import CompareConfig, compare
from sim import checkpoint
from sim.config import as_dict
from sim.model import SegregationModel
from sim.outputs import write_run
from sim.rng import BURN_IN_BASE, Streams, year_word

SETTLED = ("start=settled", "burn_in_years=3", "years=3")
TABLES = ("metrics.parquet", "units.parquet", "areas.parquet")


def _write(model: SegregationModel, out: Path) -> Path:
    model.run()
    return write_run(model, out, figures=False)


def _tp() -> list:
    return [lever("tp_funding", budget_eur=5_000_000, start_year=1)]


@pytest.mark.parametrize("levers", [list, _tp], ids=["baseline", "tp_funding"])
def test_restore_then_run_is_byte_identical_to_straight_through(tmp_path, levers) -> None:
    cfg = tiny_config(*SETTLED, "seed=4")
    straight = _write(SegregationModel(cfg, levers=levers()), tmp_path / "straight")
    first = _write(SegregationModel(cfg, levers=levers(), checkpoints=tmp_path / "ck"),
                   tmp_path / "first")
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 1
    restored = _write(SegregationModel(cfg, levers=levers(), checkpoints=tmp_path / "ck"),
                      tmp_path / "restored")
    for name in TABLES:
        want = (straight / name).read_bytes()
        assert (first / name).read_bytes() == want, name
        assert (restored / name).read_bytes() == want, name


def test_year_zero_is_settled_and_burn_in_is_not_recorded() -> None:
    model = SegregationModel(tiny_config(*SETTLED))
    assert model.year == 0
    df = model.recorder.metrics_frame()
    assert df["year"].tolist() == [0]
    # A year lies behind year 0, so its flow rates exist (a fresh start has none).
    assert np.isfinite(df["move_rate"].iloc[0]) and np.isfinite(df["outmigration_rate"].iloc[0])
    fresh = SegregationModel(tiny_config("years=3")).recorder.metrics_frame()
    assert np.isnan(fresh["move_rate"].iloc[0])


def test_burn_in_years_have_their_own_streams() -> None:
    assert year_word(-1) == BURN_IN_BASE + 1 and year_word(7) == 7
    s = Streams(3)
    assert s.get("x", -1).random() != s.get("x", 1).random()
    assert s.key("x", -2) != s.key("x", 2)


def test_checkpoint_key_ignores_scenario_horizon_and_output_only() -> None:
    base = tiny_config(*SETTLED)
    same = [tiny_config(*SETTLED, "years=9"), tiny_config(*SETTLED, "output.figures=false"),
            tiny_config(*SETTLED, "scenario=tp_funding"), tiny_config(*SETTLED, "threads=1")]
    assert {checkpoint.key(c) for c in same} == {checkpoint.key(base)}
    other = [tiny_config(*SETTLED, "seed=1"), tiny_config(*SETTLED, "burn_in_years=4"),
             tiny_config(*SETTLED, "city.seed=2"),
             tiny_config(*SETTLED, "behaviour.school.local_bonus=0.5")]
    assert len({checkpoint.key(c) for c in [base, *other]}) == 5


def test_mismatched_checkpoint_is_refused(tmp_path) -> None:
    a, b = tiny_config(*SETTLED, "seed=1"), tiny_config(*SETTLED, "seed=2")
    SegregationModel(a, checkpoints=tmp_path)
    shutil.copy(checkpoint.path_for(a, tmp_path), checkpoint.path_for(b, tmp_path))
    with pytest.raises(ValueError, match="settled state of another config"):
        SegregationModel(b, checkpoints=tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_checkpoint_is_recomputed_not_used(tmp_path, damage, caplog) -> None:
    cfg = tiny_config(*SETTLED, "seed=1")
    want = SegregationModel(cfg).recorder.metrics_frame()
    SegregationModel(cfg, checkpoints=tmp_path)
    path = checkpoint.path_for(cfg, tmp_path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:500])
    else:  # rewrite one array with a wrong value, keeping the stored digest
        with np.load(path) as npz:
            state = {k: npz[k] for k in npz.files}
        state["families.ses"] = state["families.ses"].copy()
        state["families.ses"][0] = 2 - max(state["families.ses"][0], 0)
        with path.open("wb") as fh:
            np.savez(fh, **state)
    got = SegregationModel(cfg, checkpoints=tmp_path).recorder.metrics_frame()
    assert "recomputing" in caplog.text
    pd.testing.assert_frame_equal(got, want)
    assert checkpoint.load(cfg, tmp_path) is not None  # rewritten whole


def test_scenarios_of_a_comparison_share_one_checkpoint_per_replicate(tmp_path,
                                                                     monkeypatch) -> None:
    burn_ins: list[int] = []
    real = SegregationModel.burn_in

    def counting(model: SegregationModel) -> None:
        burn_ins.append(model.cfg.seed)
        real(model)

    monkeypatch.setattr(SegregationModel, "burn_in", counting)
    base = as_dict(tiny_config(*SETTLED, f"checkpoint_dir={tmp_path / 'ck'}",
                               "output.figures=false"))
    opts = {"scenarios": ["baseline", "tp_funding", "engagement"], "replicates": 2,
            "evaluation": {"backend": "serial", "n_jobs": 1}}
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(CompareConfig),
                                              {**base, **opts}))
    out = compare(cfg, tmp_path / "out", progress=False)
    assert sorted(burn_ins) == [cfg.seed, cfg.seed + 1]  # once per replicate seed
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 2
    raw = out["raw"]
    year0 = raw[raw["year"] == 0].drop(columns=["scenario"]).groupby("replicate")
    assert all(len(g.drop_duplicates()) == 1 for _, g in year0)  # same start in every scenario
