"""Tasks of the workflow tests; the app is reconfigured per test by their fixture.

Nothing here keeps state in the process: runner processes run these tasks too, so what a
test checks is read back from the backends (results, workflow data, the run's tree)."""

from __future__ import annotations

from typing import Any

from pynenc import PynencBuilder
from pynenc.context import current_invocation
from pynenc.exceptions import RetryError

app = PynencBuilder().app_id("workflow-tests").memory().thread_runner(max_threads=8).build()


def _attempt() -> int:
    context = current_invocation.get()
    return context.num_retries if context else 0


@app.task
def read_data(key: str) -> Any:
    return read_data.wf.get_data(key)


@app.task
def write_data(key: str, value: Any) -> None:
    write_data.wf.set_data(key, value)


@app.workflow
def write_and_read(key: str, value: Any) -> dict[str, Any]:
    write_and_read.wf.set_data(key, value)
    child = read_data(key).result
    write_data("from_child", f"child of {value}").result
    return {
        "workflow_id": write_and_read.wf.workflow_id,
        "child_saw": child,
        "child_wrote": write_and_read.wf.get_data("from_child"),
    }


@app.workflow(max_retries=2)
def draw_then_fail_once() -> dict[str, Any]:
    root = draw_then_fail_once.wf.root
    drawn = {
        "random": root.random(),
        "utc_now": root.utc_now().isoformat(),
        "uuid": root.uuid(),
        "random_2": root.random(),
    }
    if _attempt() == 0:
        draw_then_fail_once.wf.set_data("first_attempt", drawn)
        raise RetryError("fail the first attempt")
    return {"first_attempt": draw_then_fail_once.wf.get_data("first_attempt"), "retry": drawn}


@app.task
def counted_child(label: str) -> str:
    return f"done:{label}"


@app.workflow(max_retries=2)
def parent_skips_on_retry(label: str) -> dict[str, Any]:
    root = parent_skips_on_retry.wf.root
    first = root.execute_task(counted_child, label)
    second = root.execute_task(counted_child, label + "-2")
    again = root.execute_task(counted_child, label)  # same task and arguments: same call
    results = [first.result, second.result]
    if _attempt() == 0:
        raise RetryError("fail after the children succeeded")
    return {"results": results, "same_call": again.invocation_id == first.invocation_id}


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
    sub = main_workflow.wf.root.execute_task(sub_workflow).result
    return {"workflow_id": main_workflow.wf.workflow_id, "child": child, "sub": sub}


@app.task
def standalone_reads_identity() -> str:
    return standalone_reads_identity.wf.identity.workflow_id


@app.task
def child_draws_root_uuid() -> str:
    return child_draws_root_uuid.wf.root.uuid()


@app.workflow
def root_with_invalid_child() -> str:
    return root_with_invalid_child.wf.root.execute_task(child_draws_root_uuid).result


@app.workflow
def draws_for_another_workflow() -> str:
    return sub_workflow.wf.root.uuid()  # the running invocation is not sub_workflow's


@app.task(force_new_workflow=True)
def forced_workflow() -> dict[str, Any]:
    identity = forced_workflow.wf.identity
    return {"workflow_id": identity.workflow_id, "parent": identity.parent_workflow_id}


@app.workflow
def calls_forced_workflow() -> dict[str, Any]:
    return forced_workflow().result
