"""Policy levers.

``scenarios.base`` holds the uniform hook and the registry; ``scenarios.model`` the
``ScenarioModel`` (a model with a scenario's levers, for Mesa's tools); every other module in
this package defines one lever family and registers it on import.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("base", "model"):
        importlib.import_module(f"{__name__}.{_mod.name}")

from scenarios.model import ScenarioModel  # noqa: E402  (after the levers are registered)

__all__ = ["ScenarioModel"]
