"""Memory of studies (issue #19): a finished run leaves nothing behind in the process.

A study's main process runs thousands of simulations (serial backend, calibration trials);
it stays small only if every finished model is freed. The models are garbage collected as
soon as nothing outside them points at them, and a study keeps only the small tables.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import pytest

from conftest import tiny_config
from experiments.tasks import run_scenario_task
from sim import model as sim_model
from sim.config import as_dict
from sim.evaluation import EvaluationConfig, evaluate
from sim.model import SegregationModel


@pytest.fixture
def made(monkeypatch) -> list[weakref.ref]:
    """Weak references to every model built while the test runs (anchors' too)."""
    refs: list[weakref.ref] = []
    init = SegregationModel.__init__

    def spy(self, *args, **kwargs) -> None:
        refs.append(weakref.ref(self))
        init(self, *args, **kwargs)

    monkeypatch.setattr(SegregationModel, "__init__", spy)
    return refs


def _context(*overrides: str) -> dict:
    base = as_dict(tiny_config(*overrides))
    return {"config": {k: v for k, v in base.items() if k != "scenario"},
            "scenarios": {"baseline": base["scenario"]}, "anchor": base["behaviour"],
            "metrics": ["seg_res_ses_H"]}


def _points(first: int, n: int) -> list[dict]:
    """``n`` sensitivity points of one seed, each its own behaviour (not the base one)."""
    return [{"point": p, "scenario": "baseline", "seed": 1, "replicate": 0,
             "values": {"behaviour.mobility.base_logit": -2.3 + 0.01 * p}}
            for p in range(first, first + n)]


def test_finished_models_are_garbage_collected(made, tmp_path) -> None:
    SegregationModel(tiny_config("years=2")).run()
    # Warm re-settled points through the evaluation layer: the anchor's model is built
    # (and its state saved) inside the first point's, then each point re-settles.
    context = _context("start=settled", "burn_in_years=12", "years=2",
                       f"checkpoint_dir={tmp_path / 'ck'}")
    study = evaluate(run_scenario_task, context, _points(0, 2), tmp_path / "study",
                     EvaluationConfig(backend="serial", chunk_size=1), progress=False)
    assert study.complete and len(study.table()) == 2 * 3
    gc.collect()
    assert len(made) == 4  # the plain run, the anchor and two points
    assert [r() for r in made] == [None] * 4


def test_models_wait_for_a_collection_until_they_hold_sweep_bytes(made, monkeypatch) -> None:
    cfg = tiny_config("years=1")
    first = SegregationModel(cfg)
    monkeypatch.setattr(sim_model, "SWEEP_BYTES", int(2.5 * sim_model._model_bytes(first)))
    del first
    waiting = []
    for _ in range(8):
        model = SegregationModel(cfg)
        model.run()
        waiting.append(sum(r() is not None for r in made) - 1)  # earlier models not freed
        del model
    # Two finished models (under 2.5 models' bytes) may wait; with a third, the next
    # model's first block collects them all (Python may collect some earlier by itself).
    assert max(waiting) == 2, waiting


def test_a_study_s_memory_does_not_grow_with_its_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sim_model, "SWEEP_BYTES", 0)  # a tiny model is far below the default
    context = _context("years=3")
    cfg = EvaluationConfig(backend="serial", chunk_size=1)

    def study(name: str, first: int, n: int) -> int:
        """Run ``n`` points; Python's traced memory afterwards (no collection forced)."""
        evaluate(run_scenario_task, context, _points(first, n), tmp_path / name, cfg,
                 progress=False)
        return tracemalloc.get_traced_memory()[0]

    study("warm-up", 0, 1)  # compiled kernels and first-use caches
    tracemalloc.start()
    try:
        gc.collect()
        empty = tracemalloc.get_traced_memory()[0]
        model = SegregationModel(tiny_config("years=3"))
        model.run()
        footprint = tracemalloc.get_traced_memory()[0] - empty  # one finished model
        del model
        after_n = study("n", 1, 2)
        after_2n = study("2n", 3, 4)
    finally:
        tracemalloc.stop()
    # A model kept per run would add 4 footprints (the last model of each study waits
    # for the next model's collection in both); the tables and records are a fraction of one.
    assert footprint > 200_000, footprint
    assert after_2n - after_n < footprint / 2, (after_2n - after_n, footprint)
