"""Run directory: resolved config, Parquet tables, summary and figures, written atomically.

A run directory holds:

* ``config.yaml``: the resolved configuration;
* ``metrics.parquet``: one row a year (``sim.metrics``);
* ``units.parquet``: one row per school and daycare per year;
* ``areas.parquet``: one row per district, catchment and cell per year;
* ``ages.parquet``: child flows by age (0-15) per year: at risk and leaving the city by
  status, born in the city, first moves within the city (``YearRecorder.ages_frame``);
* ``summary.json``: versions, git hash and dirty flag, seed, overrides, resolved config and
  final-year metrics;
* ``figures/``: maps and time series (``sim.figures``).

Every file is written to a temporary name and renamed, so a crash leaves no half-written
file, and ``summary.json`` is written last: its presence marks a complete run (sweeps skip it).
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from omegaconf import OmegaConf

from sim.config import as_dict
from sim.figures import draw_all
from sim.io import remove_stale_temporaries, write_parquet, write_text
from sim.units import add_labels

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sim.model import SegregationModel

PACKAGES = ("mesa", "numpy", "numba", "pandas", "pyarrow", "hydra-core", "matplotlib", "scipy",
            "joblib", "SALib", "hydra-submitit-launcher")

def git_hash() -> str:
    """Commit of the source tree, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def git_dirty() -> bool | None:
    """True if the source tree has uncommitted changes; None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
            text=True, check=True, cwd=Path(__file__).resolve().parent,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance(config: dict) -> dict:
    """What produced an output folder: resolved config, package versions, git hash and state."""
    return {"git": git_hash(), "git_dirty": git_dirty(), "versions": versions(),
            "config": config}


def write_provenance(out_dir: Path, config: dict) -> None:
    """Write ``config.yaml`` (the resolved config) and ``provenance.json`` to an output folder.

    Every output folder gets them: run (in ``summary.json``), sweep, comparison, sensitivity.
    """
    out_dir = Path(out_dir)
    write_text(OmegaConf.to_yaml(OmegaConf.create(config)), out_dir / "config.yaml")
    write_text(json.dumps(provenance(config), indent=2, sort_keys=True),
               out_dir / "provenance.json")


def versions() -> dict[str, str]:
    """Versions of Python and the key packages."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def remove_if_empty(run_dir: Path) -> None:
    """Remove a run directory that nothing was written to (after an input error)."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()


def is_complete(run_dir: Path) -> bool:
    """True if ``run_dir`` holds a finished run (``summary.json`` is written last)."""
    return (Path(run_dir) / "summary.json").exists()


def temporary_places(units: pd.DataFrame, rule: str) -> list[dict]:
    """Schools that ran beyond their seats (``capacity > design_capacity``) in any year.

    Logs them (a warning with ``city.capacity_rule=hold``); returns one record per school:
    its ids, its seats (the register's with ``city=from_files``), the most temporary places
    it had and in how many years.
    """
    schools = units[units["kind"].str.startswith("school")]
    extra = schools.assign(extra=schools["capacity"] - schools["design_capacity"])
    over = extra[extra["extra"] > 0]
    rows = [{"unit_id": uid, "source_id": str(g["source_id"].iloc[0]),
             "name": str(g["name"].iloc[0]), "seats": int(g["design_capacity"].iloc[0]),
             "most_temporary_places": int(g["extra"].max()), "years": int(len(g))}
            for uid, g in over.groupby("unit_id", sort=True)]
    if rows:
        worst = sorted(rows, key=lambda r: -r["most_temporary_places"])
        # Beyond register seats that were meant to hold, it is news; with the guarantee, a
        # fact of the rule (both are shown on the terminal).
        level = logging.WARNING if rule == "hold" else logging.INFO
        log.log(level, "temporary places beyond the seats (city.capacity_rule=%s) at %d schools: "
                    "%s (summary.json temporary_places; units.parquet capacity - "
                    "design_capacity)", rule, len(rows), ", ".join(
                        f"{r['source_id']} {r['seats']} seats +{r['most_temporary_places']}"
                        for r in worst[:5]) + (", ..." if len(rows) > 5 else ""))
    return rows


def write_run(model: SegregationModel, run_dir: Path, figures: bool = True,
              overrides: list[str] | None = None) -> Path:
    """Write all outputs of a finished model run to ``run_dir``.

    Args:
        model: A model that has run.
        run_dir: Target directory (created if needed).
        figures: Also draw the figures.
        overrides: The command-line overrides of the run (kept in ``summary.json`` so that
            ``experiments.collect`` can label a sweep's runs).

    Returns:
        The run directory.

    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(run_dir)  # left by an earlier run of this folder that was killed
    cfg = as_dict(model.cfg)
    write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)), run_dir / "config.yaml")
    metrics = model.recorder.metrics_frame()
    write_parquet(metrics, run_dir / "metrics.parquet")
    units = add_labels(model.recorder.units_frame(), model, "index")
    write_parquet(units, run_dir / "units.parquet")
    write_parquet(add_labels(model.recorder.areas_frame(), model, "area_id"),
                  run_dir / "areas.parquet")
    write_parquet(model.recorder.ages_frame(), run_dir / "ages.parquet")
    if figures:
        draw_all(model, metrics, run_dir / "figures")
    final = metrics.iloc[-1].to_dict()
    summary = {
        "seed": model.cfg.seed,
        "years": model.cfg.years,
        "preset": model.cfg.city.preset,
        **provenance(cfg),
        "overrides": list(overrides or []),
        "levers": [repr(lever) for lever in model.levers],
        "lever_results": [lever.results() for lever in model.levers],
        "temporary_places": temporary_places(units, model.cfg.city.capacity_rule),
        "final": {k: (None if pd.isna(v) else float(v)) for k, v in final.items()},
        "config": cfg,
        # Where the grid lies: cell c is column c // height, row c % height (City.map_xy).
        "geography": {"crs": model.city.crs, "origin": list(model.city.origin),
                      "width": model.city.width, "height": model.city.height,
                      "cell_size_m": model.city.cell_km * 1000.0},
    }
    write_text(json.dumps(summary, indent=2, sort_keys=True), run_dir / "summary.json")
    return run_dir
