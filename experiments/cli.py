"""The one error path of the command line, shared by every entry point.

Every user-input error (a Hydra override that does not parse, an unknown key, a config value
out of range, a scenario file that is not valid YAML or names a bad lever, a sweep that
would overwrite other runs) ends the command the same way: one line on stderr,
``error: <what is wrong: the file or key, the value and what is allowed>``, exit code
``EXIT_USER_ERROR`` (2), and no run folder left behind if nothing was written to it.
Genuine bugs still end in a traceback (exit code 1).

Two places catch them:

* ``user_errors(run_dir)`` around the checks inside an entry point's ``main`` (after Hydra
  has composed the config and created the run folder, which it then removes if empty);
* ``entry(main)`` around Hydra's own entry, for errors Hydra raises before ``main`` is
  entered (override parsing, unknown config groups, type conversion of overrides). Hydra
  prints those over several lines ending in the ``HYDRA_FULL_ERROR`` hint and exits 1; with
  ``HYDRA_FULL_ERROR=1`` set it re-raises them instead, so ``entry`` can print one line.
  (A debugger sees the same full exceptions.)

``SweepGuard`` is a Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``) that
refuses a sweep which would rerun a finished job folder with other parameters, before
Hydra rewrites the sweep's ``multirun.yaml``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config import one_line
from sim.outputs import remove_if_empty

EXIT_USER_ERROR = 2
USER_ERRORS = (ValueError, HydraException, OmegaConfBaseException, yaml.YAMLError)


def refuse(exc: BaseException | str, run_dir: Path | None = None) -> NoReturn:
    """Print ``error: <message>`` on one line, remove an empty run folder, exit 2."""
    if run_dir is not None:
        remove_if_empty(run_dir)
    text = exc if isinstance(exc, str) else one_line(exc)
    print(f"error: {' '.join(text.split())}", file=sys.stderr)  # the command's own output
    sys.exit(EXIT_USER_ERROR)


@contextmanager
def user_errors(run_dir: Path) -> Iterator[None]:
    """Turn user-input errors inside ``main`` into ``refuse``; clean up after any crash."""
    try:
        yield
    except USER_ERRORS as exc:
        refuse(exc, run_dir)
    except BaseException:
        remove_if_empty(run_dir)  # a crash before any output leaves no empty folder
        raise


def entry(main: Callable[[], Any]) -> None:
    """Run a ``@hydra.main`` function so that Hydra's own input errors are one line too."""
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exit(1)
    try:
        main()
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as exc:
        refuse(exc)


def job_overrides(task: list[str]) -> list[list[str]]:
    """The override list of each job of a basic sweep, in Hydra's job order (job numbers)."""
    parsed = OverridesParser.create().parse_overrides(task)
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return jobs


class SweepGuard(Callback):
    """Refuse a sweep that would rerun finished job folders with other parameters.

    A restarted sweep skips the jobs already done (``experiments.run``); a sweep whose
    values were reordered or changed would give job ``k`` other parameters than the finished
    run in folder ``k``. Each job would refuse on its own, but only after Hydra had rewritten
    ``multirun.yaml``, which would then disagree with the folders. Job folders are the
    job numbers (``hydra.sweep.subdir``'s default, as in ``conf/config.yaml``).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Compare the jobs with the previous ``multirun.yaml`` of the same sweep folder."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        previous = sweep_dir / "multirun.yaml"
        if not previous.exists():
            return
        old = job_overrides(list(OmegaConf.load(previous).hydra.overrides.task))
        new = job_overrides(list(config.hydra.overrides.task))
        for k, (was, now) in enumerate(zip(old, new, strict=False)):
            summary = sweep_dir / str(k) / "summary.json"
            if summary.exists() and sorted(was) != sorted(now):
                refuse(f"hydra.sweep.dir={sweep_dir} holds finished job {k} with "
                       f"{' '.join(was)}; this sweep would give it {' '.join(now)}. Expected "
                       "the same values in the same order (new values may be added at the "
                       "end) or another hydra.sweep.dir")

