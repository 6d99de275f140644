"""One evaluation layer for everything that runs many simulations.

Sensitivity analysis, scenario comparisons and (later) calibration all hand a list of tasks
to :func:`evaluate`. A *task* is a small JSON-able dict (a scenario name, a seed, parameter
values...); a *runner* is a module-level function ``runner(context, task) -> dict`` that runs
one simulation and returns a summary: ``{"table": DataFrame, **extras}``, never a model, so
memory stays flat over thousands of runs in one worker. The *context* is what all tasks share
(the base config, the scenario files...).

Tasks are grouped into *chunks*, the unit of work. A chunk's id is the hash of the runner's
name, the context and its tasks, and its folder ``<root>/chunks/<id>/`` receives, each
written atomically:

* ``tasks.json``: the chunk's tasks (written when the study is planned);
* ``table.parquet``: the runner tables of its tasks, in task order;
* ``extras.pkl``: the other keys the runner returned, if any;
* ``done.json``: the marker, written last; or ``failed.json`` with the error.

:func:`evaluate` skips chunks that are done, so re-running a command after a crash or a
cancelled job computes only what is missing; a chunk that fails is reported and does not stop
the others. Three backends give identical results (each task depends only on its inputs and
the chunks are read back in plan order): ``serial`` (in process), ``joblib`` (local processes)
and ``hydra`` (a Hydra multirun of ``python -m sim.worker``, one job per chunk, on any
launcher: ``submitit_local``, ``submitit_slurm``, ``joblib``...). :func:`load` reads any
study folder back and says which chunks are missing or failed.

This module knows nothing of scenarios or experiments: the runner is passed in (and named by
``module:qualname`` for the Hydra backend).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import pickle
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from joblib import Parallel, delayed
from tqdm import tqdm

from sim.io import atomic_write, write_parquet, write_text

log = logging.getLogger(__name__)

Runner = Callable[[dict, dict], dict[str, Any]]
BACKENDS = ("serial", "joblib", "hydra")
MANIFEST = "evaluation.json"


@dataclass
class EvaluationConfig:
    """How to run a study's simulations (``evaluation.*`` in every many-run command)."""

    backend: str = "joblib"  # serial | joblib | hydra
    chunk_size: int = 4  # runs per chunk; assumption: a few seconds of work on city=small
    n_jobs: int = 0  # joblib processes; 0 = all cores
    # Hydra backend: the launcher (conf/hydra/launcher/ or a plugin's) and extra Hydra
    # overrides for it; on the command line quote the items:
    # 'evaluation.launcher_overrides=["hydra.launcher.partition=short"]'.
    launcher: str = "submitit_local"
    launcher_overrides: list[str] = field(default_factory=list)


def check(cfg: EvaluationConfig) -> None:
    """Check an evaluation config; raises ``ValueError`` naming key, value and what is allowed."""
    if cfg.backend not in BACKENDS:
        raise ValueError(f"evaluation.backend={cfg.backend!r} is not allowed; expected one of "
                         f"{list(BACKENDS)}")
    if not isinstance(cfg.chunk_size, int) or cfg.chunk_size < 1:
        raise ValueError(f"evaluation.chunk_size={cfg.chunk_size!r} is not allowed; expected "
                         "an integer >= 1")
    if not isinstance(cfg.n_jobs, int) or cfg.n_jobs < 0:
        raise ValueError(f"evaluation.n_jobs={cfg.n_jobs!r} is not allowed; expected an "
                         "integer >= 0 (0 = all cores)")


def digest(obj: Any) -> str:
    """Stable 16-hex-digit hash of a JSON-able object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def runner_name(runner: Runner) -> str:
    """``module:qualname`` of a module-level runner."""
    return f"{runner.__module__}:{runner.__qualname__}"


def resolve_runner(name: str) -> Runner:
    """The runner named by :func:`runner_name` (used by workers that start from a folder)."""
    module, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Chunk:
    """A group of tasks run together; ``id`` is the hash of everything its results depend on."""

    id: str
    tasks: tuple[dict, ...]


def plan(runner: Runner, context: dict, tasks: list[dict], chunk_size: int) -> list[Chunk]:
    """Split tasks into chunks of ``chunk_size`` in the given order, with content-hashed ids.

    The id covers the runner's name, the context and the chunk's tasks, so a changed input
    never reuses an old result, and an unchanged chunk is found again after a restart.
    """
    ctx = digest(context)
    name = runner_name(runner)
    chunks = []
    for i in range(0, len(tasks), chunk_size):
        part = tuple(tasks[i:i + chunk_size])
        chunks.append(Chunk("c" + digest({"runner": name, "context": ctx,
                                          "tasks": list(part)}), part))
    return chunks


def chunk_dir(root: Path, chunk_id: str) -> Path:
    """Folder of one chunk."""
    return Path(root) / "chunks" / chunk_id


def chunk_state(root: Path, chunk_id: str) -> str:
    """``done``, ``failed`` or ``missing``."""
    d = chunk_dir(root, chunk_id)
    if (d / "done.json").exists():
        return "done"
    return "failed" if (d / "failed.json").exists() else "missing"


def run_chunk(root: Path, chunk: Chunk, runner: Runner, context: dict) -> str:
    """Run one chunk unless it is done; write its results, then the done marker.

    Returns:
        The chunk's state afterwards (``done`` or ``failed``). A failure is written to
        ``failed.json`` and logged, not raised, so the other chunks go on.
    """
    d = chunk_dir(root, chunk.id)
    if (d / "done.json").exists():
        return "done"
    t0 = time.perf_counter()
    try:
        results = [runner(context, task) for task in chunk.tasks]
    except Exception as exc:  # any runner error is the chunk's failure, reported by id
        write_text(json.dumps({"chunk": chunk.id, "error": f"{type(exc).__name__}: {exc}",
                               "traceback": traceback.format_exc()}, indent=2),
                   d / "failed.json")
        log.error("chunk %s failed: %s: %s", chunk.id, type(exc).__name__, exc)
        return "failed"
    write_parquet(pd.concat([r["table"] for r in results], ignore_index=True),
                  d / "table.parquet")
    extras = [{k: v for k, v in r.items() if k != "table"} for r in results]
    if any(extras):
        atomic_write(d / "extras.pkl", lambda p: p.write_bytes(pickle.dumps(extras)))
    write_text(json.dumps({"chunk": chunk.id, "n_tasks": len(chunk.tasks),
                           "seconds": round(time.perf_counter() - t0, 3)}), d / "done.json")
    (d / "failed.json").unlink(missing_ok=True)  # an earlier failure is now resolved
    return "done"


@dataclass
class Study:
    """A planned study folder: its chunks in order and where they stand."""

    root: Path
    chunk_ids: list[str]
    states: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """Ids of chunks whose runner raised."""
        return [c for c in self.chunk_ids if self.states[c] == "failed"]

    @property
    def missing(self) -> list[str]:
        """Ids of chunks that never finished (not run yet, or the job died)."""
        return [c for c in self.chunk_ids if self.states[c] == "missing"]

    @property
    def complete(self) -> bool:
        """True if every chunk is done."""
        return not self.failed and not self.missing

    def errors(self) -> dict[str, str]:
        """The error message of each failed chunk."""
        return {c: json.loads((chunk_dir(self.root, c) / "failed.json").read_text())["error"]
                for c in self.failed}

    def table(self) -> pd.DataFrame:
        """The runner tables of all finished chunks, in plan order."""
        frames = [pd.read_parquet(chunk_dir(self.root, c) / "table.parquet")
                  for c in self.chunk_ids if self.states[c] == "done"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def extras(self) -> Iterator[dict]:
        """The runners' other outputs, one dict per task, in plan order (finished chunks)."""
        for c in self.chunk_ids:
            path = chunk_dir(self.root, c) / "extras.pkl"
            if self.states[c] == "done" and path.exists():
                yield from pickle.loads(path.read_bytes())

    def summary(self) -> str:
        """One line on the chunks' states, naming the missing and failed ones."""
        n = len(self.chunk_ids)
        text = f"{n - len(self.failed) - len(self.missing)}/{n} chunks done"
        if self.failed:
            text += f"; failed: {', '.join(self.failed)}"
        if self.missing:
            text += f"; missing: {', '.join(self.missing)}"
        return text


def load(root: Path) -> Study:
    """Read a study folder written by :func:`evaluate` (chunk order from its manifest)."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST).read_text())
    ids = manifest["chunks"]
    return Study(root, ids, {c: chunk_state(root, c) for c in ids})


def load_context(root: Path) -> dict:
    """The shared context of a study folder."""
    return json.loads((Path(root) / "context.json").read_text())


def _run_joblib(root: Path, chunks: list[Chunk], runner: Runner, context: dict,
                n_jobs: int, progress: bool) -> None:
    gen = Parallel(n_jobs=n_jobs or -1, return_as="generator_unordered")(
        delayed(run_chunk)(root, c, runner, context) for c in chunks)
    for _ in tqdm(gen, total=len(chunks), desc="runs, in chunks", unit="chunk",
                  disable=not progress):
        pass


def _run_hydra(root: Path, chunks: list[Chunk], cfg: EvaluationConfig) -> None:
    """One Hydra multirun job per chunk, through ``python -m sim.worker``; waits for them."""
    cmd = [sys.executable, "-m", "sim.worker", "--multirun", f"root={root.resolve()}",
           "chunk=" + ",".join(c.id for c in chunks), f"hydra/launcher={cfg.launcher}",
           f"hydra.sweep.dir={(root / 'hydra').resolve()}", *cfg.launcher_overrides]
    log_path = root / "hydra" / "launcher.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("launching %d chunk jobs with %s; launcher output in %s", len(chunks),
             cfg.launcher, log_path)
    with log_path.open("a") as out:
        returncode = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if returncode != 0:  # the chunk states below say which jobs did not finish
        log.error("the Hydra launcher exited with %d; see %s", returncode, log_path)


def evaluate(runner: Runner, context: dict, tasks: list[dict], root: Path,
             cfg: EvaluationConfig, progress: bool = True) -> Study:
    """Run all tasks not yet done under ``root``, with the configured backend.

    Args:
        runner: Module-level ``runner(context, task) -> {"table": DataFrame, ...}``.
        context: JSON-able inputs shared by all tasks.
        tasks: JSON-able task dicts, in the order their results are read back.
        root: Study folder; chunks go to ``root/chunks/<id>/``.
        cfg: Backend, chunk size, processes, launcher.
        progress: Show a progress bar (serial and joblib backends).

    Returns:
        The study, with each chunk's state; failed or missing chunks are logged by id.
    """
    check(cfg)
    root = Path(root)
    # Every backend sees the inputs as a job that reads them from disk does.
    context, tasks = json.loads(json.dumps([context, tasks]))
    chunks = plan(runner, context, tasks, cfg.chunk_size)
    write_text(json.dumps(context, sort_keys=True), root / "context.json")
    write_text(json.dumps({"runner": runner_name(runner), "chunk_size": cfg.chunk_size,
                           "n_tasks": len(tasks), "chunks": [c.id for c in chunks]}, indent=1),
               root / MANIFEST)
    for c in chunks:
        if not (chunk_dir(root, c.id) / "tasks.json").exists():
            write_text(json.dumps(list(c.tasks)), chunk_dir(root, c.id) / "tasks.json")
    pending = [c for c in chunks if chunk_state(root, c.id) != "done"]
    log.info("%d of %d chunks to run (%s backend)", len(pending), len(chunks), cfg.backend)
    if pending and cfg.backend == "serial":
        for c in tqdm(pending, desc="runs, in chunks", unit="chunk",
                  disable=not progress):
            run_chunk(root, c, runner, context)
    elif pending and cfg.backend == "joblib":
        _run_joblib(root, pending, runner, context, cfg.n_jobs, progress)
    elif pending:
        _run_hydra(root, pending, cfg)
    study = load(root)
    if not study.complete:
        log.error("%s", study.summary())
    return study


def run_tasks(runner: Runner, context: dict, tasks: list[dict]) -> list[dict[str, Any]]:
    """Run tasks in this process and return the runners' results in task order.

    No study folder: for callers that are parallel themselves and need each result at once
    (an Optuna objective, a pyabc simulator). The runner and the inputs (after the same
    JSON round trip) are those a study of :func:`evaluate` would use.
    """
    context, tasks = json.loads(json.dumps([context, tasks]))
    return [runner(context, task) for task in tasks]


def run_stored_chunk(root: Path, chunk_id: str) -> str:
    """Run one chunk of a planned study folder (what a Hydra or cluster job does)."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST).read_text())
    tasks = json.loads((chunk_dir(root, chunk_id) / "tasks.json").read_text())
    return run_chunk(root, Chunk(chunk_id, tuple(tasks)), resolve_runner(manifest["runner"]),
                     load_context(root))
