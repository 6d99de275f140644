"""Real-geography benchmark: ``python benchmarks/geo.py --years 20``.

Prints one JSON line per city built from files (``city=from_files``):

* ``sample``: the shipped sample district (``data/sample``);
* ``helsinki_grid``: a full-size grid, the ``helsinki`` preset's city written in the input
  formats (``sim.geodata.write_city``) with its initial families counted in the grid by
  status and language (about 9,500 land cells of 11,520, 60,000 families);
* ``helsinki_synthetic``: the ``helsinki`` preset itself, for comparison.

``setup_s`` is reading the files and building the model (city, families, first choices);
``run_s`` the simulated years; ``write_s`` the run directory with figures. Kernels are
compiled (and cached) before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from sim.config import load_config  # noqa: E402
from sim.geo_sample import SAMPLE_DIR, SAMPLE_FILES  # noqa: E402
from sim.geodata import GRID_COLUMNS, write_city  # noqa: E402
from sim.model import SegregationModel  # noqa: E402
from sim.outputs import write_run  # noqa: E402


def overrides(paths: dict) -> list[str]:
    return ["city=from_files", "output.progress=false",
            *(f"city.{k}={v}" for k, v in paths.items())]


def helsinki_files(out: Path) -> dict:
    """The helsinki preset's city and initial families, written as input files."""
    model = SegregationModel(load_config(["city=helsinki", "output.progress=false"]))
    paths = write_city(model.city, out)
    f = model.families
    a = f.active
    n = model.city.n_cells
    grid = pd.read_csv(paths["grid"], dtype=str, keep_default_na=False)
    grid["families"] = np.bincount(f.cell[a], minlength=n)
    for k, (col,) in enumerate(GRID_COLUMNS["ses"][2]):
        grid[col] = np.bincount(f.cell[a], weights=f.ses[a] == k, minlength=n).astype(int)
    for k, col in enumerate(GRID_COLUMNS["lang"]):
        grid[col] = np.bincount(f.cell[a], weights=f.lang[a] == k, minlength=n).astype(int)
    grid.to_csv(paths["grid"], index=False)
    return paths


def measure(name: str, config: list[str], years: int, out: Path) -> dict:
    t0 = time.perf_counter()
    model = SegregationModel(load_config([*config, f"years={years}"]))
    t1 = time.perf_counter()
    model.run()
    t2 = time.perf_counter()
    write_run(model, out / name)
    t3 = time.perf_counter()
    c = model.city
    return {"city": name, "years": years, "cells": c.n_cells, "land_cells": int(c.land.sum()),
            "families": c.initial_families(model.cfg.city),
            "schools": len(model.schools.cell), "daycares": len(model.daycares.cell),
            "setup_s": round(t1 - t0, 2), "run_s": round(t2 - t1, 2),
            "write_s": round(t3 - t2, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=20)
    args = parser.parse_args()
    sample = {k: SAMPLE_DIR / v for k, v in SAMPLE_FILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        SegregationModel(load_config([*overrides(sample), "years=1"])).run()  # JIT, cached
        for name, config in (
                ("sample", overrides(sample)),
                ("helsinki_grid", overrides(helsinki_files(out / "files"))),
                ("helsinki_synthetic", ["city=helsinki", "output.progress=false"])):
            print(json.dumps(measure(name, config, args.years, out)), flush=True)


if __name__ == "__main__":
    main()
