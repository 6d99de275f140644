"""One simulation run: ``python -m experiments.run [overrides]``.

Examples:
    python -m experiments.run
    python -m experiments.run seed=3 years=20 city=helsinki hydra.run.dir=out/x
    python -m experiments.run --multirun seed=1,2,3

The run directory (Hydra's ``hydra.run.dir``) receives the files listed in ``sim.outputs``.
A sweep (``--multirun``) names each run's folder by its overrides (``seed=2,years=10``), so a
folder always means the same run whatever the order of the sweep's values; the sweep folder
gets ``config.yaml`` and ``provenance.json``. A run whose folder already holds
``summary.json`` with the same config is skipped, so an interrupted sweep with a fixed
``hydra.sweep.dir`` can simply be started again. A finished run with another config is never
overwritten: a single run stops with an error; in a sweep that job is reported as failed and
the other jobs still run.
Year 0 is the settled city after ``burn_in_years`` (``start=settled``, the default), restored
from ``checkpoint_dir`` when an earlier run computed it; ``start=fresh`` starts from the
generated city.

"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from experiments.cli import entry, user_errors
from scenarios import build_levers
from sim.config import Config, as_dict, check_overrides, set_path, validate
from sim.model import SegregationModel
from sim.outputs import is_complete, write_provenance, write_run

log = logging.getLogger(__name__)
USAGE = """\
usage: python -m experiments.run [--multirun] [key=value ...]

One simulation run of the model (default: city=small, 20 years from the settled city).

main options:
  city=small|helsinki|from_files   the city preset (from_files: real data files, docs/geography)
  scenario=baseline|tp_funding|... a shipped scenario (conf/scenario/)
  seed=0  years=20                  the run's seed and number of years
  start=settled|fresh               year 0 is the settled city (burn-in) or the generated one
  hydra.run.dir=out/x               the run folder (default outputs/<date>_<scenario>_seed<seed>)
  --multirun seed=1,2,3             a sweep, one folder per run (hydra/launcher=joblib: parallel)
"""


def already_done(run_dir: Path, cfg: Config, sweep: bool) -> bool:
    """True if ``run_dir`` holds this run, finished.

    Raises:
        ValueError: If it holds a finished run with another config.
    """
    if not is_complete(run_dir):
        return False
    done = json.loads((run_dir / "summary.json").read_text())["config"]
    now = as_dict(cfg)
    done.pop("output", None), now.pop("output", None)  # how it is shown does not matter
    if done != now:
        where = "hydra.sweep.dir" if sweep else "hydra.run.dir"
        raise ValueError(f"{where}: {run_dir} already holds a finished run with another "
                         f"config; expected a new folder: choose another {where}")
    return True


def sweep_overrides(sweep_dir: Path) -> list[Override]:
    """The parsed overrides of the sweep in ``sweep_dir`` (``multirun.yaml``; [] if none)."""
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return []
    return OverridesParser.create().parse_overrides(
        list(OmegaConf.load(path).hydra.overrides.task))


def sweep_config(cfg: Config, sweep_dir: Path) -> dict:
    """The config shared by a sweep's jobs: a job's config with the swept keys blanked."""
    d = as_dict(cfg)
    for ov in sweep_overrides(sweep_dir):
        if not ov.is_sweep_override():
            continue
        try:
            set_path(d, ov.get_key_element().lstrip("+~"),
                     "swept: see multirun.yaml and each run's summary.json")
        except ValueError:  # not a config key (e.g. a Hydra option): nothing to blank
            continue
    return d


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate the config, build the scenario's levers, run the model, write the run folder."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    sweep = hc.mode == RunMode.MULTIRUN
    with user_errors(run_dir, sweep):
        check_overrides(list(hc.overrides.task))
        cfg = validate(dcfg)
        levers = build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")
        done = already_done(run_dir, cfg, sweep)
        if sweep:
            write_provenance(Path(hc.sweep.dir), sweep_config(cfg, Path(hc.sweep.dir)))
        if done:
            log.info("already done, skipping: %s", run_dir)
            return
        t0 = time.perf_counter()
        model = SegregationModel(cfg, levers=levers, checkpoints=cfg.checkpoint_dir or None)
        model.run(progress=cfg.output.progress)
        write_run(model, run_dir, figures=cfg.output.figures, overrides=list(hc.overrides.task))
    m = model.recorder.current
    log.info("done in %.1f s: %s city, seed %d, %d years; school status H %.3f, "
             "residential H %.3f, local share at grade 1 %.2f", time.perf_counter() - t0,
             cfg.city.preset, cfg.seed, cfg.years, m["seg_school_ses_H"], m["seg_res_ses_H"],
             m["local_school_share_g1"])
    log.info("outputs written to %s", run_dir.resolve())


if __name__ == "__main__":
    entry(main, USAGE)
