"""Find the app a command works on: ``--app module.attr`` / ``module:attr``, or the one
``Pynenc`` instance defined in the current directory's top-level modules."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

from pynenc.app import Pynenc
from pynenc.cli.console import CLIError

# Modules never imported while looking for an app: packaging and test scaffolding.
_SKIPPED_MODULES = frozenset({"setup", "conftest", "noxfile", "fabfile"})


def ensure_cwd_on_path() -> None:
    """Make modules of the current directory importable (the installed script does not)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # modules written just before (generated apps, tests)


def load_app(spec: str | None) -> tuple[Pynenc, str]:
    """The app named by ``spec``, or the single one discovered; also returns its spelling."""
    ensure_cwd_on_path()
    app, spelling = (import_app(spec), spec) if spec else discover_app(Path.cwd())
    _remember_reference(app)
    return app, spelling


def _remember_reference(app: Pynenc) -> None:
    """Note where the app lives, so runner child processes can import it again."""
    for name, module in list(sys.modules.items()):
        attr = next((a for a, v in vars(module).items() if v is app), None) if module else None
        if attr and name != "__main__":
            app.app_ref = f"{name}:{attr}"
            return


def import_app(spec: str) -> Pynenc:
    """``pkg.mod.app``, ``pkg.mod:app`` or just ``pkg.mod`` (which must hold one app)."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        return _app_attribute(_import(module_name, spec), attr, spec)
    module_name, _, attr = spec.rpartition(".")
    if module_name and not _is_module(spec):
        return _app_attribute(_import(module_name, spec), attr, spec)
    return _single_app(_import(spec, spec), spec)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def _import(module_name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise _import_failed(module_name, spec, exc) from None


def _import_failed(module_name: str, spec: str, exc: BaseException) -> CLIError:
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        return CLIError(
            f"--app {spec}: module '{module_name}' not found (from {os.getcwd()}). "
            "Run pynenc from your project directory or check the spelling."
        )
    return CLIError(f"--app {spec}: importing '{module_name}' failed: {_describe(exc)}")


def _app_attribute(module: ModuleType, attr: str, spec: str) -> Pynenc:
    found = getattr(module, attr, None)
    if isinstance(found, Pynenc):
        return found
    if found is None:
        apps = ", ".join(_apps_in(module)) or "none"
        raise CLIError(
            f"--app {spec}: module '{module.__name__}' has no attribute '{attr}' "
            f"(Pynenc apps in it: {apps})."
        )
    raise CLIError(
        f"--app {spec}: '{attr}' is a {type(found).__name__}, not a Pynenc app "
        "(build one with PynencBuilder().build() or Pynenc())."
    )


def _single_app(module: ModuleType, spec: str) -> Pynenc:
    names = _apps_in(module)
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise CLIError(
            f"--app {spec}: expected one Pynenc app in module '{module.__name__}', found: "
            f"{found}. Name it, e.g. --app {module.__name__}.app."
        )
    app: Pynenc = getattr(module, names[0])
    return app


def _apps_in(module: ModuleType) -> list[str]:
    return [name for name, value in vars(module).items() if isinstance(value, Pynenc)]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- discovery --------------------------------------------------------------------------


def candidate_modules(directory: Path) -> list[str]:
    """Top-level modules of ``directory`` that may define an app, in name order.

    Only files that mention pynenc are imported: discovery must not run unrelated scripts.
    """
    names = []
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        if name.startswith(("_", "test")) or name in _SKIPPED_MODULES or not name.isidentifier():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "pynenc" in text.lower():
            names.append(name)
    return names


def discover_app(directory: Path) -> tuple[Pynenc, str]:
    """The one ``Pynenc`` instance at module level in ``directory``'s top-level modules."""
    found: dict[int, tuple[Pynenc, list[str]]] = {}
    failures: list[str] = []
    for module_name in candidate_modules(directory):
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            failures.append(f"{module_name}.py ({_describe(exc)})")
            continue
        for attr in _apps_in(module):
            app = getattr(module, attr)
            # The same app imported into several modules counts once.
            found.setdefault(id(app), (app, []))[1].append(f"{module_name}.{attr}")
    if len(found) == 1:
        app, spellings = next(iter(found.values()))
        return app, _defining_spelling(app, spellings)
    raise CLIError(_discovery_message(directory, found, failures))


def _defining_spelling(app: Pynenc, spellings: list[str]) -> str:
    """Of the modules an app is imported into, prefer the one its tasks are defined in."""
    task_modules = {task_id.rpartition(".")[0] for task_id in app.tasks}
    return next((s for s in spellings if s.rpartition(".")[0] in task_modules), spellings[0])


def _discovery_message(
    directory: Path, found: dict[int, tuple[Pynenc, list[str]]], failures: list[str]
) -> str:
    if found:
        listed = ", ".join(f"{names[0]} (app_id '{app.app_id}')" for app, names in found.values())
        return f"Found {len(found)} Pynenc apps in {directory}: {listed}. Pass --app to pick one."
    message = f"No Pynenc app found in the top-level modules of {directory}."
    if failures:
        message += f" Could not import: {'; '.join(failures)}."
    return message + " Pass --app module.attr (e.g. --app tasks.app)."


class AppRef:
    """The app a command works on, imported only when the command first asks for it
    (``--version`` and ``status render`` never import user code)."""

    def __init__(self, spec: str | None, verbose: bool = False) -> None:
        self._spec = spec
        self._verbose = verbose
        self._loaded: tuple[Pynenc, str] | None = None

    def _load(self) -> tuple[Pynenc, str]:
        if self._loaded is None:
            self._loaded = load_app(self._spec)
            if self._verbose:  # after the import: building the app configures logging
                logging.getLogger("pynenc").setLevel(logging.DEBUG)
        return self._loaded

    @property
    def app(self) -> Pynenc:
        return self._load()[0]

    @property
    def spec(self) -> str:
        """How the app is named on the command line (``tasks.app``), also when discovered."""
        return self._load()[1]
