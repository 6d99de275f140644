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

In a sweep (``--multirun``) a job's user error is raised instead: Hydra reports the failed
job after the others have run, so one bad job does not end the sweep.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config import CONF_DIR, one_line
from sim.io import replace_marked
from sim.outputs import remove_if_empty

log = logging.getLogger(__name__)
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
def user_errors(run_dir: Path, sweep: bool = False) -> Iterator[None]:
    """Turn user-input errors inside ``main`` into ``refuse``; clean up after any crash.

    Args:
        run_dir: The run folder, removed if nothing was written to it.
        sweep: A job of a sweep: re-raise, so that the sweep's other jobs still run.
    """
    try:
        yield
    except USER_ERRORS as exc:
        if sweep:
            remove_if_empty(run_dir)
            raise
        refuse(exc, run_dir)
    except BaseException:
        remove_if_empty(run_dir)  # a crash before any output leaves no empty folder
        raise


HELP_FLAGS = ("--help", "-h")


def wants_help(argv: list[str]) -> bool:
    """Whether the arguments ask for the command's help (``--help`` or ``-h``)."""
    return any(arg in HELP_FLAGS for arg in argv)


def print_usage(usage: str) -> None:
    """Print a command's usage (its first lines of ``--help``) on stdout."""
    print(textwrap.dedent(usage).strip() + "\n")  # the command's own output


def entry(main: Callable[[], Any], usage: str) -> None:
    """Run a ``@hydra.main`` function so that Hydra's own input errors are one line too.

    Args:
        main: The Hydra entry.
        usage: What ``--help`` prints first (usage and main options), before Hydra lists
            the config groups and the config (``conf/hydra/help/command.yaml``).
    """
    if wants_help(sys.argv[1:]):
        print_usage(usage)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing and exit(1)
    try:
        main()
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as exc:
        refuse(exc)


def split_options(argv: list[str], defaults: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` arguments into a command's own options and model overrides.

    Args:
        argv: The command's arguments.
        defaults: The command's options and their default values.

    Returns:
        The options (defaults updated) and the remaining arguments, as config overrides.
    """
    opts, overrides = dict(defaults), []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in opts:
            opts[key] = value
        else:
            overrides.append(arg)
    return opts, overrides


def read_space(name: str, kind: str) -> tuple[Path, Any]:
    """A space file and its content: ``conf/<kind>/<name>.yaml``, or the path ``name``.

    ``kind`` is the folder of the shipped spaces (``sensitivity``, ``optimise``).

    Raises:
        ValueError: No such file; the message lists the shipped spaces.
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONF_DIR / kind / f"{name}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in (CONF_DIR / kind).glob("*.yaml"))
        raise ValueError(f"space={name!r} is not allowed; expected one of {shipped} or the "
                         "path of a .yaml file")
    return path, OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def is_yes(value: str) -> bool:
    """A ``key=value`` switch: ``true``, ``1`` or ``yes`` (any case) switch it on."""
    return value.lower() in ("true", "1", "yes")


def key_value_command(argv: list[str], run: Callable[[list[str]], Any],
                      report: Callable[[], None] | None, usage: str) -> None:
    """Entry of a ``key=value`` command (calibrate, levels, burn_in).

    Prints ``usage`` for ``--help`` or ``-h``; logs at INFO (Mesa's per-step lines off),
    runs ``report()`` for ``argv == ["report"]`` (commands that have one) and ``run(argv)``
    otherwise; a ``ValueError`` ends the command through ``refuse``.
    """
    if wants_help(argv):
        print_usage(usage)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("MESA").setLevel(logging.WARNING)
    try:
        if report is not None and argv[:1] == ["report"]:
            report()
        else:
            run(argv)
    except ValueError as exc:
        refuse(exc)


def write_docs_table(page: Path, markers: tuple[str, str], table: str, source: str) -> None:
    """Write a generated Markdown table between its markers on a docs page, and say so.

    Args:
        page: The docs page (``docs/*.md``).
        markers: Its start and end marker lines.
        table: The table, one row per line.
        source: The files the table was made from, for the message.
    """
    changed = replace_marked(page, *markers, table)
    log.info("wrote the table from %s (%d rows) to %s, between %s and %s: %s", source,
             max(table.count("\n") - 2, 0), page, *markers,
             "updated" if changed else "unchanged")
