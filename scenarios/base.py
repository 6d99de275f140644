"""The lever interface, the lever registry and scenario building.

A lever is an object with one uniform hook. ``init(model)`` runs once on the freshly built
model (validate targets against the city here: an unknown school id raises ``ValueError``
before anything runs or is written). ``apply(model)`` runs every year at the levers point of
the model's step (after reputation, before metrics) and calls ``act`` in the lever's active
years, ``start_year`` to ``end_year``. ``finalize(model)`` runs at the end.

Levers record their constructor arguments, so ``repr`` and ``spec()`` rebuild them, and book
what they spend per year in ``spent`` (euros), which the metrics report as
``policy_cost_eur``. A scenario is a named list of lever specs, ``{"lever": name, **args}``,
in ``conf/scenario/<name>.yaml``; ``build_levers`` turns it into objects.

Targets (``target=``) select units: ``"all"``; a list of unit ids as in ``units.parquet``
(``"S003"`` for schools, ``"D012"`` for daycares); ``"renewal"`` (units in urban-renewal
areas); ``"municipal"`` (city-run units: every school, daycares that are not private); or
``"tp_index_above:<x>"`` (schools or daycares whose needs index, see
``scenarios.tp_funding.needs_index``, exceeds ``x``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from sim.model import SegregationModel

LEVERS: dict[str, type[Lever]] = {}


def is_real(value: Any) -> bool:
    """True for a finite real number (not a bool): the check behind numeric lever arguments."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def register(name: str) -> Callable[[type[Lever]], type[Lever]]:
    """Class decorator: make a lever available to scenario files under ``name``."""

    def deco(cls: type[Lever]) -> type[Lever]:
        cls.lever_name = name
        LEVERS[name] = cls
        return cls

    return deco


class Lever:
    """Base class of policy levers.

    Args:
        start_year: First simulated year in which the lever acts (1 = first step).
        end_year: Last year in which it acts; ``None`` for the whole run.
        target: Which units it acts on (see the module docstring).
    """

    lever_name: ClassVar[str] = "lever"
    unit_kind: ClassVar[str] = "school"  # "school" or "daycare": what ``target`` selects

    def __init__(self, start_year: int = 1, end_year: int | None = None,
                 target: Any = "all") -> None:
        if not isinstance(start_year, int) or start_year < 1:
            self.fail("start_year", start_year, "an integer >= 1")
        if end_year is not None and end_year < start_year:
            self.fail("end_year", end_year, f"None or >= start_year ({start_year})")
        self.start_year = start_year
        self.end_year = end_year
        self.target = list(target) if isinstance(target, list | tuple) else target
        self.spent: dict[int, float] = {}

    # ------------------------------------------------------------ helpers
    def fail(self, key: str, value: Any, allowed: str) -> None:
        """Raise a ``ValueError`` naming the lever, the argument, its value and the rule."""
        raise ValueError(f"lever {self.lever_name}: {key}={value!r} is not allowed; "
                         f"expected {allowed}")

    def active(self, year: int) -> bool:
        """True if the lever acts in ``year``."""
        return year >= self.start_year and (self.end_year is None or year <= self.end_year)

    def resolve(self, model: SegregationModel, target: Any = None,
                kind: str | None = None) -> np.ndarray:
        """Indices of the targeted schools or daycares.

        Raises:
            ValueError: For an unknown unit id or target rule.
        """
        target = self.target if target is None else target
        kind = kind or self.unit_kind
        units = model.schools if kind == "school" else model.daycares
        n = len(units.cell)
        prefix = "S" if kind == "school" else "D"
        if target == "all":
            return np.arange(n)
        if target == "renewal":
            return np.flatnonzero(model.renewal_cell[units.cell])
        if target == "municipal":  # city-run units: all schools, daycares not private
            return np.flatnonzero(~getattr(units, "private", np.zeros(n, dtype=bool)))
        if isinstance(target, str) and target.startswith("tp_index_above:"):
            from scenarios.tp_funding import needs_index

            threshold = float(target.split(":", 1)[1])
            return np.flatnonzero(needs_index(model, kind) > threshold)
        if isinstance(target, list):
            out = []
            for uid in target:
                ok = isinstance(uid, str) and uid[:1] == prefix and uid[1:].isdigit()
                if not ok or int(uid[1:]) >= n:
                    self.fail("target", uid, f"a {kind} id {prefix}000..{prefix}{n - 1:03d}")
                out.append(int(uid[1:]))
            return np.array(sorted(set(out)), dtype=np.int64)
        self.fail("target", target,
                  "'all', 'renewal', 'municipal', 'tp_index_above:<x>' or a list of ids")
        raise AssertionError  # unreachable; fail always raises

    # ------------------------------------------------------------ the hook
    def init(self, model: SegregationModel) -> None:
        """Prepare the lever on a freshly built model (before year 1); check targets."""
        self.resolve(model)

    def apply(self, model: SegregationModel) -> None:
        """Act on the model at the levers hook of the current year."""
        if self.active(model.year):
            self.act(model)

    def act(self, model: SegregationModel) -> None:
        """The lever's effect in an active year; subclasses override this."""

    def finalize(self, model: SegregationModel) -> None:
        """Clean up at the end of the run."""

    def book(self, year: int, euros: float) -> None:
        """Record spending in a year."""
        self.spent[year] = self.spent.get(year, 0.0) + float(euros)

    # ------------------------------------------------------------ identity
    def spec(self) -> dict[str, Any]:
        """The scenario-file entry that rebuilds this lever."""
        params = inspect.signature(type(self).__init__).parameters
        return {"lever": self.lever_name,
                **{k: getattr(self, k) for k in params if k != "self" and hasattr(self, k)}}

    def results(self) -> dict[str, Any]:
        """What the lever did, for the run's ``summary.json``.

        Every public attribute that is not a constructor argument: spending, allocations,
        redraw statistics, reached units...
        """
        args = set(self.spec())
        return {"lever": self.lever_name,
                **{k: _plain(v) for k, v in vars(self).items()
                   if not k.startswith("_") and k not in args}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "lever")
        return f"{type(self).__name__}({args})"


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready Python (numpy arrays and scalars, nested dicts and lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def build_levers(specs: list[dict] | None, scenario: str = "scenario") -> list[Lever]:
    """Build lever objects from scenario specs (``{"lever": name, **args}``).

    Raises:
        ValueError: Unknown lever name, unknown or invalid argument; the message names the
            scenario, the lever and the argument.
    """
    import scenarios  # noqa: F401  (registers the shipped levers)

    out = []
    for i, spec in enumerate(specs or []):
        spec = dict(spec)
        name = spec.pop("lever", None)
        if name not in LEVERS:
            raise ValueError(f"{scenario}: lever #{i + 1} {name!r} is unknown; known levers: "
                             f"{', '.join(sorted(LEVERS))}")
        cls = LEVERS[name]
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"{scenario}: lever {name}: unknown argument(s) {unknown}; "
                             f"allowed: {sorted(allowed)}")
        out.append(cls(**spec))
    return out
