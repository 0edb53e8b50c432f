"""Invocations tracked by the backends and run by a runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pynenc.client_data_store.base import RESULT_MARKER
from pynenc.context import current_invocation
from pynenc.exceptions import (
    ConcurrencyControlledError,
    InvocationNotFoundError,
    InvocationTimeoutError,
)
from pynenc.invocation.base import BaseInvocation
from pynenc.invocation.errors import decode_exception
from pynenc.invocation.status import InvocationStatus, StatusRecord

if TYPE_CHECKING:
    from pynenc.app import Pynenc

R = TypeVar("R")


class DistributedInvocation(BaseInvocation[R]):
    __slots__ = ()

    @property
    def app(self) -> Pynenc:
        return self.task.app

    @property
    def status(self) -> InvocationStatus:
        state = self.app.orchestrator.get_state(self.invocation_id)
        if state is None:
            raise InvocationNotFoundError(self.invocation_id)
        return InvocationStatus(state.status)

    @property
    def num_retries(self) -> int:
        state = self.app.orchestrator.get_state(self.invocation_id)
        return state.num_retries if state else 0

    @property
    def history(self) -> list[StatusRecord]:
        return self.app.state_backend.get_history(self.invocation_id)

    @property
    def result(self) -> R:
        return self.get_result(timeout_sec=None)

    def get_result(self, timeout_sec: float | None) -> R:
        app, ids = self.app, [self.invocation_id]
        # done already: one read (maybe fetched with an earlier call's), no wait set up
        raw = app.submitter.readahead.result(self.invocation_id, app.state_backend.get_results)
        if raw is not None:
            return _decode_result(app, raw)  # type: ignore[no-any-return]
        wait_for_final(app, ids, timeout_sec)
        raw = app.orchestrator.delivered_results(ids).get(self.invocation_id)
        if raw is not None:
            return _decode_result(app, raw)  # type: ignore[no-any-return]
        return final_values(app, ids)[0]  # type: ignore[no-any-return]


def wait_for_final(app: Pynenc, invocation_ids: Sequence[str], timeout_sec: float | None) -> None:
    """Block until final; inside a runner, the runner frees this slot while waiting."""
    ctx = current_invocation.get()
    if ctx is not None and ctx.runner is not None:
        done = ctx.runner.wait_for_invocations(ctx, invocation_ids, timeout_sec)
    else:
        done = app.orchestrator.wait_for_final(invocation_ids, timeout_sec)
    if not done:
        raise InvocationTimeoutError(invocation_ids[0], timeout_sec or 0.0)


def _decode_result(app: Pynenc, raw: bytes) -> Any:
    if raw.startswith(RESULT_MARKER):
        raw = app.client_data_store.resolve_value(raw)
    return app.serializer.loads(raw)


def final_values(app: Pynenc, invocation_ids: Sequence[str]) -> list[Any]:
    """Results of final invocations, in order; raises the first failure met."""
    results = app.state_backend.get_results(invocation_ids)
    missing = [i for i in invocation_ids if i not in results]
    states = app.orchestrator.get_states(missing) if missing else {}
    values: list[Any] = []
    for invocation_id in invocation_ids:
        if invocation_id in results:
            values.append(_decode_result(app, results[invocation_id]))
            continue
        state = states.get(invocation_id)
        if state is None:
            raise InvocationNotFoundError(invocation_id)
        if state.status == InvocationStatus.CONCURRENCY_CONTROLLED_FINAL:
            raise ConcurrencyControlledError(
                f"Invocation '{invocation_id}' of '{state.task_id}' was not run: another one "
                "held its running concurrency slot (reroute_on_concurrency_control=False)."
            )
        encoded = app.state_backend.get_exception(invocation_id)
        if encoded is None:
            raise InvocationNotFoundError(invocation_id)
        if encoded.startswith(RESULT_MARKER):
            encoded = app.client_data_store.resolve_value(encoded)
        raise decode_exception(invocation_id, encoded)
    return values
