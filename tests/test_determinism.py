"""Same seed, same bytes: in-process vs. CLI subprocess runs, and stable named streams."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TINY, tiny_config
from sim.model import SegregationModel
from sim.outputs import write_run
from sim.rng import Streams, stable_hash

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("metrics.parquet", "units.parquet", "areas.parquet")


def _run_in_process(run_dir: Path, *overrides: str) -> Path:
    model = SegregationModel(tiny_config(*overrides, "output.figures=false"))
    model.run()
    return write_run(model, run_dir, figures=False)


def _python(*args: str, hashseed: str = "random", timeout: float = 180):
    """Run the interpreter in the repo root with a given PYTHONHASHSEED."""
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The tiny config, seed 5, run through the Hydra CLI in a fresh interpreter."""
    run_dir = tmp_path_factory.mktemp("cli") / "seed5"
    proc = _python("-m", "experiments.run", *TINY, "seed=5", "output.figures=false",
                   f"hydra.run.dir={run_dir}", hashseed="12345")
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    return _run_in_process(tmp_path_factory.mktemp("local") / "seed5", "seed=5")


@pytest.mark.parametrize("name", TABLES)
def test_cli_and_in_process_runs_are_byte_identical(cli_run, local_run, name):
    cli_dir, _ = cli_run
    a, b = (local_run / name).read_bytes(), (cli_dir / name).read_bytes()
    if a != b:  # show where the content differs, not only that the bytes do
        pd.testing.assert_frame_equal(pd.read_parquet(local_run / name),
                                      pd.read_parquet(cli_dir / name))
    assert a == b, name


def test_cli_and_in_process_config_and_summary_identical(cli_run, local_run):
    cli_dir, _ = cli_run
    assert (local_run / "config.yaml").read_text() == (cli_dir / "config.yaml").read_text()
    local, cli = (json.loads((d / "summary.json").read_text()) for d in (local_run, cli_dir))
    assert cli.pop("overrides") == [*TINY, "seed=5", "output.figures=false"]
    assert local.pop("overrides") == []  # the only difference: how the run was asked for
    assert local == cli
    assert not (cli_dir / "figures").exists()


def test_cli_stdout_has_no_per_step_log_lines(cli_run):
    """experiments/run.py promises "no per-step log lines" from Mesa."""
    _, proc = cli_run
    assert "done in" in proc.stdout
    assert "at time" not in proc.stdout + proc.stderr, proc.stdout


def test_repeat_in_process_run_is_identical(tmp_path, local_run):
    again = _run_in_process(tmp_path / "again", "seed=5")
    for name in TABLES:
        assert (again / name).read_bytes() == (local_run / name).read_bytes(), name


def test_different_seed_gives_different_metrics(tmp_path, local_run):
    other = _run_in_process(tmp_path / "seed6", "seed=6")
    a = pd.read_parquet(local_run / "metrics.parquet")
    b = pd.read_parquet(other / "metrics.parquet")
    assert a.shape == b.shape
    assert not a.equals(b)
    assert (a["seg_res_ses_H"] != b["seg_res_ses_H"]).any()
    assert (a["n_children"] != b["n_children"]).any()


# ------------------------------------------------------------------------------ named streams

_SNIPPET = (
    "from sim.rng import Streams, stable_hash; "
    "print(stable_hash('x')); "
    "print(*Streams(7).get('x', 3).random(5).tolist()); "
    "print(*Streams(7).get('x', 3).integers(0, 10**9, 5).tolist())"
)


def _local_draws() -> list[str]:
    return [str(stable_hash("x")),
            " ".join(map(str, Streams(7).get("x", 3).random(5).tolist())),
            " ".join(map(str, Streams(7).get("x", 3).integers(0, 10**9, 5).tolist()))]


def test_streams_same_in_fresh_processes():
    expected = _local_draws()
    for hashseed in ("0", "1", "random"):
        proc = _python("-c", _SNIPPET, hashseed=hashseed, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split("\n")[:3] == expected, hashseed


def test_stable_hash_is_sha256_not_builtin_hash():
    digest = hashlib.sha256(b"relocation").digest()[:8]
    assert stable_hash("relocation") == int.from_bytes(digest, "little")
    assert 0 <= stable_hash("x") < 2**64


def test_streams_are_named_and_yearly():
    s = Streams(7)
    base = s.get("x", 3).random(8)
    assert np.array_equal(base, Streams(7).get("x", 3).random(8))  # fresh generator each time
    for other in (s.get("y", 3), s.get("x", 4), Streams(8).get("x", 3)):
        assert not np.array_equal(base, other.random(8))
