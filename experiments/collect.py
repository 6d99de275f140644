"""Gather any sweep, comparison or sensitivity folder into one tidy table.

``python -m experiments.collect <dir>`` writes ``<dir>/collected.parquet``, one row per run
and year, with the run's labels: the swept parameters (a sweep of ``experiments.run``), or
``scenario, seed, replicate`` (a comparison) and also ``point`` and the factor values (a
sensitivity study). It names the chunks (or sweep runs) that are missing or failed, and when
nothing is missing it rebuilds the folder's analysis from the chunk files (``effects.csv``
and ``report.html``; ``samples.parquet``, ``indices.csv``, ``robustness.csv`` and figures).
Exit status: 0 if complete, 1 if something is missing or failed, 2 for a folder it cannot read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from experiments import compare, sensitivity
from experiments.run import sweep_overrides
from sim.evaluation import MANIFEST, Study, load
from sim.io import write_parquet

log = logging.getLogger(__name__)
OUTPUT = "collected.parquet"


def sweep_jobs(sweep_dir: Path) -> list[frozenset[str]]:
    """The jobs a Hydra sweep asked for, as sets of ``key=value`` overrides (``multirun.yaml``)."""
    by_key = {o.get_key_element(): [f"{o.get_key_element()}={v}" for v in (
        o.sweep_string_iterator() if o.is_sweep_override() else [o.get_value_element_as_str()])]
        for o in sweep_overrides(sweep_dir)}  # a key given twice: the last one holds, as in Hydra
    choices = list(by_key.values())
    return [frozenset(job) for job in itertools.product(*choices)] if choices else []


def collect_sweep(sweep_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Runs of a sweep folder (``experiments.run --multirun``), labelled by their overrides.

    Returns:
        The tidy table and the problems found: jobs of ``multirun.yaml`` without a finished
        run, and run folders without ``summary.json`` (failed or interrupted).
    """
    frames, done, problems = [], set(), []
    for summary_path in sorted(sweep_dir.rglob("summary.json")):
        run = summary_path.parent
        summary = json.loads(summary_path.read_text())
        df = pd.read_parquet(run / "metrics.parquet")
        labels = {"run": str(run.relative_to(sweep_dir)), "seed": summary["seed"],
                  "scenario": summary["config"]["scenario"]["name"]}
        for ov in summary["overrides"]:
            key, _, value = ov.partition("=")
            labels.setdefault(key, value)
        df = pd.concat([pd.DataFrame({k: [v] * len(df) for k, v in labels.items()}), df],
                       axis=1)
        frames.append(df)
        done.add(frozenset(summary["overrides"]))
    own = sweep_dir / OUTPUT  # this command's earlier table is no unfinished run
    for run in sorted({p.parent for p in sweep_dir.rglob("*.parquet") if p != own}):
        if not (run / "summary.json").exists():
            problems.append(f"unfinished run folder: {run.relative_to(sweep_dir)}")
    problems += [f"missing job: {','.join(sorted(job))}" for job in sweep_jobs(sweep_dir)
                 if job not in done]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return table, sorted(set(problems))


def study_table(study: Study) -> pd.DataFrame:
    """A study's runs, with the factor values of sensitivity points."""
    table = study.table()
    design = study.root / "design.parquet"
    if design.exists() and not table.empty:
        table = table.merge(pd.read_parquet(design), on="point", how="left")
    return table


def collect(folder: Path) -> int:
    """Collect one folder; prints what is missing; returns the exit status."""
    if (folder / MANIFEST).exists():
        study = load(folder)
        write_parquet(study_table(study), folder / OUTPUT)
        log.info("table written to %s", (folder / OUTPUT).resolve())
        log.info("%s", study.summary())
        for chunk, error in study.errors().items():
            log.info("  %s: %s", chunk, error)
        if not study.complete:
            log.info("re-run the study's command to compute the missing and failed chunks")
            return 1
        cfg = OmegaConf.load(folder / "config.yaml")
        (sensitivity.analyse if "method" in cfg else compare.finish)(study)
        log.info("analysis rebuilt in %s", folder.resolve())
        return 0
    table, problems = collect_sweep(folder)
    if table.empty and not problems:
        print(f"error: {folder} holds no study (evaluation.json) and no runs (summary.json)",
              file=sys.stderr)
        return 2
    write_parquet(table, folder / OUTPUT)
    log.info("table written to %s", (folder / OUTPUT).resolve())
    n_runs = table["run"].nunique() if not table.empty else 0
    log.info("%d finished runs%s", n_runs, f"; {len(problems)} problems:" if problems else "")
    for p in problems:
        log.info("  %s", p)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m experiments.collect",
                                     description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path, help="sweep, comparison or sensitivity folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    return collect(args.folder)


if __name__ == "__main__":
    sys.exit(main())
