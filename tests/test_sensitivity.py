"""Sensitivity analysis end to end on a tiny space; identical results on every backend."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import sim.evaluation as evaluation
from conftest import TINY, TINY_VALUES
from experiments.collect import collect
from experiments.compare import scenario_config
from experiments.sensitivity import (
    SensitivityConfig,
    check_space,
    load_space,
    run_sensitivity,
    split,
)
from experiments.sensitivity_figures import morris_figure, output_title
from sim.config import as_dict, load_config
from sim.evaluation import chunk_dir, load
from sim.model import SegregationModel

ROOT = Path(__file__).resolve().parent.parent
SPACE = str(ROOT / "tests" / "data" / "tiny_space.yaml")
STUDY = [*TINY_VALUES, "years=3", f"space={SPACE}", "n=2", "replicates=2"]


def study_config(*overrides: str) -> SensitivityConfig:
    """A typed sensitivity config from command-line style overrides."""
    base = OmegaConf.structured(SensitivityConfig)
    dot = OmegaConf.from_dotlist([*STUDY, *overrides])
    return OmegaConf.to_object(OmegaConf.merge(base, dot))


@pytest.fixture(scope="module")
def morris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("morris")
    return out, run_sensitivity(study_config("evaluation.backend=serial"), out, progress=False)


def test_morris_pipeline_writes_everything(morris: tuple[Path, dict]) -> None:
    out, result = morris
    for name in ("samples.parquet", "indices.csv", "robustness.csv", "design.parquet",
                 "config.yaml", "provenance.json", "space.yaml", "figures/morris.png",
                 "figures/robustness.png"):
        assert (out / name).exists(), name
    samples = pd.read_parquet(out / "samples.parquet")
    # Morris: n (k + 1) points, each with every replicate.
    assert len(samples) == 2 * (2 + 1) * 2
    assert list(samples.columns[:3]) == ["point", "replicate", "seed"]
    assert {"behaviour.reputation.inertia", "seg_school_ses_H@3",
            "engagement-baseline:seg_school_ses_H@2-3"} <= set(samples.columns)
    assert (samples["seed"] == samples["replicate"]).all()  # seed 0 + r: common random numbers
    idx = pd.read_csv(out / "indices.csv")
    assert list(idx.columns) == ["factor", "output", "index", "value", "ci_low", "ci_high",
                                 "noise_level", "above_noise"]
    assert set(idx["index"]) == {"mu", "mu_star", "sigma"}
    judged = idx[idx["index"] == "mu_star"]
    assert judged["noise_level"].gt(0).all() and judged["above_noise"].notna().all()
    robust = pd.read_csv(out / "robustness.csv")
    assert robust["share_ranks_first"].sum() == pytest.approx(1.0)
    provenance = OmegaConf.load(out / "provenance.json")
    assert {"git", "git_dirty", "versions", "config"} <= set(provenance)
    assert result["method"] == "morris"


def test_sobol_pipeline(tmp_path: Path) -> None:
    run_sensitivity(study_config("method=sobol", "evaluation.backend=serial",
                                 "evaluation.chunk_size=8"), tmp_path, progress=False)
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert len(samples) == 2 * (2 + 2) * 2  # N (k + 2) points x replicates
    idx = pd.read_csv(tmp_path / "indices.csv")
    assert set(idx["index"]) == {"S1", "ST"}
    assert (tmp_path / "figures" / "sobol.png").exists()


def test_one_output_and_groups(tmp_path: Path) -> None:
    space = ROOT / "tests" / "data" / "one_output_space.yaml"
    result = run_sensitivity(study_config(f"space={space}", "years=2", "evaluation.backend=serial",
                                          "evaluation.chunk_size=8"), tmp_path, progress=False)
    mu_star = result["indices"][result["indices"]["index"] == "mu_star"]
    assert set(mu_star["factor"]) == {"reputation", "behaviour.school.w_reputation"}
    assert result["robustness"].empty and not (tmp_path / "robustness.csv").exists()


def test_joblib_backend_is_byte_identical(morris: tuple[Path, dict], tmp_path: Path) -> None:
    run_sensitivity(study_config("evaluation.backend=joblib", "evaluation.n_jobs=2",
                                 "evaluation.chunk_size=3"), tmp_path, progress=False)
    ref, _ = morris
    for name in ("samples.parquet", "indices.csv", "robustness.csv"):
        assert (tmp_path / name).read_bytes() == (ref / name).read_bytes(), name


def test_submitit_local_launcher_is_byte_identical(morris: tuple[Path, dict],
                                                   tmp_path: Path) -> None:
    """Through Hydra's submitit_local launcher, from the command line, as on a cluster."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    out = tmp_path / "study"
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.sensitivity", *STUDY, "output.progress=false",
         "evaluation.backend=hydra", "evaluation.launcher=submitit_local",
         "evaluation.chunk_size=6", f"hydra.run.dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (out / "hydra" / ".submitit").is_dir()  # the jobs went through submitit
    ref, _ = morris
    assert (out / "samples.parquet").read_bytes() == (ref / "samples.parquet").read_bytes()


def test_resume_after_abort_recomputes_nothing(morris: tuple[Path, dict], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = evaluation.run_chunk, []

    def crash_after_two(*args, **kwargs):  # a job killed in the middle of the study
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[1].id)
        return real(*args, **kwargs)

    cfg = study_config("evaluation.backend=serial")
    monkeypatch.setattr(evaluation, "run_chunk", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_sensitivity(cfg, tmp_path, progress=False)
    study = load(tmp_path)
    assert [c for c in study.chunk_ids if study.states[c] == "done"] == calls
    stamps = {c: (chunk_dir(tmp_path, c) / "done.json").read_text() for c in calls}
    computed = []
    monkeypatch.setattr(evaluation, "run_chunk",
                        lambda *a, **k: computed.append(a[1].id) or real(*a, **k))
    run_sensitivity(cfg, tmp_path, progress=False)
    assert sorted(computed) == sorted(set(study.chunk_ids) - set(calls))  # none twice
    for c, stamp in stamps.items():  # the finished chunks were not rewritten
        assert (chunk_dir(tmp_path, c) / "done.json").read_text() == stamp
    ref, _ = morris
    for name in ("samples.parquet", "indices.csv"):
        assert (tmp_path / name).read_bytes() == (ref / name).read_bytes(), name


def test_collect_rebuilds_the_analysis(morris: tuple[Path, dict], tmp_path: Path) -> None:
    ref, _ = morris
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    for name in ("samples.parquet", "indices.csv", "robustness.csv"):
        (copy / name).unlink()
    assert collect(copy) == 0
    for name in ("samples.parquet", "indices.csv", "robustness.csv"):
        assert (copy / name).read_bytes() == (ref / name).read_bytes(), name
    table = pd.read_parquet(copy / "collected.parquet")
    assert {"point", "scenario", "seed", "replicate", "year",
            "behaviour.reputation.inertia"} <= set(table.columns)


def test_collect_names_missing_chunks(morris: tuple[Path, dict], tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    ref, _ = morris
    copy = tmp_path / "copy"
    shutil.copytree(ref, copy)
    lost = load(copy).chunk_ids[1]
    (chunk_dir(copy, lost) / "done.json").unlink()
    with caplog.at_level(logging.INFO):
        assert collect(copy) == 1
    assert f"missing: {lost}" in caplog.text


BAD_SPACES = {
    "unknown path": ("- path: behaviour.school.w_reputaton\n  bounds: [0.5, 1.5]\n",
                     "behaviour.school.w_reputaton does not exist: 'w_reputaton' is not in "
                     "behaviour.school"),
    "bounds in the wrong order": ("- path: behaviour.reputation.inertia\n  bounds: [0.9, 0.6]\n",
                                  "factors[0].bounds=[0.9, 0.6] is not allowed; expected low < "
                                  "high for behaviour.reputation.inertia"),
    "out of the config's range": ("- path: behaviour.reputation.inertia\n  bounds: [0.5, 1.5]\n",
                                  "at 1.5: config error: behaviour.reputation.inertia=1.5"),
    "list without scale": ("- path: behaviour.school.w_reputation\n  bounds: [0.5, 1.5]\n",
                           "give an item (path.<index>) or scale: true"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_fails_before_any_run(case: str, tmp_path: Path) -> None:
    factors, message = BAD_SPACES[case]
    space = tmp_path / "bad.yaml"
    space.write_text(f"name: bad\nfactors:\n{factors}outputs:\n- metric: seg_school_ses_H\n"
                     "  year: 2\n")
    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        run_sensitivity(study_config(f"space={space}"), out, progress=False)
    assert message in str(err.value), str(err.value)
    assert not out.exists()  # nothing planned, nothing run


def test_bad_space_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text("factors:\n- path: nope.x\n  bounds: [0, 1]\noutputs:\n"
                     "- metric: seg_school_ses_H\n  year: 2\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "experiments.sensitivity", *TINY,
                           f"space={space}", f"hydra.run.dir={out}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: space" in proc.stderr and "nope.x does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_sobol_needs_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="n=6 is not allowed for method=sobol"):
        split(study_config("method=sobol", "n=6"))


@pytest.mark.parametrize("space", ["default", "levers", "assumptions"])
def test_shipped_spaces_are_valid(space: str) -> None:
    parsed, _ = load_space(space)
    assert 8 <= len(parsed.factors) <= 15
    assert all(f.reason for f in parsed.factors)
    assert any(o.effect for o in parsed.outputs)
    base = load_config(["output.progress=false"])
    dicts = {s: as_dict(scenario_config(base, s)) for s in parsed.scenarios}
    columns = list(SegregationModel(base, levers=[]).recorder.metrics_frame().columns)
    check_space(parsed, dicts, columns, base.years)  # paths, types and both ends of ranges


def morris_indices(n_factors: int, outputs: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(n_factors)
    rows = []
    for out in outputs:
        for k in range(n_factors):
            mu = float(rng.gamma(1.0, 0.02))
            for index, value in (("mu_star", mu), ("sigma", mu * 0.8), ("mu", mu)):
                rows.append({"factor": f"behaviour.preferences.factor_{k}", "output": out,
                             "index": index, "value": value, "ci_low": 0.6 * mu,
                             "ci_high": 1.4 * mu, "noise_level": 0.016,
                             "above_noise": 0.6 * mu > 0.016})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_factors", [3, 40])
def test_morris_figure_is_one_readable_panel_per_output(n_factors: int) -> None:
    """Plain titles, one panel each, factor labels that never overlap however many."""
    outputs = ["seg_school_ses_H@20", "local_school_share_g1@16-20",
               "flexible_catchment-baseline:seg_school_ses_H@20"]
    fig = morris_figure(morris_indices(n_factors, outputs))
    fig.canvas.draw()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "School segregation by family status, year 20",
        "First-graders at their local school, years 16-20 (mean)",
        "Effect of flexible_catchment (scenario minus baseline) on:\n"
        "School segregation by family status, year 20"]
    assert output_title(outputs[2]) == panels[2].get_title()
    renderer = fig.canvas.get_renderer()
    for ax in panels:
        boxes = sorted((t.get_window_extent(renderer) for t in ax.get_yticklabels()),
                       key=lambda b: b.y0)
        assert len(boxes) == n_factors
        assert all(a.y1 <= b.y0 + 0.5 for a, b in zip(boxes, boxes[1:], strict=False))
        assert min(b.height for b in boxes) >= 8  # pixels: 8-point labels at the figure's dpi
    plt.close(fig)
