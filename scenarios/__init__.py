"""Policy levers.

``scenarios.base`` holds the uniform hook and the registry; every other module in this
package defines one lever family and registers it on import.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")
