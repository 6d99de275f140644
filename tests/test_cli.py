"""Issue #7: the command line's one error path, with each command of the issue as a test.

Every user-input error ends with one line ``error: ...`` on stderr, exit code 2, no
traceback and no run folder. The commands run as subprocesses, several at a time (each
spends most of its time importing), from one module-scoped fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import TINY
from experiments.cli import EXIT_USER_ERROR
from sim.io import atomic_write, remove_stale_temporaries

ROOT = Path(__file__).resolve().parent.parent

# (entry point, overrides, a part of the one-line message). One command per kind of error
# path; tests/test_config.py checks the message of every other command of the issue
# in-process (``load_config`` runs the same checks as the entry points).
REFUSED = {
    "n_families": ("run", ["city.n_families=30", "years=2"],
                   "city.n_families=30 is not allowed; expected at least 10 families"),
    "nan": ("run", ["behaviour.outcomes.peer_effect=nan"],
            "behaviour.outcomes.peer_effect=nan is not allowed"),
    "plus-typo": ("run", ["+behaviour.school.lookprob=0.5"],
                  "did you mean behaviour.school.look_prob?"),
    "flag": ("run", ["behaviour.reputation.feedback=2"], "expected true or false"),
    "hydra-type": ("run", ["years=abc"], "years=abc"),
    "hydra-group": ("run", ["city=nowhere"], "Could not find 'city/nowhere'"),
    "hydra-parse": ("run", ["seed"], "Error parsing override 'seed'"),
    "horizons": ("compare", ["horizons=[-1]", "replicates=2", "years=2"],
                 "horizons=[-1] is not allowed; expected years >= 1"),
    "compare-plus": ("compare", ["+foo=1"], "foo=1 is not allowed; expected a known key"),
}


def run_cli(entry: str, args: list[str], out: Path) -> subprocess.CompletedProcess:
    """``python -m experiments.<entry>`` on the tiny city, writing to ``out``."""
    cmd = [sys.executable, "-m", f"experiments.{entry}", *TINY, *args,
           f"hydra.run.dir={out}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONHASHSEED": "0"})


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every refused command of ``REFUSED``, run four at a time: name -> (process, folder)."""
    base = tmp_path_factory.mktemp("cli")
    outs = {name: base / name / "run" for name in REFUSED}

    def one(name: str) -> tuple[str, subprocess.CompletedProcess]:
        entry, args, _ = REFUSED[name]
        outs[name].parent.mkdir()
        return name, run_cli(entry, args, outs[name])

    with ThreadPoolExecutor(4) as pool:
        return {name: (proc, outs[name]) for name, proc in pool.map(one, REFUSED)}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_user_error_is_one_line_exit_2_no_folder(name: str, refused: dict) -> None:
    proc, out = refused[name]
    assert proc.returncode == EXIT_USER_ERROR, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert REFUSED[name][2] in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []


@pytest.mark.parametrize("override", ["city.renewal_social_share=0.96",
                                      "behaviour.demography.outmig_logit="
                                      "[[-4,-3,-3],[-4,-4,-5],[-5,-5,-5]]"])
def test_valid_values_of_the_issue_run(override: str, tmp_path: Path) -> None:
    proc = run_cli("run", [override, "years=1", "output.figures=false",
                           "output.progress=false"], tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "summary.json").exists()


def test_finished_folder_with_another_config_is_refused(tmp_path: Path) -> None:
    # Sweeps name each job's folder by its overrides, so reordering never meets this
    # (tests/test_evaluation.py); a single run into a finished folder does.
    done = tmp_path / "done"
    first = run_cli("run", ["years=1", "seed=1", "output.figures=false"], done)
    assert first.returncode == 0, first.stderr
    single = run_cli("run", ["years=1", "seed=7"], done)
    assert single.returncode == EXIT_USER_ERROR, single.stderr
    (line,) = single.stderr.strip().splitlines()
    assert line.startswith("error: hydra.run.dir: ") and "another config" in line, line
    assert json.loads((done / "summary.json").read_text())["seed"] == 1


def test_killed_writer_leftovers_are_removed(tmp_path: Path) -> None:
    orphan = tmp_path / ".metrics.parquet.abc123.tmp"
    orphan.write_text("half")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / ".map.png.x.tmp").write_text("half")
    atomic_write(tmp_path / "metrics.parquet", lambda p: p.write_text("whole"))
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["figures", "metrics.parquet"]


# Every command a user runs, with a word of its usage line (issue #21: --help and -h work and
# start with usage and the main options, before any Hydra config).
COMMANDS = {
    "experiments.run": "city=", "experiments.compare": "scenarios=",
    "experiments.sensitivity": "method=", "experiments.collect": "folder",
    "experiments.calibrate": "preset=", "experiments.burn_in": "seeds=",
    "experiments.levels": "seeds=", "experiments.replicate": "seeds=",
    "experiments.app": "--port", "sim.geo_sample": "folder",
    "sim.worker": "chunk=",
}


@pytest.fixture(scope="module")
def helped() -> dict:
    """``--help`` of every command, and ``-h`` of two, run four at a time."""
    asks = [(m, "--help") for m in COMMANDS] + [("experiments.calibrate", "-h"),
                                                ("experiments.run", "-h")]

    def one(ask: tuple[str, str]) -> tuple[tuple[str, str], subprocess.CompletedProcess]:
        return ask, subprocess.run([sys.executable, "-m", ask[0], ask[1]], cwd=ROOT,
                                   capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, asks))


@pytest.mark.parametrize("ask", [(m, "--help") for m in COMMANDS]
                         + [("experiments.calibrate", "-h"), ("experiments.run", "-h")])
def test_help_starts_with_usage_and_main_options(ask: tuple[str, str], helped: dict) -> None:
    proc = helped[ask]
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[:12]
    assert head[0].startswith(f"usage: python -m {ask[0]}"), proc.stdout[:300]
    assert any(COMMANDS[ask[0]] in line for line in head), head
    config = proc.stdout.find("== Config")  # the Hydra commands list their config after it
    assert config == -1 or config > proc.stdout.find("main options"), proc.stdout[:500]


def test_report_commands_say_what_they_wrote(tmp_path: Path, caplog) -> None:
    from experiments import calibrate, levels, replicate

    for module, page in ((calibrate, "calibration.md"), (levels, "levels.md"),
                         (replicate, "studies.md")):
        shipped = (ROOT / "docs" / page).read_text()
        copy = tmp_path / page
        copy.write_text(shipped)
        fn = calibrate.write_status_table if module is calibrate else module.report
        with caplog.at_level("INFO"):
            fn(copy)
        assert f"to {copy}" in caplog.text and "unchanged" in caplog.text  # shipped = generated
        copy.write_text(shipped.replace("| local_share_g1 |", "| edited |")
                        .replace("| neighbourhood_H |", "| edited |")
                        .replace("| silliman_dropout_native |", "| edited |"))
        caplog.clear()
        with caplog.at_level("INFO"):
            fn(copy)
        assert "updated" in caplog.text and copy.read_text() == shipped


def test_dashboard_without_its_extra_says_which_to_install() -> None:
    # A lean install (pip install -e .) has no solara: one line naming the extra, exit 2.
    code = ("import runpy, sys; sys.modules['solara'] = None; sys.argv[1:] = ['--help']; "
            "runpy.run_module('experiments.app', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == EXIT_USER_ERROR
    assert proc.stderr == ("error: the dashboard needs the optional extra app (solara is not "
                           "installed): pip install -e '.[app]'\n")
