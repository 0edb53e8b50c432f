"""Broker contract: FIFO batches, blocking retrieval, delays, counts, purge isolation."""

from __future__ import annotations

import threading
import time

from pynenc import Pynenc

from .conftest import MakeApp, new_ids


def test_retrieve_returns_ids_in_routing_order(app: Pynenc) -> None:
    first, second = new_ids(5), new_ids(5)
    app.broker.route_invocations(first)
    app.broker.route_invocations(second)

    assert app.broker.retrieve_invocations(100, 0) == first + second


def test_retrieve_pops_at_most_max_count(app: Pynenc) -> None:
    ids = new_ids(10)
    app.broker.route_invocations(ids)

    assert app.broker.retrieve_invocations(3, 0) == ids[:3]
    assert app.broker.retrieve_invocations(5, 0) == ids[3:8]
    assert app.broker.retrieve_invocations(10, 0) == ids[8:]
    assert app.broker.retrieve_invocations(10, 0) == []


def test_large_batches_round_trip(app: Pynenc) -> None:
    ids = new_ids(2000)
    app.broker.route_invocations(ids)

    popped = app.broker.retrieve_invocations(1500, 0)
    popped += app.broker.retrieve_invocations(1500, 0)

    assert popped == ids


def test_retrieve_on_empty_queue_waits_for_timeout(app: Pynenc) -> None:
    start = time.monotonic()

    assert app.broker.retrieve_invocations(5, 0.2) == []
    assert time.monotonic() - start >= 0.19


def test_blocking_retrieve_returns_as_soon_as_another_thread_routes(app: Pynenc) -> None:
    ids = new_ids(3)
    waiting = threading.Event()
    got: list[str] = []
    returned_at: list[float] = []

    def consumer() -> None:
        waiting.set()
        got.extend(app.broker.retrieve_invocations(10, 10.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=consumer)
    thread.start()
    assert waiting.wait(5)
    routed_at = time.monotonic()
    app.broker.route_invocations(ids)
    thread.join(10)

    assert got == ids
    assert returned_at[0] - routed_at < 0.5  # woken by the route, not by a poll or the timeout


def test_concurrent_retrievers_never_get_the_same_id(app: Pynenc) -> None:
    ids = new_ids(1000)
    app.broker.route_invocations(ids)
    results: list[list[str]] = [[] for _ in range(4)]

    def consume(bucket: list[str]) -> None:
        while batch := app.broker.retrieve_invocations(37, 0):
            bucket.extend(batch)

    threads = [threading.Thread(target=consume, args=(bucket,)) for bucket in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    popped = [i for bucket in results for i in bucket]
    assert sorted(popped) == sorted(ids)
    for bucket in results:  # each consumer still sees FIFO order
        assert bucket == sorted(bucket, key=ids.index)


def test_delayed_ids_become_visible_at_their_time(app: Pynenc) -> None:
    (late,), now = new_ids(1), new_ids(2)
    app.broker.route_invocations([late], delay_sec=0.3)
    app.broker.route_invocations(now)

    assert app.broker.retrieve_invocations(10, 0) == now
    start = time.monotonic()
    assert app.broker.retrieve_invocations(10, 5.0) == [late]
    elapsed = time.monotonic() - start
    assert 0.15 < elapsed < 1.0  # returned when due, well before the 5 s timeout


def test_count_includes_delayed_ids(app: Pynenc) -> None:
    app.broker.route_invocations(new_ids(5))
    app.broker.route_invocations(new_ids(2), delay_sec=60)

    assert app.broker.count_invocations() == 7
    app.broker.retrieve_invocations(3, 0)
    assert app.broker.count_invocations() == 4


def test_purge_only_drops_its_own_app(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    mine, theirs = new_ids(4), new_ids(3)
    one.broker.route_invocations(mine)
    other.broker.route_invocations(theirs)
    other.broker.route_invocations(new_ids(1), delay_sec=60)

    one.broker.purge()

    assert one.broker.count_invocations() == 0
    assert one.broker.retrieve_invocations(10, 0) == []
    assert other.broker.count_invocations() == 4
    assert other.broker.retrieve_invocations(10, 0) == theirs


def test_apps_never_pop_each_others_ids(make_app: MakeApp) -> None:
    one, other = make_app("one"), make_app("other")
    theirs = new_ids(3)
    other.broker.route_invocations(theirs)

    assert one.broker.retrieve_invocations(10, 0.05) == []
    assert other.broker.retrieve_invocations(10, 0) == theirs


def test_broker_can_be_used_after_close(app: Pynenc) -> None:
    ids = new_ids(2)
    app.broker.route_invocations(ids)
    app.broker.close()

    assert app.broker.retrieve_invocations(10, 0) == ids
