"""Run one invocation's function and turn what happened into an Outcome."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynenc.arguments import format_arguments
from pynenc.call import unpack_with_references
from pynenc.context import InvocationContext, current_invocation
from pynenc.invocation.errors import encode_exception
from pynenc.invocation.status import InvocationStatus

if TYPE_CHECKING:
    from pynenc.app import Pynenc
    from pynenc.invocation.record import InvocationRecord
    from pynenc.runner.base import BaseRunner
    from pynenc.task import Task


@dataclass(slots=True)
class Outcome:
    """The end of one execution: SUCCESS with a result, FAILED with an exception, or RETRY
    after ``retry_delay`` seconds. Runners that report progress also write plain status
    changes as Outcomes (RUNNING, PAUSED, RESUMED, REROUTED: no result)."""

    invocation_id: str
    status: InvocationStatus
    result: bytes | None = None
    exception: bytes | None = None
    retry_delay: float = 0.0


def execute(
    app: Pynenc,
    record: InvocationRecord,
    num_retries: int,
    runner: BaseRunner | None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Outcome:
    """Execute with the invocation's context set; never raises for the task's own errors."""
    token = current_invocation.set(_context(record, num_retries, runner))
    try:
        task, value = _call(app, record)
        if task.is_async:
            value = (loop or asyncio.new_event_loop()).run_until_complete(value)
        return _success(app, record, value)
    except Exception as exc:
        return _failure(app, record, num_retries, exc)
    finally:
        current_invocation.reset(token)


async def execute_async(
    app: Pynenc, record: InvocationRecord, num_retries: int, runner: BaseRunner | None
) -> Outcome:
    """``execute`` awaited on the caller's running event loop (one loop serves many)."""
    token = current_invocation.set(_context(record, num_retries, runner))
    try:
        task, value = _call(app, record)
        if task.is_async:
            value = await value
        return _success(app, record, value)
    except Exception as exc:
        return _failure(app, record, num_retries, exc)
    finally:
        current_invocation.reset(token)


def _context(
    record: InvocationRecord, num_retries: int, runner: BaseRunner | None
) -> InvocationContext:
    return InvocationContext(
        record.invocation_id,
        record.task_id,
        record.workflow_id,
        record.workflow_task_id,
        runner,
        num_retries,
    )


def _call(app: Pynenc, record: InvocationRecord) -> tuple[Task[Any, Any], Any]:
    """Call the task's function: its value, or the coroutine of an async task."""
    task = app.get_task(record.task_id)
    values, references = unpack_with_references(record.arguments)
    if references:
        values = app.client_data_store.resolve(values, references)
    loads = app.serializer.loads
    kwargs = {name: loads(value) for name, value in values.items()}
    if app.logger.isEnabledFor(logging.DEBUG):
        app.logger.debug("Running %s %s", record.task_id, _shown(app, kwargs))
    return task, task.func(**kwargs)


def _success(app: Pynenc, record: InvocationRecord, value: Any) -> Outcome:
    result = app.serializer.dumps(value)
    store = app.client_data_store
    if len(result) >= store.min_size:
        result = store.externalize_value(result)
    return Outcome(record.invocation_id, InvocationStatus.SUCCESS, result=result)


def _failure(app: Pynenc, record: InvocationRecord, num_retries: int, exc: Exception) -> Outcome:
    task = app.tasks.get(record.task_id)
    if task is None or not isinstance(exc, task.conf.retry_for):
        return _failed(app, record, exc)
    if num_retries >= task.conf.max_retries:
        return _failed(app, record, exc)
    delay = task.conf.retry_delay(num_retries + 1)
    app.logger.info(
        "Retrying %s (%d/%d) in %.3fs after %r",
        record.invocation_id,
        num_retries + 1,
        task.conf.max_retries,
        delay,
        exc,
    )
    return Outcome(record.invocation_id, InvocationStatus.RETRY, retry_delay=delay)


def _failed(app: Pynenc, record: InvocationRecord, exc: Exception) -> Outcome:
    encoded = encode_exception(exc)
    try:
        store = app.client_data_store
        if len(encoded) >= store.min_size:
            encoded = store.externalize_value(encoded)
    except Exception:  # an unreachable store must not lose the task's own error
        app.logger.exception("Could not store the exception of %s", record.invocation_id)
    return Outcome(record.invocation_id, InvocationStatus.FAILED, exception=encoded)


def _shown(app: Pynenc, kwargs: dict[str, Any]) -> str:
    conf = app.conf
    mode = conf.argument_print_mode if conf.print_arguments else "HIDDEN"
    return format_arguments(kwargs, str(mode), conf.truncate_arguments_length)
