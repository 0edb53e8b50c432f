"""Tasks: functions registered with an app, called to get invocations."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from pynenc.arguments import Arguments
from pynenc.conf.config_task import ConcurrencyControlType, ConfigTask
from pynenc.exceptions import TaskDefinitionError
from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.group import InvocationGroup
from pynenc.invocation.sync import SyncInvocation

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.workflow.context import WorkflowContext

P = ParamSpec("P")
R = TypeVar("R")

ArgumentsLike = tuple[Any, ...] | dict[str, Any] | Arguments


def task_id_of(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _refuse_unimportable(func: Callable[..., Any]) -> None:
    if func.__module__ == "__main__":
        raise TaskDefinitionError(
            f"Task '{func.__qualname__}' is defined in __main__. Runners run in other "
            "processes and find a task by importing its module, which they cannot do for "
            "the script you started. Move the task into a module (e.g. tasks.py) and import "
            "it from your script."
        )
    if "<locals>" in func.__qualname__:
        raise TaskDefinitionError(
            f"Task '{func.__qualname__}' is defined inside a function; runners find tasks "
            "by importing their module, so define it at module level."
        )


class Task(Generic[P, R]):
    """A function registered with ``@app.task``; calling it returns an invocation."""

    def __init__(self, app: Pynenc, func: Callable[P, R], options: dict[str, Any]) -> None:
        _refuse_unimportable(func)
        self.app = app
        self.func = func
        self.task_id = task_id_of(func)
        options = dict(options)
        triggers = options.pop("triggers", None)  # a task-layer option, not a config field
        self.options = options
        self.conf = ConfigTask(
            self.task_id, app.config_values, app.config_filepath, task_options=options
        )
        self._register_triggers(triggers)
        self.signature = inspect.signature(func)
        # names of a signature that a full positional call fills in order (the common case,
        # bound without inspect's generic machinery); None for any other signature
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in self.signature.parameters.values())
        self._positional_names = tuple(self.signature.parameters) if plain else None
        self._check_key_arguments()
        self.is_async = inspect.iscoroutinefunction(func)
        self.logger = logging.getLogger(f"pynenc.task.{self.task_id}")
        self.__doc__ = func.__doc__
        self.__name__ = getattr(func, "__name__", self.task_id)
        self.__wrapped__ = func

    def __repr__(self) -> str:
        return f"Task({self.task_id})"

    @property
    def is_workflow_root_task(self) -> bool:
        """Whether each call defines a workflow run (``@app.workflow``)."""
        return bool(self.conf.force_new_workflow)

    @property
    def wf(self) -> WorkflowContext:
        """The workflow of this task's running invocation; a workflow task's also has
        ``root`` (orchestration only it may do). Raises outside a running invocation."""
        from pynenc.workflow.context import WorkflowContext, WorkflowRootContext

        if self.is_workflow_root_task:
            return WorkflowRootContext(self)
        return WorkflowContext(self)

    def _register_triggers(self, triggers: Any) -> None:
        if triggers is None:
            return
        builders = triggers if isinstance(triggers, list | tuple) else [triggers]
        known = self.app.trigger_definitions
        known[:] = [d for d in known if d.task_id != self.task_id]  # re-definition replaces
        known.extend(b.build(self.task_id, n) for n, b in enumerate(builders))

    def reload_config(self) -> None:
        self.conf = ConfigTask(
            self.task_id, self.app.config_values, self.app.config_filepath, self.options
        )

    def _check_key_arguments(self) -> None:
        unknown = [k for k in self.conf.key_arguments if k not in self.signature.parameters]
        if unknown:
            raise TaskDefinitionError(
                f"Task '{self.task_id}': key_arguments {unknown} are not parameters of the "
                f"function (parameters: {list(self.signature.parameters)})."
            )
        uses_keys = ConcurrencyControlType.KEYS in (
            self.conf.running_concurrency,
            self.conf.registration_concurrency,
        )
        if uses_keys and not self.conf.key_arguments:
            raise TaskDefinitionError(
                f"Task '{self.task_id}' uses KEYS concurrency control but sets no "
                "key_arguments; pass key_arguments=('name', ...) or use ARGUMENTS."
            )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> BaseInvocation[R]:
        if self.app.conf.dev_mode_force_sync_tasks:
            return self._run_inline(args, kwargs)
        return self.app.submitter.submit_one(self, self.bind(args, kwargs))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by name, defaults applied, as the function would see them."""
        names = self._positional_names
        if names is not None and not kwargs and len(args) == len(names):
            return dict(zip(names, args, strict=True))
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"Invalid arguments for task '{self.task_id}': {exc}") from None
        bound.apply_defaults()
        return bound.arguments

    def args(self, *args: P.args, **kwargs: P.kwargs) -> Arguments:
        """Build an Arguments for ``parallelize`` with the function's own signature."""
        return Arguments(self.bind(args, kwargs))

    def _to_kwargs(self, item: ArgumentsLike) -> dict[str, Any]:
        if isinstance(item, Arguments):
            return item.kwargs
        if isinstance(item, dict):
            return item
        if isinstance(item, tuple):
            return self.bind(item, {})
        raise TypeError(
            f"parallelize() of '{self.task_id}' takes tuples, dicts or task.args(...) items; "
            f"got {type(item).__name__}."
        )

    def parallelize(
        self,
        param_iter: Iterable[ArgumentsLike],
        common_args: dict[str, Any] | None = None,
    ) -> InvocationGroup[R]:
        """Invoke the task once per item; ``common_args`` are added to every call and
        serialized only once."""
        common = dict(common_args or {})
        if self.app.conf.dev_mode_force_sync_tasks:
            invocations = [
                self._run_inline((), {**common, **self._to_kwargs(item)}) for item in param_iter
            ]
            return InvocationGroup(self, invocations)
        if common:
            calls = [self._to_kwargs_with_common(item, common) for item in param_iter]
        else:
            calls = self._bind_items(param_iter)
        ids = self.app.submitter.submit_ids(self, calls, common=common)
        return InvocationGroup(self, invocation_ids=ids)

    def _bind_items(self, items: Iterable[ArgumentsLike]) -> list[dict[str, Any]]:
        """Each item bound like a call; tuples that fill a plain signature take a short cut."""
        names = self._positional_names
        if names is None:
            return [self._bind_item(item) for item in items]
        width = len(names)
        return [
            dict(zip(names, item))  # noqa: B905 (the length is checked first)
            if type(item) is tuple and len(item) == width
            else self._bind_item(item)
            for item in items
        ]

    def _bind_item(self, item: ArgumentsLike) -> dict[str, Any]:
        return self.bind((), item) if isinstance(item, dict) else self._to_kwargs(item)

    def _to_kwargs_with_common(self, item: ArgumentsLike, common: dict[str, Any]) -> dict[str, Any]:
        """The item's own arguments, defaults applied, without the common ones."""
        if isinstance(item, tuple):
            # positional items fill the parameters that common_args leaves open
            free = [n for n in self.signature.parameters if n not in common]
            own = dict(zip(free, item, strict=False))
        else:
            own = self._to_kwargs(item)
        bound = self.bind((), {**common, **own})
        return {k: v for k, v in bound.items() if k not in common}

    def _run_inline(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SyncInvocation[R]:
        retries = 0
        while True:
            try:
                value = self.func(*args, **kwargs)
                if self.is_async:
                    import asyncio

                    value = asyncio.run(value)  # type: ignore[arg-type]
                return SyncInvocation(self, value, None, retries)
            except self.conf.retry_for as exc:
                if retries >= self.conf.max_retries:
                    return SyncInvocation(self, None, exc, retries)
                retries += 1
                time.sleep(self.conf.retry_delay(retries))
            except Exception as exc:
                return SyncInvocation(self, None, exc, retries)


class WorkflowTask(Task[P, R]):
    """``@app.workflow``: each call defines a workflow run (a sub-workflow when called from
    another run); ``task.wf.root`` orchestrates it."""


class DirectTask(Task[P, R]):
    """``@app.direct_task``: calling it returns the value itself (waits for the result)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:  # type: ignore[override]
        return super().__call__(*args, **kwargs).result
