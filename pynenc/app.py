"""The application: configuration, components and the task registry."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from pynenc.backends.registry import load_component
from pynenc.conf.config_pynenc import ConfigPynenc
from pynenc.exceptions import ConfigError, InvocationNotFoundError
from pynenc.invocation.dist import DistributedInvocation
from pynenc.invocation.submit import Submitter
from pynenc.log import configure_logging
from pynenc.serializer import get_serializer
from pynenc.task import DirectTask, Task, WorkflowTask

if TYPE_CHECKING:
    from pynenc.broker.base import BaseBroker
    from pynenc.client_data_store.base import BaseClientDataStore
    from pynenc.orchestrator.base import BaseOrchestrator
    from pynenc.runner.base import BaseRunner
    from pynenc.serializer.base import BaseSerializer
    from pynenc.state_backend.base import BaseStateBackend
    from pynenc.trigger.base_trigger import BaseTrigger
    from pynenc.trigger.trigger_builder import TriggerDefinition
    from pynenc.workflow.context import WorkflowNode

P = ParamSpec("P")
R = TypeVar("R")


class Pynenc:
    """A pynenc application.

    Components are built lazily from config (``*_cls`` names), so defining tasks never
    touches a backend.
    """

    def __init__(
        self,
        app_id: str | None = None,
        config_values: dict[str, Any] | None = None,
        config_filepath: str | None = None,
    ) -> None:
        self.config_values: dict[str, Any] = dict(config_values or {})
        if app_id is not None:
            self.config_values["app_id"] = app_id
        self.config_filepath = config_filepath
        self.conf = ConfigPynenc(self.config_values, config_filepath)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.logger: logging.Logger = configure_logging(self.conf)
        self._runner: BaseRunner | None = None
        # "module:attr" this app was imported from (set by the CLI), for child processes
        self.app_ref: str | None = None
        self._components_lock = threading.RLock()
        # trigger definitions of this app's tasks, registered when each task is defined
        self.trigger_definitions: list[TriggerDefinition] = []

    def __repr__(self) -> str:
        return f"Pynenc(app_id={self.app_id!r})"

    def reconfigure(self, **config_values: Any) -> None:
        """Merge new config values and rebuild config and components (tests, CLI tools).

        Tasks keep their identity; their settings are re-resolved against the new values.
        """
        self.close()
        for name in (
            "broker",
            "orchestrator",
            "state_backend",
            "client_data_store",
            "serializer",
            "submitter",
            "trigger",
        ):
            self.__dict__.pop(name, None)
        self._runner = None
        self.config_values.update(config_values)
        self.conf = ConfigPynenc(self.config_values, self.config_filepath)
        self.logger = configure_logging(self.conf)
        for task in self.tasks.values():
            task.reload_config()

    @property
    def app_id(self) -> str:
        return self.conf.app_id

    # --- components -------------------------------------------------------------------

    def _cached(self, attr: str, make: Callable[[], Any]) -> Any:
        """Build a component once, even when several threads ask for it first at once."""
        found = self.__dict__.get(attr)
        if found is None:
            with self._components_lock:
                found = self.__dict__.get(attr)
                if found is None:
                    found = self.__dict__[attr] = make()
        return found

    def _component(self, attr: str, name: str) -> Any:
        return self._cached(attr, lambda: load_component(name)(self))

    @property
    def broker(self) -> BaseBroker:
        return self._component("broker", self.conf.broker_cls)  # type: ignore[no-any-return]

    @property
    def orchestrator(self) -> BaseOrchestrator:
        return self._component(  # type: ignore[no-any-return]
            "orchestrator", self.conf.orchestrator_cls
        )

    @property
    def state_backend(self) -> BaseStateBackend:
        return self._component(  # type: ignore[no-any-return]
            "state_backend", self.conf.state_backend_cls
        )

    @property
    def client_data_store(self) -> BaseClientDataStore:
        return self._component(  # type: ignore[no-any-return]
            "client_data_store", self.conf.client_data_store_cls
        )

    @property
    def trigger(self) -> BaseTrigger:
        return self._component("trigger", self.conf.trigger_cls)  # type: ignore[no-any-return]

    @property
    def serializer(self) -> BaseSerializer:
        return self._cached(  # type: ignore[no-any-return]
            "serializer", lambda: get_serializer(self.conf.serializer_cls)()
        )

    @property
    def submitter(self) -> Submitter:
        return self._cached("submitter", lambda: Submitter(self))  # type: ignore[no-any-return]

    @property
    def runner(self) -> BaseRunner:
        if self._runner is None:
            with self._components_lock:
                if self._runner is None:
                    self._runner = load_component(self.conf.runner_cls)(self)
        return self._runner

    @runner.setter
    def runner(self, runner: BaseRunner) -> None:
        self._runner = runner

    # --- tasks --------------------------------------------------------------------------

    @overload
    def task(self, func: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(self, func: None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, func: Callable[P, R] | None = None, **options: Any) -> Any:
        """Register a task: ``@app.task`` or ``@app.task(max_retries=3, ...)``."""
        cls = WorkflowTask if options.get("force_new_workflow") else Task
        return self._decorate(cls, func, options)

    def direct_task(self, func: Callable[P, R] | None = None, **options: Any) -> Any:
        """Like ``task``, but calling it returns the result itself."""
        return self._decorate(DirectTask, func, options)

    def workflow(self, func: Callable[P, R] | None = None, **options: Any) -> Any:
        """A task that starts a workflow run of its own, even when called from another."""
        return self._decorate(WorkflowTask, func, {**options, "force_new_workflow": True})

    def _decorate(
        self, cls: type[Task[Any, Any]], func: Callable[..., Any] | None, options: dict[str, Any]
    ) -> Any:
        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            task = cls(self, f, options)
            self.tasks[task.task_id] = task
            return task

        return register(func) if func is not None else register

    def get_task(self, task_id: str) -> Task[Any, Any]:
        """A task by id, importing its module when this process has not yet."""
        task = self.tasks.get(task_id)
        if task is not None:
            return task
        module_name, _, name = task_id.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(
                f"Task '{task_id}' cannot be run here: module '{module_name}' does not import "
                f"({exc}). Start the runner where that module is importable."
            ) from exc
        found = getattr(module, name, None)
        if isinstance(found, Task):
            self.tasks.setdefault(task_id, found)
            return found
        raise ConfigError(f"'{task_id}' is not a task of app '{self.app_id}'.")

    def get_invocation(self, invocation_id: str) -> DistributedInvocation[Any]:
        record = self.state_backend.get_invocation(invocation_id)
        if record is None:
            raise InvocationNotFoundError(invocation_id)
        return DistributedInvocation(self.get_task(record.task_id), invocation_id)

    def get_workflow_invocations(self, workflow_id: str) -> list[WorkflowNode]:
        """The invocation tree of one workflow run: ids, tasks and parents, oldest first."""
        from pynenc.workflow.context import get_workflow_invocations

        return get_workflow_invocations(self, workflow_id)

    def purge(self) -> None:
        """Delete every queued id, invocation, result and history entry of this app only."""
        self.broker.purge()
        self.orchestrator.purge()
        self.state_backend.purge()
        if self.trigger_definitions or "trigger" in self.__dict__:
            self.trigger.purge()
        self.client_data_store.purge()
        if "submitter" in self.__dict__:
            self.submitter.readahead.clear()

    def close(self) -> None:
        for name in ("broker", "orchestrator", "state_backend", "client_data_store", "trigger"):
            if name in self.__dict__:
                self.__dict__[name].close()
