"""Tasks of the workflow tests; the app is reconfigured per test by their fixture."""

from __future__ import annotations

import threading
from typing import Any

from pynenc import PynencBuilder
from pynenc.context import current_invocation
from pynenc.exceptions import RetryError

app = PynencBuilder().app_id("workflow-tests").memory().thread_runner(max_threads=8).build()

# Shared state for in-process runners (memory / sqlite runner thread in the test process).
lock = threading.Lock()
draw_log: list[dict[str, Any]] = []
child_runs: dict[str, int] = {}


def reset() -> None:
    with lock:
        draw_log.clear()
        child_runs.clear()


def _attempt() -> int:
    context = current_invocation.get()
    return context.num_retries if context else 0


@app.task
def read_data(key: str) -> Any:
    return read_data.wf.get_data(key)


@app.task
def write_and_read(key: str, value: Any) -> dict[str, Any]:
    write_and_read.wf.set_data(key, value)
    child = read_data(key).result
    return {"workflow_id": write_and_read.wf.workflow_id, "child_saw": child}


@app.task(max_retries=2)
def draw_then_fail_once() -> dict[str, Any]:
    wf = draw_then_fail_once.wf
    drawn = {
        "random": wf.random(),
        "utc_now": wf.root.utc_now().isoformat(),
        "uuid": wf.uuid(),
        "random_2": wf.random(),
    }
    with lock:
        draw_log.append(drawn)
    if _attempt() == 0:
        raise RetryError("fail the first attempt")
    return drawn


@app.task
def counted_child(label: str) -> str:
    with lock:
        child_runs[label] = child_runs.get(label, 0) + 1
    return f"done:{label}"


@app.task(max_retries=2)
def parent_skips_on_retry(label: str) -> list[str]:
    first = parent_skips_on_retry.wf.root.execute_task(counted_child, label).result
    second = parent_skips_on_retry.wf.execute_task(counted_child, label + "-2").result
    if _attempt() == 0:
        raise RetryError("fail after the children succeeded")
    return [first, second]


@app.task
def workflow_id_of() -> str:
    return workflow_id_of.wf.workflow_id


@app.workflow
def sub_workflow() -> dict[str, Any]:
    identity = sub_workflow.wf.identity
    return {
        "workflow_id": identity.workflow_id,
        "parent_workflow_id": identity.parent_workflow_id,
        "workflow_type": identity.workflow_type,
        "saw_parent_data": sub_workflow.wf.get_data("marker"),
    }


@app.workflow
def main_workflow() -> dict[str, Any]:
    main_workflow.wf.set_data("marker", "main")
    child = workflow_id_of().result
    sub = sub_workflow().result
    return {"workflow_id": main_workflow.wf.workflow_id, "child": child, "sub": sub}
