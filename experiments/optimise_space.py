"""The search space of ``experiments.optimise``: levers to tune, objectives, constraints.

A space file, ``conf/optimise/<name>.yaml`` (or the path of a ``.yaml`` file), declares

* ``levers``: lever blocks, each ``{name, lever, args, search, optional}``: ``lever`` is a
  registered lever (``scenarios.LEVERS``), ``args`` its fixed arguments and ``search`` the
  searched ones, each ``{low, high}`` (with ``int: true`` for whole numbers, ``log: true``
  for a log scale) or ``{choices: [...]}`` (any values, lists too). ``optional: true`` lets
  the search leave the lever out (parameter ``<name>.on``). Optuna's parameters are named
  ``<name>.<argument>``;
* ``objectives``: metric columns of ``metrics.parquet``, each the candidate's paired effect
  against its baseline twin (candidate minus baseline, same seed), at the final year
  (``window: final``, default) or averaged over years 1 to the last (``window: run``), with
  the city's goal ``better: lower|higher``. ``policy_cost_eur`` is required and is reported
  in million euros a year;
* ``constraints``: bounds on such effects (``{metric, max | min, window}``, e.g. a budget
  cap on ``policy_cost_eur`` in euros a year) or on searched arguments (``{param, max |
  min}``, e.g. the farthest school of a shared catchment). A candidate that breaks one is
  evaluated but not on the front.

Parsing names every error in one line: the space, the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from experiments.cli import read_space
from scenarios import LEVERS, build_levers

COST = "policy_cost_eur"  # the required objective, reported in million euros a year
WINDOWS = ("final", "run")
SPACE_KEYS = {"name", "description", "levers", "objectives", "constraints"}


@dataclass(frozen=True)
class Param:
    """One searched lever argument: a numeric range or a list of choices."""

    name: str  # <lever block>.<argument>
    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def scalar_choices(self) -> bool:
        """True if Optuna can hold the choices themselves (else their index)."""
        return all(isinstance(c, bool | int | float | str) or c is None for c in self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this parameter."""
        if self.choices:
            if self.scalar_choices:
                return trial.suggest_categorical(self.name, list(self.choices))
            return self.choices[trial.suggest_categorical(self.name,
                                                          list(range(len(self.choices))))]
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def value(self, stored: Any) -> Any:
        """The argument value from Optuna's stored parameter value."""
        if self.choices and not self.scalar_choices:
            return self.choices[int(stored)]
        if self.integer:
            return int(stored)
        return stored

    def extremes(self) -> list[Any]:
        """The values checked before any run: both ends, or every choice."""
        if self.choices:
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.integer else [self.low, self.high]


@dataclass(frozen=True)
class LeverBlock:
    """A lever of the space: fixed and searched arguments, possibly optional."""

    name: str
    lever: str
    args: dict[str, Any]
    search: dict[str, Param]
    optional: bool = False

    @property
    def switch(self) -> str:
        """Parameter name of the on/off switch of an optional lever."""
        return f"{self.name}.on"

    def spec(self, values: dict[str, Any]) -> dict[str, Any]:
        """The scenario-file entry of this lever at the given argument values."""
        return {"lever": self.lever, **self.args,
                **{arg: values[p.name] for arg, p in self.search.items()}}


@dataclass(frozen=True)
class Objective:
    """A paired effect to minimise (``better: lower``) or maximise."""

    metric: str
    better: str = "lower"
    window: str = "final"

    @property
    def name(self) -> str:
        """Column name in ``front.csv``: ``cost_meur`` for the cost, else the metric."""
        return "cost_meur" if self.metric == COST else self.metric

    @property
    def scale(self) -> float:
        """Factor from the metric's unit to the reported one (euros to million euros)."""
        return 1e-6 if self.metric == COST else 1.0

    @property
    def direction(self) -> str:
        """Optuna's direction."""
        return "minimize" if self.better == "lower" else "maximize"


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric's paired effect (in the metric's unit) or on a searched argument."""

    bound: float
    upper: bool  # True: ``max``, False: ``min``
    metric: str | None = None
    window: str = "final"
    param: str | None = None

    @property
    def name(self) -> str:
        """Label, e.g. ``policy_cost_eur<=1e+07``."""
        return f"{self.metric or self.param}{'<=' if self.upper else '>='}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when satisfied."""
        return value - self.bound if self.upper else self.bound - value


@dataclass
class Space:
    """A parsed space file."""

    name: str
    description: str
    levers: list[LeverBlock]
    objectives: list[Objective]
    constraints: list[Constraint] = field(default_factory=list)

    @property
    def params(self) -> list[Param]:
        """Every Optuna parameter, switches first per lever, in file order."""
        out = []
        for b in self.levers:
            if b.optional:
                out.append(Param(b.switch, choices=(True, False)))
            out.extend(b.search.values())
        return out

    @property
    def metrics(self) -> list[str]:
        """Metric columns the objectives and constraints read."""
        names = [o.metric for o in self.objectives] + [c.metric for c in self.constraints
                                                       if c.metric]
        return list(dict.fromkeys(names))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Every parameter's value for the trial (all of them: a fixed space for NSGA-II)."""
        return {p.name: p.suggest(trial) for p in self.params}

    def values(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Argument values from a trial's stored parameters."""
        return {p.name: p.value(stored[p.name]) for p in self.params}

    def levers_of(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        """The scenario's levers at ``values`` (optional levers switched off left out)."""
        return [b.spec(values) for b in self.levers if not b.optional or values[b.switch]]

    def scenario(self, name: str, values: dict[str, Any], description: str) -> dict[str, Any]:
        """A scenario dict (as in ``conf/scenario/*.yaml``) for a candidate."""
        return {"name": name, "description": description, "levers": self.levers_of(values)}


def load_space(name: str) -> tuple[Space, dict]:
    """Read and parse a space file; returns the space and the file's content.

    Raises:
        ValueError: An unknown space, or any error of its content (one line).
    """
    path, raw = read_space(name, "optimise")
    return parse_space(raw, f"space {path}"), raw


def parse_space(raw: Any, where: str) -> Space:
    """Parse a space file's content; raises ``ValueError`` naming key, value and what is allowed."""

    def fail(key: str, value: Any, allowed: str) -> None:
        raise ValueError(f"{where}: {key}={value!r} is not allowed; expected {allowed}")

    if not isinstance(raw, dict) or set(raw) - SPACE_KEYS:
        fail("keys", sorted(raw) if isinstance(raw, dict) else raw,
             f"a mapping with keys among {sorted(SPACE_KEYS)}")
    levers = [_lever_block(b, f"levers[{i}]", fail, where)
              for i, b in enumerate(raw.get("levers") or [])]
    if not levers:
        fail("levers", raw.get("levers"), "a non-empty list of lever blocks")
    names = [b.name for b in levers]
    if len(set(names)) != len(names):
        fail("levers", names, "distinct lever block names")
    if not any(b.search or b.optional for b in levers):
        fail("levers", names, "at least one searched argument or optional lever")
    objectives = []
    for i, o in enumerate(raw.get("objectives") or []):
        if not isinstance(o, dict) or "metric" not in o or set(o) - {"metric", "better",
                                                                       "window"}:
            fail(f"objectives[{i}]", o, "a mapping with metric (optional: better, window)")
        if o.get("better", "lower") not in ("lower", "higher"):
            fail(f"objectives[{i}].better", o["better"], "lower or higher")
        objectives.append(Objective(str(o["metric"]), o.get("better", "lower"),
                                    _window(o, f"objectives[{i}]", fail)))
    metrics = [o.metric for o in objectives]
    if COST not in metrics or len(objectives) < 2 or len(set(metrics)) != len(metrics):
        fail("objectives", metrics, f"distinct metrics, {COST} and at least one outcome")
    constraints = []
    params = {p.name for b in levers for p in b.search.values()}
    for i, c in enumerate(raw.get("constraints") or []):
        key = f"constraints[{i}]"
        if (not isinstance(c, dict) or ("metric" in c) == ("param" in c)
                or ("max" in c) == ("min" in c) or set(c) - {"metric", "param", "max", "min",
                                                             "window"}):
            fail(key, c, "a mapping with metric or param, and max or min (optional: window)")
        bound = c.get("max", c.get("min"))
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(
                bound):
            fail(f"{key}.{'max' if 'max' in c else 'min'}", bound, "a finite number")
        if "param" in c and c["param"] not in params:
            fail(f"{key}.param", c["param"], f"a searched numeric argument: {sorted(params)}")
        constraints.append(Constraint(float(bound), "max" in c, c.get("metric"),
                                      _window(c, key, fail), c.get("param")))
    return Space(str(raw.get("name", where)), str(raw.get("description", "")), levers,
                 objectives, constraints)


def _window(d: dict, key: str, fail: Any) -> str:
    window = d.get("window", "final")
    if window not in WINDOWS:
        fail(f"{key}.window", window, "final (the last year) or run (mean over years 1 to "
             "the last)")
    return window


def _lever_block(b: Any, key: str, fail: Any, where: str) -> LeverBlock:
    """Parse one lever block and check its arguments at every extreme of the search."""
    if (not isinstance(b, dict) or "name" not in b or "lever" not in b
            or set(b) - {"name", "lever", "args", "search", "optional"}):
        fail(key, b, "a mapping with name and lever (optional: args, search, optional)")
    if b["lever"] not in LEVERS:
        fail(f"{key}.lever", b["lever"], f"one of {sorted(LEVERS)}")
    args = b.get("args") or {}
    search_raw = b.get("search") or {}
    if not isinstance(args, dict) or not isinstance(search_raw, dict):
        fail(key, b, "args and search as mappings of lever arguments")
    both = sorted(set(args) & set(search_raw))
    if both:
        fail(f"{key}.search", both, "arguments not also fixed in args")
    search = {}
    for arg, s in search_raw.items():
        pkey = f"{key}.search.{arg}"
        name = f"{b['name']}.{arg}"
        if isinstance(s, dict) and set(s) == {"choices"}:
            if not isinstance(s["choices"], list) or not s["choices"]:
                fail(pkey, s, "choices: a non-empty list")
            search[arg] = Param(name, choices=tuple(s["choices"]))
            continue
        if (not isinstance(s, dict) or not {"low", "high"} <= set(s)
                or set(s) - {"low", "high", "int", "log"}
                or not all(isinstance(s[k], int | float) and not isinstance(s[k], bool)
                           for k in ("low", "high"))):
            fail(pkey, s, "{low, high} (optional: int, log) or {choices: [...]}")
        if not s["low"] < s["high"] or (s.get("log") and s["low"] <= 0):
            fail(pkey, s, "low < high (and low > 0 with log: true)")
        search[arg] = Param(name, float(s["low"]), float(s["high"]), bool(s.get("int")),
                            bool(s.get("log")))
    block = LeverBlock(str(b["name"]), str(b["lever"]), dict(args), search,
                       bool(b.get("optional", False)))
    low = {p.name: p.extremes()[0] for p in search.values()}
    for p in search.values():  # each argument at each end, the others at their first
        for x in p.extremes():
            try:
                build_levers([block.spec({**low, p.name: x})], f"{where}: {key} ({block.name})")
            except ValueError as exc:
                raise ValueError(f"{exc} (at {p.name}={x!r})") from exc
    return block

