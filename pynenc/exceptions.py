"""The error hierarchy: one root, a few groups, messages that say what to do next."""

from __future__ import annotations


class PynencError(Exception):
    """Root of every error pynenc raises on its own behalf."""


class ConfigError(PynencError, ValueError):
    """A setting, builder call or combination of components that cannot work."""


class MissingExtraError(ConfigError, ImportError):
    """A component was selected whose optional package is not installed."""

    def __init__(self, component: str, package: str, extra: str) -> None:
        self.component, self.package, self.extra = component, package, extra
        super().__init__(
            f"{component} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'pynenc[{extra}]'"
        )


class TaskDefinitionError(PynencError, TypeError):
    """A task cannot be defined as written (bad option, defined in __main__, ...)."""


class InvalidTaskOptionError(TaskDefinitionError):
    """An unknown or mistyped option was passed to ``@app.task``."""


class SerializationError(PynencError, TypeError):
    """A value could not be encoded or decoded by the configured serializer."""


class ArgumentSerializationError(SerializationError):
    """A task argument the chosen serializer cannot encode; raised in the caller."""

    def __init__(self, task_id: str, argument: str, serializer: str, cause: BaseException) -> None:
        self.task_id, self.argument, self.serializer = task_id, argument, serializer
        super().__init__(
            f"Argument '{argument}' of task '{task_id}' cannot be encoded by {serializer}: "
            f"{cause}. Pass a value that serializer supports, or choose another serializer "
            f"(e.g. PynencBuilder().serializer_json_pickle())."
        )


class InvocationError(PynencError):
    """Base of errors about a specific invocation."""

    def __init__(self, invocation_id: str, message: str) -> None:
        self.invocation_id = invocation_id
        super().__init__(message)


class InvocationNotFoundError(InvocationError):
    def __init__(self, invocation_id: str) -> None:
        super().__init__(invocation_id, f"No invocation with id '{invocation_id}' in this app.")


class InvocationTimeoutError(InvocationError, TimeoutError):
    def __init__(self, invocation_id: str, timeout: float) -> None:
        super().__init__(
            invocation_id, f"Invocation '{invocation_id}' did not finish within {timeout}s."
        )


class RemoteTaskError(InvocationError):
    """A task failed with an exception that could not be rebuilt in the caller."""

    def __init__(self, invocation_id: str, type_name: str, message: str, traceback: str) -> None:
        self.type_name, self.remote_traceback = type_name, traceback
        super().__init__(invocation_id, f"{type_name}: {message}\n\nRemote traceback:\n{traceback}")


class StatusTransitionError(PynencError):
    """Base of errors raised by the status machine."""


class InvalidStatusTransitionError(StatusTransitionError):
    def __init__(self, invocation_id: str | None, current: object, new: object) -> None:
        self.invocation_id, self.current, self.new = invocation_id, current, new
        target = f" for invocation '{invocation_id}'" if invocation_id else ""
        super().__init__(f"Illegal status transition {current} -> {new}{target}.")


class StatusOwnershipError(StatusTransitionError):
    def __init__(
        self, invocation_id: str | None, status: object, owner: str | None, runner: str | None
    ) -> None:
        self.invocation_id, self.status, self.owner, self.runner = (
            invocation_id,
            status,
            owner,
            runner,
        )
        super().__init__(
            f"Runner '{runner}' cannot set {status} on invocation '{invocation_id}': "
            f"it is owned by runner '{owner}'."
        )


class RetryError(PynencError):
    """Raise inside a task to ask for a retry (counts against ``max_retries``)."""


class ConcurrencyControlledError(PynencError):
    """A registration was refused by ``registration_concurrency``."""


class KeyArgumentsMismatchError(ConcurrencyControlledError):
    """Same key arguments but different other arguments, with ``on_diff_non_key_args_raise``."""


class BackendError(PynencError):
    """A backend could not complete an operation (connection lost past the retry limit, ...)."""


class RunnerError(PynencError):
    """A runner cannot start or keep running as configured."""


class ClientDataStoreError(PynencError):
    """The client data store could not store or return a large value."""


class MissingStoredValueError(ClientDataStoreError, KeyError):
    """A large argument, result or exception was passed by key, and the key is not stored."""

    def __init__(self, key: str, store: str, app_id: str) -> None:
        self.key, self.store, self.app_id = key, store, app_id
        super().__init__(
            f"Value '{key}' is not in the client data store ({store}) of app '{app_id}': it "
            "was purged, or this process uses a different store than the caller. Point "
            "clients and runners at the same client_data_store_cls (and backend), or call "
            "the task again to store the value anew."
        )

    def __str__(self) -> str:
        return str(self.args[0])
