"""An occurrence a trigger reacts to (a cron due time, an event, an invocation's outcome),
kept as the bytes the backends already hold, so an AND trigger can store it until its
other conditions are met and rebuild the context when it fires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from pynenc.arguments import Arguments
from pynenc.invocation.status import InvocationStatus
from pynenc.trigger.conditions import TriggerContext

if TYPE_CHECKING:
    from pynenc.app import Pynenc


@dataclass(slots=True)
class Occurrence:
    kind: str  # "cron", "event" or "invocation"
    timestamp: float
    key: str
    """Unique per occurrence (due time, event id, invocation id + status): claims use it."""
    event_code: str | None = None
    event_id: str | None = None
    payload: bytes | None = None
    task_id: str | None = None
    invocation_id: str | None = None
    status: str | None = None
    arguments: bytes | None = None
    result: bytes | None = None
    exception: bytes | None = None

    def pack(self) -> bytes:
        return msgpack.packb([getattr(self, name) for name in self.__slots__])  # type: ignore[no-any-return]

    @classmethod
    def unpack(cls, data: bytes) -> Occurrence:
        return cls(*msgpack.unpackb(data))

    def context(self, app: Pynenc) -> TriggerContext:
        """The decoded context argument providers and filters read."""
        from pynenc.invocation.errors import decode_exception

        loads = app.serializer.loads
        payload: dict[str, Any] = loads(self.payload) if self.payload is not None else {}
        arguments = _arguments(app, self.arguments) if self.arguments is not None else {}
        exception = (
            decode_exception(
                self.invocation_id or "", app.client_data_store.resolve_value(self.exception)
            )
            if self.exception is not None
            else None
        )
        return TriggerContext(
            self.kind,
            timestamp=self.timestamp,
            event_code=self.event_code,
            payload=payload,
            event_id=self.event_id,
            task_id=self.task_id,
            invocation_id=self.invocation_id,
            status=InvocationStatus(self.status) if self.status is not None else None,
            arguments=Arguments(arguments),
            result=_result(app, self.result),
            exception=exception,
        )


def _arguments(app: Pynenc, data: bytes) -> dict[str, Any]:
    # large arguments live in the client data store: filters see the values, not the keys
    from pynenc.call import unpack_with_references

    values, references = unpack_with_references(data)
    if references:
        values = app.client_data_store.resolve(values, references)
    return {name: app.serializer.loads(value) for name, value in values.items()}


def _result(app: Pynenc, data: bytes | None) -> Any:
    if data is None:
        return None
    return app.serializer.loads(app.client_data_store.resolve_value(data))
