"""The status machine table, its transition function and the views drawn from it."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynenc.exceptions import InvalidStatusTransitionError, StatusOwnershipError
from pynenc.invocation.status import (
    STATUS_TABLE,
    InvocationStatus,
    StatusRecord,
    compute_transition,
)
from pynenc.invocation.status_render import main, render_mermaid, render_svg, render_text

S = InvocationStatus
SVG = "{http://www.w3.org/2000/svg}"
FINAL = {S.SUCCESS, S.FAILED, S.CONCURRENCY_CONTROLLED_FINAL}
TRANSITIONS = sorted((a, b) for a in S for b in STATUS_TABLE[a].allowed_next)
statuses = st.sampled_from(list(S))
runners = st.sampled_from(["runner-a", "runner-b"])


# --- table -----------------------------------------------------------------------------


def test_table_has_every_status() -> None:
    assert set(STATUS_TABLE) == set(S)
    assert len(S) == 14


def test_str_is_the_stable_stored_value() -> None:
    assert str(S.RUNNING) == "running"
    assert S("concurrency_controlled_final") is S.CONCURRENCY_CONTROLLED_FINAL
    assert all(str(status) == status.name.lower() for status in S)


def test_final_statuses_have_no_next_and_release_ownership() -> None:
    assert {s for s in S if s.is_final} == FINAL
    for status in FINAL:
        assert status.allowed_next == frozenset()
        assert STATUS_TABLE[status].releases_ownership
    assert all(STATUS_TABLE[s].allowed_next for s in set(S) - FINAL)


def test_status_groups() -> None:
    assert {s for s in S if s.is_running} == {S.RUNNING, S.RESUMED}
    available = {s for s in S if s.is_available_for_run}
    assert available == {S.REGISTERED, S.RETRY, S.REROUTED, S.CONCURRENCY_CONTROLLED}
    assert all(S.PENDING in s.allowed_next for s in available)


def test_ownership_flags() -> None:
    def flagged(flag: str) -> set[InvocationStatus]:
        return {s for s, row in STATUS_TABLE.items() if getattr(row, flag)}

    assert flagged("acquires_ownership") == {S.PENDING}
    assert flagged("requires_ownership") == {S.RUNNING, S.PAUSED, S.RESUMED}
    assert flagged("overrides_ownership") == {S.PENDING_RECOVERY, S.RUNNING_RECOVERY}
    assert flagged("releases_ownership") == FINAL | {
        S.RETRY,
        S.REROUTED,
        S.CONCURRENCY_CONTROLLED,
        S.KILLED,
    }
    assert all(row.description for row in STATUS_TABLE.values())


def test_definitions_and_records_are_immutable() -> None:
    with pytest.raises(FrozenInstanceError):
        STATUS_TABLE[S.RUNNING].requires_ownership = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        STATUS_TABLE[S.RUNNING] = STATUS_TABLE[S.PENDING]  # type: ignore[index]
    record = StatusRecord(S.RUNNING, 1700000000.5, "runner-a")
    assert record == StatusRecord(S.RUNNING, 1700000000.5, "runner-a")
    with pytest.raises(FrozenInstanceError):
        record.status = S.SUCCESS  # type: ignore[misc]


# --- transitions -----------------------------------------------------------------------


def test_a_new_invocation_can_only_be_registered() -> None:
    assert compute_transition(None, S.REGISTERED, None, None) is None
    for status in set(S) - {S.REGISTERED}:
        with pytest.raises(InvalidStatusTransitionError):
            compute_transition(None, status, None, "runner-a")


@pytest.mark.parametrize(("current", "new"), TRANSITIONS)
def test_every_legal_transition_passes_for_the_owner(
    current: InvocationStatus, new: InvocationStatus
) -> None:
    compute_transition(current, new, "runner-a", "runner-a", "inv-1")
    compute_transition(current, new, None, "runner-a", "inv-1")


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.REGISTERED, S.RUNNING),
        (S.REGISTERED, S.SUCCESS),
        (S.PENDING, S.SUCCESS),
        (S.PENDING, S.PENDING),
        (S.RUNNING, S.PENDING),
        (S.RUNNING, S.REGISTERED),
        (S.PAUSED, S.SUCCESS),
        (S.RETRY, S.RUNNING),
        (S.SUCCESS, S.RUNNING),
        (S.FAILED, S.RETRY),
        (S.CONCURRENCY_CONTROLLED_FINAL, S.PENDING),
        (S.KILLED, S.PENDING),
        (S.RUNNING_RECOVERY, S.RUNNING),
        (S.PENDING_RECOVERY, S.PENDING),
    ],
)
def test_illegal_transitions_raise(current: InvocationStatus, new: InvocationStatus) -> None:
    with pytest.raises(InvalidStatusTransitionError) as caught:
        compute_transition(current, new, "runner-a", "runner-a", "inv-1")
    assert (caught.value.invocation_id, caught.value.current, caught.value.new) == (
        "inv-1",
        current,
        new,
    )
    assert "inv-1" in str(caught.value)


def test_pending_acquires_ownership() -> None:
    assert compute_transition(S.REGISTERED, S.PENDING, None, "runner-a") == "runner-a"
    assert compute_transition(S.RETRY, S.PENDING, None, "runner-b") == "runner-b"


def test_another_runner_cannot_run_an_owned_invocation() -> None:
    with pytest.raises(StatusOwnershipError) as caught:
        compute_transition(S.PENDING, S.RUNNING, "runner-a", "runner-b", "inv-1")
    error = caught.value
    assert (error.invocation_id, error.status, error.owner, error.runner) == (
        "inv-1",
        S.RUNNING,
        "runner-a",
        "runner-b",
    )
    assert compute_transition(S.PENDING, S.RUNNING, "runner-a", "runner-a") == "runner-a"


def test_only_the_owner_releases_an_owned_invocation() -> None:
    with pytest.raises(StatusOwnershipError):
        compute_transition(S.RUNNING, S.SUCCESS, "runner-a", "runner-b")
    with pytest.raises(StatusOwnershipError):
        compute_transition(S.RUNNING, S.KILLED, "runner-a", "runner-b")
    # an operator (no runner id) may kill an owned invocation
    assert compute_transition(S.RUNNING, S.KILLED, "runner-a", None) is None
    assert compute_transition(S.RUNNING, S.SUCCESS, "runner-a", "runner-a") is None
    assert compute_transition(S.REGISTERED, S.KILLED, None, None) is None


def test_recovery_overrides_ownership_and_then_reroutes() -> None:
    owner = compute_transition(S.RUNNING, S.RUNNING_RECOVERY, "dead-runner", "runner-b")
    assert owner == "runner-b"
    assert compute_transition(S.RUNNING_RECOVERY, S.REROUTED, owner, "runner-b") is None
    owner = compute_transition(S.PENDING, S.PENDING_RECOVERY, "dead-runner", "runner-b")
    assert owner == "runner-b"


def test_statuses_without_ownership_flags_keep_the_owner() -> None:
    for row in (STATUS_TABLE[S.RUNNING], STATUS_TABLE[S.RESUMED]):
        assert not (row.acquires_ownership or row.releases_ownership or row.overrides_ownership)
    assert compute_transition(S.PAUSED, S.RESUMED, "runner-a", "runner-a") == "runner-a"


@given(current=statuses, new=statuses, runner=runners)
def test_raises_iff_transition_not_in_table(
    current: InvocationStatus, new: InvocationStatus, runner: str
) -> None:
    if new in STATUS_TABLE[current].allowed_next:
        compute_transition(current, new, runner, runner)
    else:
        with pytest.raises(InvalidStatusTransitionError):
            compute_transition(current, new, runner, runner)


@given(current=statuses, new=statuses, owner=st.none() | runners, runner=runners)
def test_resulting_owner_follows_the_flags(
    current: InvocationStatus, new: InvocationStatus, owner: str | None, runner: str
) -> None:
    row = STATUS_TABLE[new]
    if new not in STATUS_TABLE[current].allowed_next:
        return
    foreign = owner is not None and owner != runner
    guarded = (row.requires_ownership or row.releases_ownership) and not row.overrides_ownership
    if foreign and guarded:
        with pytest.raises(StatusOwnershipError):
            compute_transition(current, new, owner, runner)
        return
    result = compute_transition(current, new, owner, runner)
    if row.acquires_ownership or row.overrides_ownership:
        assert result == runner
    elif row.releases_ownership:
        assert result is None
    else:
        assert result == owner


# --- views -----------------------------------------------------------------------------


def test_render_text_lists_every_status_and_its_next() -> None:
    text = render_text()
    for status in S:
        assert status.name in text
        row = STATUS_TABLE[status]
        assert row.description in text
    running_block = text.split("\nRUNNING  ")[1].split("\n\n")[0]
    assert "requires ownership" in running_block
    assert all(s.name in running_block for s in STATUS_TABLE[S.RUNNING].allowed_next)


def test_render_svg_draws_every_status_and_transition() -> None:
    root = ET.fromstring(render_svg())
    assert root.tag == f"{SVG}svg"
    texts = {el.text for el in root.iter(f"{SVG}text")}
    assert {s.name for s in S} <= texts
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("class") == "transition"]
    drawn = sorted((S(p.get("data-from", "")), S(p.get("data-to", ""))) for p in arrows)
    assert drawn == TRANSITIONS
    boxes = {g.get("data-status"): g.get("class", "") for g in root.iter(f"{SVG}g")}
    assert {s for s in S if "final" in boxes[s.value].split()} == FINAL


def _segments_cross_box(path: str, box: tuple[float, float, float, float]) -> bool:
    """Whether the polygon through a path's points enters the box (strictly inside).

    Corners are drawn as quadratic curves inside that polygon, so this is conservative.
    """
    points = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path)]
    left, top, width, height = box
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        low, high = 0.0, 1.0  # clip the segment against the box (Liang-Barsky)
        dx, dy = x1 - x0, y1 - y0
        limits = (
            (-dx, x0 - left - 1),
            (dx, left + width - 1 - x0),
            (-dy, y0 - top - 1),
            (dy, top + height - 1 - y0),
        )
        for step, room in limits:
            if step == 0:
                if room < 0:
                    break
            elif step < 0:
                low = max(low, room / step)
            else:
                high = min(high, room / step)
        else:
            if low < high:
                return True
    return False


def _boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        rect = group.find(f"{SVG}rect")
        assert rect is not None
        x, y, width, height = (float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))
        boxes[group.get("data-status", "")] = (x, y, width, height)
    return boxes


def test_render_svg_arrows_go_around_the_boxes() -> None:
    root = ET.fromstring(render_svg())
    boxes = _boxes(root)
    assert len(boxes) == len(S)
    for arrow in (p for p in root.iter(f"{SVG}path") if p.get("class") == "transition"):
        for status, box in boxes.items():
            assert not _segments_cross_box(arrow.get("d", ""), box), (
                f"{arrow.get('data-from')} -> {arrow.get('data-to')} crosses {status}"
            )


def test_render_svg_is_deterministic() -> None:
    assert render_svg() == render_svg()


def test_render_mermaid_contains_every_transition() -> None:
    lines = {line.strip() for line in render_mermaid().splitlines()}
    assert "stateDiagram-v2" in lines
    assert "[*] --> REGISTERED" in lines
    for current, new in TRANSITIONS:
        assert f"{current.name} --> {new.name}" in lines
    for status in FINAL:
        assert f"{status.name} --> [*]" in lines


def test_cli_prints_each_view(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mermaid"]) == 0
    assert capsys.readouterr().out == render_mermaid()
    assert main(["svg"]) == 0
    assert capsys.readouterr().out == render_svg()
    assert main(["dot"]) == 2
    assert "choose one of" in capsys.readouterr().err
