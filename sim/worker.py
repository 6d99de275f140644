"""One chunk of a planned study: ``python -m sim.worker root=<study folder> chunk=<id>``.

``sim.evaluation`` starts this as a Hydra multirun (``chunk=<id1>,<id2>,...``) so that any
Hydra launcher can run the chunks: ``submitit_local``, ``submitit_slurm`` (one SLURM array
task per chunk), ``joblib``. A job only reads the study folder and writes its chunk's files;
a runner error is written to the chunk's ``failed.json`` and the job still succeeds, so one
bad chunk never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from sim.evaluation import run_stored_chunk


@dataclass
class WorkerConfig:
    """Which chunk of which study folder to run."""

    root: str = MISSING
    chunk: str = MISSING


ConfigStore.instance().store(name="worker_base", node=WorkerConfig)


@hydra.main(config_path="../conf", config_name="worker", version_base="1.3")
def main(cfg: WorkerConfig) -> None:
    """Run the chunk (skipped if already done)."""
    logging.getLogger("MESA").setLevel(logging.WARNING)
    state = run_stored_chunk(Path(cfg.root), str(cfg.chunk))
    logging.getLogger(__name__).info("chunk %s: %s", cfg.chunk, state)


if __name__ == "__main__":
    main()
