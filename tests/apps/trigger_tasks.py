"""Tasks with triggers for tests/test_triggers.py (importable, module level)."""

from __future__ import annotations

from typing import Any

from pynenc import Pynenc
from pynenc.trigger.conditions import TriggerContext
from pynenc.trigger.trigger_builder import TriggerBuilder

app = Pynenc(app_id="trigger-tests")


@app.task
def divide(x: int, y: int) -> float:
    return x / y


def from_event(ctx: TriggerContext) -> dict[str, Any]:
    return {"user": ctx.payload["user"]}


def from_result(ctx: TriggerContext) -> dict[str, Any]:
    return {"value": ctx.result}


def from_exception(ctx: TriggerContext) -> dict[str, Any]:
    return {"kind": ctx.exception_type, "x": ctx.arguments.kwargs["x"]}


@app.task(triggers=TriggerBuilder().on_cron("* * * * *"))
def every_minute() -> str:
    return "tick"


@app.task(
    triggers=TriggerBuilder()
    .on_event("user.login", payload_filter={"role": "admin"})
    .with_args_from_event(from_event)
)
def admin_login(user: str) -> str:
    return user


@app.task(
    triggers=TriggerBuilder()
    .on_result(divide, filter_result=2.5)
    .with_args_from_result(from_result)
)
def got_half(value: float) -> float:
    return value


@app.task(
    triggers=TriggerBuilder()
    .on_exception(divide, exception_types="ZeroDivisionError")
    .with_args_from_exception(from_exception)
)
def div_error(kind: str, x: int) -> str:
    return f"{kind}:{x}"


@app.task(
    triggers=TriggerBuilder()
    .on_status(divide, statuses=["SUCCESS"], call_arguments={"x": 5})
    .on_any_result(divide)
    .with_logic("and")
)
def and_trigger() -> str:
    return "and"


def approval_args(ctx: TriggerContext) -> dict[str, Any]:
    # the event gives the approver, the division its result; ``contexts`` has both
    return {
        "approver": ctx.payload["approver"],
        "value": ctx.result,
        "sources": [c.kind for c in ctx.contexts],
    }


@app.task(
    triggers=TriggerBuilder()
    .on_event("report.approved")
    .on_result(divide, filter_result=4.0)
    .with_logic("and")
    .with_window(60)
    .with_args_provider(approval_args)
)
def publish_approved(approver: str, value: float, sources: list[str]) -> str:
    return f"{approver}:{value}"


def approver_of(ctx: TriggerContext) -> dict[str, Any]:
    return {"approver": ctx.payload["approver"]}


def value_of(ctx: TriggerContext) -> dict[str, Any]:
    return {"value": ctx.result}


# Pynenc's style: AND is the default logic, one typed provider per source
@app.task(
    triggers=TriggerBuilder()
    .on_event("report.approved")
    .on_result(divide, filter_result=4.0)
    .with_args_from_event(approver_of)
    .with_args_from_result(value_of)
)
def archive_approved(approver: str, value: float) -> str:
    return f"archived {approver}:{value}"


def source_event(ctx: TriggerContext) -> dict[str, Any]:
    return {"source": f"event:{ctx.payload['who']}"}


def source_result(ctx: TriggerContext) -> dict[str, Any]:
    return {"source": f"result:{ctx.result}"}


@app.task(
    triggers=TriggerBuilder()
    .on_event("ping")
    .on_result(divide, filter_result=2.5)
    .with_logic("or")
    .with_args_static({"source": "unknown", "seen": True})
    .with_args_from_event(source_event)
    .with_args_from_result(source_result)
)
def either_source(source: str, seen: bool) -> str:
    return source


def broken_filter(payload: dict[str, Any]) -> bool:
    if payload.get("user") == "boom":
        raise RuntimeError("a bug in a user filter")
    return False


@app.task(triggers=TriggerBuilder().on_event("user.login", payload_filter=broken_filter))
def never_runs() -> str:
    return "unreachable"


def status_of(ctx: TriggerContext) -> dict[str, Any]:
    return {"status": str(ctx.status)}


@app.task(
    triggers=TriggerBuilder()
    .on_status(divide, statuses="RUNNING", call_arguments={"x": 7})
    .with_args_from_status(status_of)
)
def saw_running(status: str) -> str:
    return status
