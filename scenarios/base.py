"""The lever interface, the lever registry and scenario building.

A lever implements the model's ``sim.surface.Lever`` protocol and changes the model only
through the operations of ``sim.surface.LeverSurface``. Its constructor checks its
arguments, so ``build_levers`` refuses a bad scenario before a model exists; ``bind(model)``
runs once on the built model and checks targets against the city (an unknown school id
raises ``ValueError`` before any year runs or anything is written), then calls ``init``.
``apply(model)`` runs every year at the levers point of the model's step (after reputation,
before metrics) and calls ``act`` in the lever's active years, ``start_year`` to
``end_year``. ``finalize(model)`` runs at the end.

Levers record their constructor arguments, so ``repr`` and ``spec()`` rebuild them, and book
what they spend with ``book`` in the model's cost ledger (``spent`` reads their part back),
which the metrics report as ``policy_cost_eur``. A scenario is a named list of lever specs,
``{"lever": name, **args}``, in ``conf/scenario/<name>.yaml``; ``build_levers`` turns it into
objects, which the entry points pass to the model.

Targets (``target=``) select units: ``"all"``; a list of unit ids as in ``units.parquet``
(``"S003"`` for schools, ``"D012"`` for daycares); ``"renewal"`` (units in urban-renewal
areas); ``"municipal"`` (city-run units: every school, daycares that are not private); or
``"tp_index_above:<x>"`` (schools or daycares whose needs index, see
``scenarios.tp_funding.needs_index``, exceeds ``x``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from scenarios.needs import needs_index
from sim.units import PREFIX, id_range, parse_unit_id

if TYPE_CHECKING:
    from sim.ledger import Ledger
    from sim.model import SegregationModel

TARGET_RULES = "'all', 'renewal', 'municipal', 'tp_index_above:<x>' or a list of unit ids"

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
        if not isinstance(start_year, int) or isinstance(start_year, bool) or start_year < 1:
            self.fail("start_year", start_year, "an integer >= 1")
        if end_year is not None and (not isinstance(end_year, int) or isinstance(end_year, bool)
                                     or end_year < start_year):
            self.fail("end_year", end_year, f"None or an integer >= start_year ({start_year})")
        self.start_year = start_year
        self.end_year = end_year
        self.target = list(target) if isinstance(target, list | tuple) else target
        self.check_target(self.target)
        self.label = self.lever_name  # its name in the cost ledger (the model makes it unique)
        self._ledger: Ledger | None = None

    # ------------------------------------------------------------ helpers
    def fail(self, key: str, value: Any, allowed: str) -> None:
        """Raise a ``ValueError`` naming the lever, the argument, its value and the rule."""
        raise ValueError(f"lever {self.lever_name}: {key}={value!r} is not allowed; "
                         f"expected {allowed}")

    def active(self, year: int) -> bool:
        """True if the lever acts in ``year``."""
        return year >= self.start_year and (self.end_year is None or year <= self.end_year)

    def check_target(self, target: Any) -> None:
        """Check the form of a target (ids are checked against the city in ``bind``)."""
        if target in ("all", "renewal", "municipal"):
            return
        if isinstance(target, str) and target.startswith("tp_index_above:"):
            if not is_real(_number(target.split(":", 1)[1])):
                self.fail("target", target, "'tp_index_above:<x>' with a number x")
            return
        prefixes = tuple(PREFIX.values())
        if isinstance(target, list) and target and all(
                isinstance(u, str) and u.startswith(prefixes) for u in target):
            return
        self.fail("target", target, TARGET_RULES)

    def resolve(self, model: SegregationModel, target: Any = None,
                kind: str | None = None) -> np.ndarray:
        """Indices of the targeted schools or daycares.

        Raises:
            ValueError: For an unknown unit id, or a rule that selects nothing on this city.
        """
        target = self.target if target is None else target
        kind = kind or self.unit_kind
        units = model.units_of(kind)
        n = len(units.cell)
        if target == "all":
            return np.arange(n)
        if target == "renewal":
            if not model.city.renewal.any():
                self.fail("target", target, "a rule that selects units: this city has no "
                          "urban-renewal areas (city.n_renewal_areas=0)")
            return np.flatnonzero(model.renewal_cell[units.cell])
        if target == "municipal":  # city-run units: all schools, daycares not private
            return np.flatnonzero(~getattr(units, "private", np.zeros(n, dtype=bool)))
        if isinstance(target, str) and target.startswith("tp_index_above:"):
            threshold = float(target.split(":", 1)[1])
            return np.flatnonzero(needs_index(model, kind) > threshold)
        out = []
        for uid in target:
            index = parse_unit_id(uid, kind, n)
            if index is None:
                self.fail("target", uid, id_range(kind, n))
            out.append(index)
        return np.array(sorted(set(out)), dtype=np.int64)

    # ------------------------------------------------------------ the hook
    def bind(self, model: SegregationModel) -> None:
        """Attach the lever to the model's ledger and check it against the city (``init``)."""
        self._ledger = model.ledger
        self.init(model)

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

    def book(self, model: SegregationModel, euros: float) -> None:
        """Book spending in the current year in the model's cost ledger."""
        model.book_cost(self.label, euros)

    @property
    def spent(self) -> dict[int, float]:
        """Euros per year this lever booked (empty before it is bound)."""
        return self._ledger.spent(self.label) if self._ledger is not None else {}

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
        return {"lever": self.lever_name, "spent": _plain(self.spent),
                **{k: _plain(v) for k, v in vars(self).items()
                   if not k.startswith("_") and k not in args}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "lever")
        return f"{type(self).__name__}({args})"


def _number(text: str) -> float | None:
    """``text`` as a float, or ``None``."""
    try:
        return float(text)
    except ValueError:
        return None


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


def build_levers(specs: Any, scenario: str = "scenario") -> list[Lever]:
    """Build lever objects from scenario specs (``{"lever": name, **args}``).

    Args:
        specs: The scenario's ``levers``: a list of mappings (``None``: no levers).
        scenario: How messages name the scenario (e.g. ``scenario file my.yaml``).

    Raises:
        ValueError: A list that is not a list of mappings, an unknown lever name, a missing,
            unknown or invalid argument; one line naming the scenario, the lever and the
            argument.
    """
    if specs is None:
        return []
    if not isinstance(specs, list | tuple):
        raise ValueError(f"{scenario}: levers={_short(specs)} is not allowed; expected a list "
                         "of levers, each a mapping such as {lever: tp_funding, budget_eur: 1e6}")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise ValueError(f"{scenario}: lever #{i + 1}={_short(spec)} is not allowed; "
                             "expected a mapping with a 'lever' name and its arguments")
        spec = {str(k): v for k, v in spec.items()}
        name = spec.pop("lever", None)
        if not isinstance(name, str) or name not in LEVERS:
            raise ValueError(f"{scenario}: lever #{i + 1} {name!r} is unknown; known levers: "
                             f"{', '.join(sorted(LEVERS))}")
        cls = LEVERS[name]
        params = inspect.signature(cls.__init__).parameters
        allowed = set(params) - {"self"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ValueError(f"{scenario}: lever {name}: unknown argument(s) {unknown}; "
                             f"allowed: {sorted(allowed)}")
        missing = sorted(k for k in allowed - set(spec)
                         if params[k].default is inspect.Parameter.empty)
        if missing:
            raise ValueError(f"{scenario}: lever {name}: missing argument(s) {missing}")
        try:
            out.append(cls(**spec))
        except ValueError as exc:
            raise ValueError(f"{scenario}: {exc}") from exc
        except TypeError as exc:  # an argument of a type the lever's checks did not expect
            raise ValueError(f"{scenario}: lever {name}: arguments {_short(spec)} are not "
                             f"allowed; expected the types its docstring lists ({exc})") from exc
    return out


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value on one line, cut to ``limit`` characters (for messages)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
