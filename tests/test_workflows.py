"""Workflows: shared data, deterministic replay, skip-on-retry, sub-workflows, the tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pynenc import Pynenc
from pynenc.workflow import WorkflowError
from tests.apps import workflow_tasks as wt
from tests.conftest import BACKENDS, backend_config, running
from tests.runner_support import redis_config

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
    wt.reset()
    with running(app):
        yield app
    app.purge()
    app.close()


def test_data_is_shared_within_a_run_and_separate_between_runs(app: Pynenc) -> None:
    first = wt.write_and_read("colour", "red")
    second = wt.write_and_read("colour", "blue")

    one, two = first.result, second.result

    assert one["child_saw"] == "red"
    assert two["child_saw"] == "blue"
    assert one["workflow_id"] == first.invocation_id
    assert two["workflow_id"] == second.invocation_id
    assert app.state_backend.get_workflow_data(first.invocation_id, "colour") is not None


def test_deterministic_values_replay_on_retry(app: Pynenc) -> None:
    invocation = wt.draw_then_fail_once()

    result = invocation.result

    assert invocation.num_retries == 1
    assert len(wt.draw_log) == 2
    assert wt.draw_log[0] == wt.draw_log[1] == result
    assert result["random"] != result["random_2"]


def test_deterministic_values_differ_between_runs(app: Pynenc) -> None:
    first, second = wt.draw_then_fail_once(), wt.draw_then_fail_once()
    assert first.result["uuid"] != second.result["uuid"]


def test_execute_task_skips_succeeded_children_on_retry(app: Pynenc) -> None:
    invocation = wt.parent_skips_on_retry("a")

    assert invocation.result == ["done:a", "done:a-2"]
    assert invocation.num_retries == 1
    assert wt.child_runs == {"a": 1, "a-2": 1}


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
    assert sub["saw_parent_data"] is None


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


def test_wf_outside_an_invocation_raises(app: Pynenc) -> None:
    with pytest.raises(WorkflowError, match="inside a running invocation"):
        wt.read_data.wf.get_data("x")
