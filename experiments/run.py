"""One simulation run: ``python -m experiments.run [overrides]``.

Examples:
    python -m experiments.run
    python -m experiments.run seed=3 years=20 city=helsinki hydra.run.dir=out/x
    python -m experiments.run --multirun seed=1,2,3

The run directory (Hydra's ``hydra.run.dir``) receives the files listed in ``sim.outputs``.
Year 0 is the settled city after ``burn_in_years`` (``start=settled``, the default), restored
from ``checkpoint_dir`` when an earlier run computed it; ``start=fresh`` starts from the
generated city.
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

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from scenarios import build_levers
from sim.config import as_dict, validate
from sim.model import SegregationModel
from sim.outputs import is_complete, remove_if_empty, write_run

log = logging.getLogger(__name__)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate the config, build the scenario's levers, run the model, write the run folder."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        cfg = validate(dcfg)
        levers = build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")
        if is_complete(run_dir):
            done = json.loads((run_dir / "summary.json").read_text())["config"]
            now = as_dict(cfg)
            done.pop("output", None), now.pop("output", None)  # how it is shown does not matter
            if done != now:
                raise ValueError(f"{run_dir} already holds a finished run with another config; "
                                 "choose another hydra.run.dir (hydra.sweep.dir in a sweep)")
            log.info("already done, skipping: %s", run_dir)
            return
        t0 = time.perf_counter()
        model = SegregationModel(cfg, levers=levers, checkpoints=cfg.checkpoint_dir or None)
    except ValueError as exc:
        remove_if_empty(run_dir)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    model.run(progress=cfg.output.progress)
    write_run(model, run_dir, figures=cfg.output.figures)
    m = model.recorder.current
    log.info("done in %.1f s: %s city, seed %d, %d years; school status H %.3f, "
             "residential H %.3f, local share at grade 1 %.2f", time.perf_counter() - t0,
             cfg.city.preset, cfg.seed, cfg.years, m["seg_school_ses_H"], m["seg_res_ses_H"],
             m["local_school_share_g1"])
    log.info("outputs written to %s", run_dir.resolve())


if __name__ == "__main__":
    main()
