"""Every module in this package is one check: `META` (its metadata) and `evaluate(ctx)`, and
optionally `plan`, its fix planner (doctor/fix/plan.py).

Adding a check means adding a module here, its doc under docs/checks/ and a fixture folder
under tests/fixtures/checks/; nothing else needs to know about it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from doctor.check import Check

__all__ = ["Check", "all_checks"]  # `Check` lives in the framework (doctor.check)


@cache
def all_checks() -> dict[str, Check]:
    """Checks by id, in a stable order (module name)."""
    found: dict[str, Check] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        check = Check(module.META, module.evaluate, getattr(module, "plan", None))
        found[check.meta.id] = check
    return found
