"""Scenario comparison with common random numbers.

``python -m experiments.compare scenarios='[baseline,tp_funding,engagement]' replicates=8
years=20`` runs every scenario with the same replicate seeds (replicate r uses
``seed + r`` in every scenario), in parallel on the available cores, and writes to its run
directory:

* ``effects.csv``: paired differences against the baseline for the key metrics at every
  year, ``scenario, metric, year, baseline_mean, scenario_mean, mean_diff, ci_low, ci_high,
  n_replicates`` (95% t-intervals over replicates);
* ``replicates.parquet``: the raw per-replicate metrics (one row per scenario, replicate and
  year);
* ``report.html``: a self-contained report for non-modellers (``experiments.report``).

Any model parameter can be overridden as in ``experiments.run`` (``city=helsinki``,
``behaviour.school.enabled=false``...); they apply to every scenario. Year 0 is the settled
city (``start=settled``, default): each replicate's burn-in runs once, and every scenario of
that replicate starts from its checkpoint; ``start=fresh`` starts from the generated city.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from joblib import Parallel, delayed
from omegaconf import DictConfig, OmegaConf
from scipy import stats
from tqdm import tqdm

from experiments.report import write_report
from scenarios import build_levers
from sim.config import CONF_DIR, Config, as_dict, validate
from sim.io import atomic_write, write_parquet
from sim.metrics import counts
from sim.model import SegregationModel
from sim.outputs import remove_if_empty

log = logging.getLogger(__name__)

KEY_METRICS = (
    "seg_school_ses_H", "seg_school_lang_H", "seg_res_ses_H", "seg_res_lang_H",
    "seg_daycare_ses_H", "excess_school_ses_H", "local_school_share_g1",
    "local_school_share_g1_renewal", "local_school_share_g7", "local_school_share_g7_renewal",
    "outcome_gap_decile", "outmigration_rate", "move_rate", "policy_cost_eur",
)


@dataclass
class CompareConfig(Config):
    """A model config plus what to compare."""

    scenarios: list[str] = field(default_factory=lambda: ["baseline", "tp_funding",
                                                          "engagement"])
    replicates: int = 8  # assumption: enough for 95% intervals on paired differences
    n_jobs: int = 0  # parallel processes; 0 = all cores
    horizons: list[int] = field(default_factory=lambda: [10, 20])


ConfigStore.instance().store(name="compare_base", node=CompareConfig)


def available_scenarios() -> list[str]:
    """Names of the shipped scenarios (``conf/scenario/*.yaml``)."""
    return sorted(p.stem for p in (CONF_DIR / "scenario").glob("*.yaml"))


def scenario_config(base: Config, name: str) -> Config:
    """``base`` with a scenario, validated.

    Args:
        base: The shared model config.
        name: A shipped scenario (``conf/scenario/<name>.yaml``) or the path of a scenario
            file of one's own (``*.yaml``).

    Raises:
        ValueError: Unknown scenario, or a scenario whose levers are invalid.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONF_DIR / "scenario" / (
        name + ".yaml")
    if not path.exists():
        raise ValueError(f"scenarios: {name!r} is not a scenario; available: "
                         f"{', '.join(available_scenarios())} or the path of a .yaml file")
    d = as_dict(base)
    d["scenario"] = OmegaConf.to_container(OmegaConf.load(path))
    try:
        cfg = validate(d)
        scenario_levers(cfg)
        return cfg
    except ValueError as exc:
        raise ValueError(f"scenario file {path}: {exc}") from exc


def split(cfg: CompareConfig) -> tuple[Config, dict[str, Any]]:
    """Separate the model config from the comparison settings, and check the latter."""
    d = as_dict(cfg)
    opts = {k: d.pop(k) for k in ("scenarios", "replicates", "n_jobs", "horizons")}
    if not opts["scenarios"] or opts["scenarios"][0] != "baseline":
        raise ValueError(f"scenarios={opts['scenarios']!r} is not allowed; expected a list "
                         "starting with baseline")
    if len(set(opts["scenarios"])) != len(opts["scenarios"]):
        raise ValueError(f"scenarios={opts['scenarios']!r} lists a scenario twice")
    if not isinstance(opts["replicates"], int) or opts["replicates"] < 2:
        raise ValueError(f"replicates={opts['replicates']!r} is not allowed; expected >= 2")
    return validate(d), opts


def scenario_levers(cfg: Config) -> list:
    """The levers of ``cfg``'s scenario, built fresh (levers keep per-run state)."""
    return build_levers(cfg.scenario.levers, f"scenario {cfg.scenario.name}")


def check_levers(cfgs: dict[str, Config]) -> None:
    """Build each scenario's model once, checking lever targets against the city.

    Unknown school ids or overlapping shared catchments then fail before any run starts or
    any file is written.
    """
    for name, cfg in cfgs.items():
        try:
            SegregationModel(cfg, levers=scenario_levers(cfg),
                             checkpoints=cfg.checkpoint_dir or None)
        except ValueError as exc:
            raise ValueError(f"scenario {name}: {exc}") from exc


def settle(cfg: Config) -> None:
    """Compute (or find) the settled-state checkpoint of ``cfg`` (``sim.checkpoint``)."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    SegregationModel(cfg, checkpoints=cfg.checkpoint_dir)


def settle_replicates(base: Config, replicates: int, n_jobs: int) -> None:
    """One settled state per replicate seed, in parallel, before any scenario runs.

    Every scenario of a replicate then restores its baseline twin's state, so the burn-in
    runs once per replicate, not once per scenario and replicate.
    """
    if base.start != "settled" or not base.checkpoint_dir or base.burn_in_years == 0:
        return
    Parallel(n_jobs=n_jobs)(delayed(settle)(replace(base, seed=base.seed + r))
                            for r in range(replicates))


def families_by_status(model: SegregationModel) -> np.ndarray:
    """Housed families per cell and status class, shape (n_cells, 3)."""
    f = model.families
    a = f.active & (f.cell >= 0)
    return counts(f.cell[a], f.ses[a], model.city.n_cells, 3)


def run_one(cfg: Config, replicate: int) -> dict[str, Any]:
    """One replicate of one scenario; returns its metrics and what the report maps need."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    model = SegregationModel(cfg, levers=scenario_levers(cfg),
                             checkpoints=cfg.checkpoint_dir or None)
    catch0 = (model.city.catchment_lower.copy(), model.city.catchment_upper.copy())
    status0 = families_by_status(model)
    model.run()
    df = model.recorder.metrics_frame()
    df.insert(0, "replicate", replicate)
    df.insert(0, "seed", cfg.seed)
    df.insert(0, "scenario", cfg.scenario.name)
    return {
        "scenario": cfg.scenario.name, "replicate": replicate, "metrics": df,
        "status0": status0, "status": families_by_status(model),
        "catchments0": catch0,
        "catchments": (model.city.catchment_lower.copy(), model.city.catchment_upper.copy()),
        "shared": model.shared_cell.copy(),
        "levers": [repr(lv) for lv in model.levers],
        "description": cfg.scenario.description,
    }


def paired_effects(raw: pd.DataFrame, metrics: tuple[str, ...] = KEY_METRICS) -> pd.DataFrame:
    """Paired differences (scenario - baseline, same replicate seed) with 95% t-intervals.

    Args:
        raw: Per-replicate metrics with columns ``scenario, replicate, year`` and metrics.
        metrics: Metric columns to compare.

    Returns:
        One row per non-baseline scenario, metric and year.
    """
    base = raw[raw["scenario"] == "baseline"].set_index(["replicate", "year"])
    rows = []
    for name, grp in raw[raw["scenario"] != "baseline"].groupby("scenario", sort=False):
        s = grp.set_index(["replicate", "year"])
        common = s.index.intersection(base.index)
        for metric in metrics:
            diff = (s.loc[common, metric] - base.loc[common, metric]).unstack("replicate")
            b = base.loc[common, metric].unstack("replicate")
            v = s.loc[common, metric].unstack("replicate")
            n = diff.notna().sum(axis=1)
            mean = diff.mean(axis=1)
            half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * diff.std(axis=1, ddof=1) / np.sqrt(n)
            half = half.fillna(0.0)  # identical differences (e.g. before a lever starts)
            rows.append(pd.DataFrame({
                "scenario": name, "metric": metric, "year": diff.index.astype(int),
                "baseline_mean": b.mean(axis=1).to_numpy(),
                "scenario_mean": v.mean(axis=1).to_numpy(), "mean_diff": mean.to_numpy(),
                "ci_low": (mean - half).to_numpy(), "ci_high": (mean + half).to_numpy(),
                "n_replicates": n.to_numpy(),
            }))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def compare(cfg: CompareConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run the comparison and write ``effects.csv``, ``replicates.parquet``, ``report.html``.

    Args:
        cfg: Comparison config.
        out_dir: Run directory.
        progress: Show a progress bar.

    Returns:
        The paths written and the effects table.
    """
    base, opts = split(cfg)
    cfgs = [scenario_config(base, name) for name in opts["scenarios"]]
    scen_cfgs = {c.scenario.name: c for c in cfgs}
    if len(scen_cfgs) != len(cfgs):
        raise ValueError(f"scenarios={opts['scenarios']!r}: two scenarios share a name")
    opts["scenarios"] = list(scen_cfgs)
    check_levers(scen_cfgs)
    tasks = [(replace(scen_cfgs[name], seed=base.seed + r), r)
             for name in opts["scenarios"] for r in range(opts["replicates"])]
    n_jobs = opts["n_jobs"] or -1
    settle_replicates(base, opts["replicates"], n_jobs)
    gen = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(run_one)(c, r) for c, r in tasks)
    results = list(tqdm(gen, total=len(tasks), desc="runs", disable=not progress))
    raw = pd.concat([r["metrics"] for r in results], ignore_index=True)
    effects = paired_effects(raw)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(raw, out_dir / "replicates.parquet")
    atomic_write(out_dir / "effects.csv", lambda p: effects.to_csv(p, index=False))
    report = write_report(results, raw, effects, opts, base, out_dir / "report.html")
    return {"effects": effects, "report": report, "raw": raw}


@hydra.main(config_path="../conf", config_name="compare", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    """Validate, compare the scenarios and print where the outputs went."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg = OmegaConf.to_object(dcfg)
    t0 = time.perf_counter()
    try:
        compare(cfg, out_dir, progress=cfg.output.progress)
    except ValueError as exc:  # config and scenario errors come before any output
        remove_if_empty(out_dir)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    log.info("compared %d scenarios x %d replicates in %.0f s", len(cfg.scenarios),
             cfg.replicates, time.perf_counter() - t0)
    log.info("outputs written to %s (open report.html)", out_dir.resolve())


if __name__ == "__main__":
    main()
