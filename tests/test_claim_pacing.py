"""When a runner lingers before claiming: only while single calls stream in, and less and
less while lingering catches nothing more (a caller waiting on each result)."""

from __future__ import annotations

from pynenc.runner.pacing import MAX_BACKOFF, ClaimPacer

LINGER = 0.001
BATCH = 64


def lingers(pacer: ClaimPacer, claims: list[int], waited: float | None = None) -> list[bool]:
    """Run claims of the given sizes; True where the pacer lingered before the claim."""
    out = []
    for count in claims:
        out.append(pacer.linger_sec() > 0)
        pacer.claimed(count, BATCH, waited)
    return out


def test_a_stream_of_single_calls_found_at_once_is_claimed_after_a_linger() -> None:
    pacer = ClaimPacer(LINGER)
    assert lingers(pacer, [3, 5, 4, 6]) == [False, True, True, True]


def test_a_claim_that_woke_soon_after_waiting_counts_as_a_stream() -> None:
    pacer = ClaimPacer(LINGER)
    assert lingers(pacer, [1, 4], waited=LINGER / 4) == [False, True]


def test_work_after_a_long_wait_or_a_full_batch_is_claimed_at_once() -> None:
    assert lingers(ClaimPacer(LINGER), [1, 1, 1], waited=0.5) == [False] * 3
    assert lingers(ClaimPacer(LINGER), [BATCH, BATCH, BATCH]) == [False] * 3
    assert lingers(ClaimPacer(LINGER), [0, 0, 0]) == [False] * 3


def test_lingering_that_catches_one_call_backs_off_exponentially() -> None:
    pacer = ClaimPacer(LINGER)
    # a caller that waits for each result before its next call: every claim takes one,
    # arriving soon after the previous claim
    pattern = lingers(pacer, [1] * 40, waited=LINGER / 4)
    lingered_at = [k for k, lingered in enumerate(pattern) if lingered]
    assert lingered_at == [1, 3, 6, 11, 20, 37]  # gaps 1, 2, 4, 8, 16 claims


def test_backoff_is_capped_and_resets_when_lingering_pays() -> None:
    pacer = ClaimPacer(LINGER)
    lingers(pacer, [1] * 5000, waited=LINGER / 4)
    pattern = lingers(pacer, [1] * (3 * MAX_BACKOFF), waited=LINGER / 4)
    assert 2 <= sum(pattern) <= 3  # once per MAX_BACKOFF claims at most
    # then calls stream in faster: a linger catches several, and the next claims linger
    while not pacer.linger_sec():
        pacer.claimed(1, BATCH, LINGER / 4)
    pacer.claimed(5, BATCH, None)
    assert lingers(pacer, [5, 5, 5]) == [True, True, True]


def test_a_zero_linger_never_waits() -> None:
    assert lingers(ClaimPacer(0.0), [3, 3, 3]) == [False] * 3


def linger_times(pacer: ClaimPacer, claims: list[int], waited: float | None = None) -> list[float]:
    out = []
    for count in claims:
        out.append(pacer.linger_sec())
        pacer.claimed(count, BATCH, waited)
    return out


def test_a_sustained_stream_lingers_longer_up_to_the_most() -> None:
    pacer = ClaimPacer(LINGER, 4 * LINGER)
    # each linger catches several calls: 1, 2, 4 ms, then stays at the most
    assert linger_times(pacer, [5] * 6) == [
        0,
        LINGER,
        2 * LINGER,
        4 * LINGER,
        4 * LINGER,
        4 * LINGER,
    ]


def test_a_linger_catching_two_or_three_keeps_its_length() -> None:
    pacer = ClaimPacer(LINGER, 4 * LINGER)
    assert linger_times(pacer, [5, 5, 3, 2]) == [0, LINGER, 2 * LINGER, 2 * LINGER]


def test_the_linger_is_short_again_when_the_stream_thins_or_pauses() -> None:
    pacer = ClaimPacer(LINGER, 4 * LINGER)
    # a long linger caught one call; the claim after it skips lingering (backoff)
    assert linger_times(pacer, [5] * 4 + [1, 3]) == [
        0,
        LINGER,
        2 * LINGER,
        4 * LINGER,
        4 * LINGER,
        0,
    ]
    assert pacer.linger_sec() == LINGER

    paused = ClaimPacer(LINGER, 4 * LINGER)
    linger_times(paused, [5] * 4 + [40])  # a big claim: the next is at once, no linger
    linger_times(paused, [1], waited=0.5)  # waited long for the next call: the stream paused
    linger_times(paused, [3])  # found a few at once: a stream again, from the start
    assert paused.linger_sec() == LINGER


def test_without_a_most_the_linger_never_grows() -> None:
    assert linger_times(ClaimPacer(LINGER), [5] * 4) == [0, LINGER, LINGER, LINGER]
