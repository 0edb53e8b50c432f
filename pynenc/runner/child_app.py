"""Rebuild the runner's app inside a child process (spawn / forkserver never inherit it).

The child imports the module that defines the app and applies the parent's config values,
so it sees exactly the parent's configuration (including ``reconfigure`` calls)."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynenc.exceptions import RunnerError

if TYPE_CHECKING:
    from pynenc.app import Pynenc


@dataclass(frozen=True, slots=True)
class AppReference:
    """Where a child finds the app: ``module``'s attribute ``attr``, plus its config."""

    module: str
    attr: str
    config_values: dict[str, Any] = field(default_factory=dict)
    config_filepath: str | None = None
    sys_path: tuple[str, ...] = ()


def _find_attribute(app: Pynenc, module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    if module is None:
        return None
    return next((name for name, value in vars(module).items() if value is app), None)


def reference_to(app: Pynenc) -> AppReference:
    """How a child process can import ``app``: where it was loaded from by the CLI, or the
    module of one of its tasks."""
    candidates = [app.app_ref] if app.app_ref else []
    candidates += sorted({task.func.__module__ for task in app.tasks.values()})
    for candidate in candidates:
        module_name, _, attr = candidate.partition(":")
        attr = attr or _find_attribute(app, module_name) or ""
        if attr:
            return AppReference(
                module_name,
                attr,
                dict(app.config_values),
                app.config_filepath,
                tuple(sys.path),
            )
    raise RunnerError(
        f"App '{app.app_id}' cannot be found by a child process: it has no tasks defined at "
        "module level and was not loaded with --app. Start the runner with "
        "`pynenc --app module.app runner start`."
    )


def load_app(ref: AppReference) -> Pynenc:
    """Import the app in this (child) process and give it the parent's configuration."""
    for entry in reversed(ref.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module = importlib.import_module(ref.module)
    app: Pynenc = getattr(module, ref.attr)
    if app.config_values != ref.config_values or app.config_filepath != ref.config_filepath:
        app.config_filepath = ref.config_filepath
        app.config_values.clear()
        app.reconfigure(**ref.config_values)
    app.app_ref = f"{ref.module}:{ref.attr}"
    return app
