"""Workflows: shared data, root-only deterministic replay, skip-on-retry, sub-workflows,
the run's tree, and the errors of using them outside their scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc import InvocationStatus, Pynenc
from pynenc.task import WorkflowTask
from pynenc.workflow import (
    DeterministicOperationScopeError,
    WorkflowError,
    WorkflowMembershipError,
    WorkflowRootContext,
)
from tests.apps import workflow_tasks as wt
from tests.conftest import BACKENDS, backend_config, running
from tests.runner_support import (
    PROCESS_RUNNERS,
    SQLITE,
    redis_config,
    runner_env,
    start_runner_process,
    stop_runner_process,
)

BASE = dict(wt.app.config_values)


@pytest.fixture(params=[*BACKENDS, "redis"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pynenc]:
    app = wt.app
    app.config_values.clear()
    app.config_values.update(BASE)
    name = request.param
    config = redis_config(tmp_path) if name == "redis" else backend_config(name, tmp_path)
    app.reconfigure(dev_mode_force_sync_tasks=False, **config)
    app.purge()
    with running(app):
        yield app
    app.purge()
    app.close()


def test_data_is_shared_within_a_run_and_separate_between_runs(app: Pynenc) -> None:
    first = wt.write_and_read("colour", "red")
    second = wt.write_and_read("colour", "blue")

    one, two = first.result, second.result

    assert one == {
        "workflow_id": first.invocation_id,
        "child_saw": "red",
        "child_wrote": "child of red",
    }
    assert two["child_saw"] == "blue"
    assert two["workflow_id"] == second.invocation_id


def test_deterministic_values_replay_on_retry(app: Pynenc) -> None:
    invocation = wt.draw_then_fail_once()

    result = invocation.result

    assert invocation.num_retries == 1
    assert result["retry"] == result["first_attempt"]
    assert result["retry"]["random"] != result["retry"]["random_2"]


def test_deterministic_values_differ_between_runs(app: Pynenc) -> None:
    first, second = wt.draw_then_fail_once(), wt.draw_then_fail_once()
    assert first.result["retry"]["uuid"] != second.result["retry"]["uuid"]


def child_calls(app: Pynenc, workflow_id: str) -> list[str]:
    return [
        n.invocation_id
        for n in app.get_workflow_invocations(workflow_id)
        if n.task_id == wt.counted_child.task_id
    ]


def test_execute_task_skips_succeeded_children_on_retry(app: Pynenc) -> None:
    invocation = wt.parent_skips_on_retry("a")

    result = invocation.result

    assert result == {"results": ["done:a", "done:a-2"], "same_call": True}
    assert invocation.num_retries == 1
    assert len(child_calls(app, invocation.invocation_id)) == 2  # not 4: reused on retry


def test_workflow_decorator_starts_a_new_workflow(app: Pynenc) -> None:
    invocation = wt.main_workflow()

    result = invocation.result

    root = invocation.invocation_id
    assert result["workflow_id"] == root
    assert result["child"] == root
    sub = result["sub"]
    assert sub["workflow_id"] not in (root, None)
    assert sub["parent_workflow_id"] == root
    assert sub["workflow_type"] == wt.sub_workflow.task_id
    assert sub["saw_parent_data"] is None  # a sub-workflow has data of its own


def test_force_new_workflow_task_is_a_workflow_task(app: Pynenc) -> None:
    assert isinstance(wt.forced_workflow, WorkflowTask)
    assert isinstance(wt.main_workflow, WorkflowTask)
    assert not isinstance(wt.read_data, WorkflowTask)
    caller = wt.calls_forced_workflow()

    forced = caller.result

    assert forced["workflow_id"] != caller.invocation_id
    assert forced["parent"] == caller.invocation_id


def test_tree_lists_the_run_with_parents(app: Pynenc) -> None:
    invocation = wt.main_workflow()
    sub_workflow_id = invocation.result["sub"]["workflow_id"]
    root = invocation.invocation_id

    nodes = app.get_workflow_invocations(root)

    assert nodes[0].invocation_id == root
    assert {n.task_id: n.parent_invocation_id for n in nodes} == {
        wt.main_workflow.task_id: None,
        wt.workflow_id_of.task_id: root,
    }
    assert all(n.workflow_id == root for n in nodes)
    (sub,) = app.get_workflow_invocations(sub_workflow_id)
    assert sub.parent_invocation_id == root
    assert sub.task_id == wt.sub_workflow.task_id


def test_standalone_task_is_in_no_workflow(app: Pynenc) -> None:
    invocation = wt.standalone_reads_identity()

    with pytest.raises(WorkflowMembershipError, match="not running inside a workflow"):
        _ = invocation.result
    assert invocation.status is InvocationStatus.FAILED


def test_root_operations_only_in_the_workflow_defining_invocation(app: Pynenc) -> None:
    with pytest.raises(DeterministicOperationScopeError, match="ordinary task"):
        _ = wt.root_with_invalid_child().result
    with pytest.raises(DeterministicOperationScopeError, match="running invocation is of"):
        _ = wt.draws_for_another_workflow().result


def test_wf_outside_an_invocation_raises(app: Pynenc) -> None:
    assert isinstance(wt.main_workflow.wf, WorkflowRootContext)
    assert not isinstance(wt.read_data.wf, WorkflowRootContext)
    with pytest.raises(WorkflowError, match="inside a running invocation"):
        wt.read_data.wf.get_data("x")
    with pytest.raises(WorkflowError, match="inside a running invocation"):
        wt.main_workflow.wf.root.uuid()


# --- under runner processes ---------------------------------------------------------------


@pytest.mark.parametrize("runner_cls", list(PROCESS_RUNNERS))
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_workflows_under_runner_processes(backend: str, runner_cls: str, tmp_path: Path) -> None:
    app = wt.app
    app.config_values.clear()
    app.config_values.update(BASE)
    storage = (
        redis_config(tmp_path)
        if backend == "redis"
        else {**SQLITE, "sqlite_db_path": str(tmp_path / "wf.db")}
    )
    config = {
        **storage,
        "runner_cls": runner_cls,
        **PROCESS_RUNNERS[runner_cls],
        "runner_heartbeat_interval": 0.2,
        "dev_mode_force_sync_tasks": False,
    }
    app.reconfigure(**config)
    app.purge()
    proc = start_runner_process(app, runner_env(config), "tests.apps.workflow_tasks.app")
    try:
        shared = wt.write_and_read("colour", "red").result
        assert (shared["child_saw"], shared["child_wrote"]) == ("red", "child of red")

        skipping = wt.parent_skips_on_retry("p")
        assert skipping.result == {"results": ["done:p", "done:p-2"], "same_call": True}
        assert skipping.num_retries == 1
        assert len(child_calls(app, skipping.invocation_id)) == 2

        drawn = wt.draw_then_fail_once().result
        assert drawn["retry"] == drawn["first_attempt"]

        main = wt.main_workflow()
        assert main.result["sub"]["parent_workflow_id"] == main.invocation_id

        with pytest.raises(DeterministicOperationScopeError):
            _ = wt.root_with_invalid_child().result
    finally:
        assert stop_runner_process(proc) == 0
        app.purge()
        app.close()
