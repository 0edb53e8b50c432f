"""Results of single calls read back in call order come in batches, not one read each."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pynenc import Pynenc
from pynenc.invocation import readahead
from pynenc.invocation.readahead import MAX_WINDOW, ResultReadAhead
from tests.apps import core_tasks


class StoredResults:
    """A results table standing for the backend, counting reads as the backend would."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.reads: list[list[str]] = []

    def get_results(self, invocation_ids: Sequence[str]) -> dict[str, bytes]:
        self.reads.append(list(invocation_ids))
        return {i: self.values[i] for i in invocation_ids if i in self.values}


def _calls(ahead: ResultReadAhead, store: StoredResults, count: int) -> list[str]:
    ids = [f"id-{n}" for n in range(count)]
    for n, invocation_id in enumerate(ids):
        ahead.called(invocation_id)
        store.values[invocation_id] = b"%d" % n
    return ids


def test_reads_in_call_order_fetch_the_next_results_in_growing_windows() -> None:
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 1000)
    assert [ahead.result(i, store.get_results) for i in ids] == [store.values[i] for i in ids]
    # windows 2, 4, ... MAX_WINDOW: 1000 results in a handful of reads
    assert len(store.reads) <= 7 + 1000 // MAX_WINDOW
    assert max(len(read) for read in store.reads) == MAX_WINDOW


def test_a_read_out_of_call_order_fetches_only_its_own_result() -> None:
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 10)
    for invocation_id in (ids[5], ids[2], ids[8]):
        assert ahead.result(invocation_id, store.get_results) == store.values[invocation_id]
    assert store.reads == [[ids[5]], [ids[2]], [ids[8]]]


def test_a_result_not_stored_yet_is_read_again_later() -> None:
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 4)
    del store.values[ids[1]]  # still running when the first read fetches ahead
    assert ahead.result(ids[0], store.get_results) == b"0"
    store.values[ids[1]] = b"done"
    assert ahead.result(ids[1], store.get_results) == b"done"


def test_large_results_are_left_for_their_own_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "MAX_KEPT_VALUE_BYTES", 4)
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 3)
    store.values[ids[1]] = b"more than four bytes"
    ahead.result(ids[0], store.get_results)
    assert ahead.result(ids[1], store.get_results) == b"more than four bytes"
    assert store.reads[-1][0] == ids[1]  # read from the store, not kept


def test_only_the_most_recent_calls_are_tracked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "TRACKED_CALLS", 8)
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 20)
    assert ahead.result(ids[0], store.get_results) == b"0"  # forgotten: read alone
    assert store.reads == [[ids[0]]]
    assert ahead.result(ids[12], store.get_results) == b"12"


def test_clear_forgets_results_fetched_ahead() -> None:
    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 4)
    ahead.result(ids[0], store.get_results)
    ahead.result(ids[1], store.get_results)  # fetched ids 2 and 3 ahead
    ahead.clear()
    store.values[ids[2]] = b"changed"
    assert ahead.result(ids[2], store.get_results) == b"changed"


def test_separate_calls_read_back_in_order_take_few_backend_reads(
    runner: Pynenc, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = runner.state_backend
    reads: list[int] = []
    real_get_results = backend.get_results

    def counted(invocation_ids: Sequence[str]) -> dict[str, bytes]:
        reads.append(len(invocation_ids))
        return real_get_results(invocation_ids)

    invocations = [core_tasks.add(i, 1) for i in range(300)]
    ids = [inv.invocation_id for inv in invocations]
    assert runner.orchestrator.wait_for_final(ids, 30)
    monkeypatch.setattr(backend, "get_results", counted)
    assert [inv.result for inv in invocations] == [i + 1 for i in range(300)]
    # one read each would be 300: windows 1, 2, 4, ... 128, then 128 at a time
    assert len(reads) <= 10, reads
    assert sum(reads) >= 300


def test_purge_drops_results_fetched_ahead(runner: Pynenc) -> None:
    invocations = [core_tasks.add(i, 1) for i in range(6)]
    assert invocations[0].result == 1
    assert invocations[1].result == 2  # the next ones were fetched with it
    runner.purge()
    with pytest.raises(Exception, match=invocations[2].invocation_id):
        _ = invocations[2].get_result(timeout_sec=0.5)


def test_a_forked_child_starts_with_a_free_lock_and_nothing_kept() -> None:
    import os
    import select
    import signal

    ahead, store = ResultReadAhead(), StoredResults()
    ids = _calls(ahead, store, 4)
    ahead.result(ids[0], store.get_results)
    ahead.result(ids[1], store.get_results)  # ids 2 and 3 kept
    read_end, write_end = os.pipe()
    with ahead._lock:  # another thread holds it at the fork
        pid = os.fork()
        if pid == 0:  # the child: must not hang on the lock, and reads the store afresh
            store.values[ids[2]] = b"child"
            os.write(write_end, ahead.result(ids[2], store.get_results) or b"none")
            os._exit(0)
    os.close(write_end)
    ready, _, _ = select.select([read_end], [], [], 10.0)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the child hung on the lock it inherited"
    assert os.read(read_end, 100) == b"child"
    os.close(read_end)
