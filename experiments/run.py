"""One simulation run: ``python -m experiments.run [overrides]``.

Examples:
    python -m experiments.run
    python -m experiments.run seed=3 years=20 city=helsinki hydra.run.dir=out/x
    python -m experiments.run --multirun seed=1,2,3

The run directory (Hydra's ``hydra.run.dir``) receives the files listed in ``sim.outputs``.
A run whose directory already holds ``summary.json`` with the same config is skipped, so an
interrupted sweep with a fixed ``hydra.sweep.dir`` can simply be started again; a finished
run with another config is never overwritten.

"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim.config import as_dict, validate
from sim.outputs import remove_if_empty


def stop(run_dir: Path, exc: ValueError) -> NoReturn:
    """Report a bad config or input file in one line and exit 2, leaving no empty folder."""
    remove_if_empty(run_dir)
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate the config, run the model and write the run directory."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        cfg = validate(dcfg)
    except ValueError as exc:
        stop(run_dir, exc)
    from sim.outputs import is_complete, write_run

    if is_complete(run_dir):
        done = json.loads((run_dir / "summary.json").read_text())["config"]
        now = as_dict(cfg)
        done.pop("output", None), now.pop("output", None)  # how it is shown does not matter
        if done != now:
            print(f"error: {run_dir} already holds a finished run with another config; "
                  "choose another hydra.run.dir", file=sys.stderr)
            sys.exit(2)
        print(f"already done, skipping: {run_dir}")
        return
    from sim.model import SegregationModel

    logging.getLogger("MESA").setLevel(logging.WARNING)  # no per-step log lines
    t0 = time.perf_counter()
    try:
        model = SegregationModel(cfg)
    except ValueError as exc:  # a bad input file of city=from_files
        stop(run_dir, exc)
    model.run(progress=cfg.output.progress)
    write_run(model, run_dir, figures=cfg.output.figures)
    m = model.recorder.current
    print(
        f"done in {time.perf_counter() - t0:.1f} s: {cfg.city.preset} city, seed {cfg.seed}, "
        f"{cfg.years} years; school status H {m['seg_school_ses_H']:.3f}, "
        f"residential H {m['seg_res_ses_H']:.3f}, local share at grade 1 "
        f"{m['local_school_share_g1']:.2f}"
    )
    print(f"outputs written to {run_dir.resolve()}")


if __name__ == "__main__":
    main()
