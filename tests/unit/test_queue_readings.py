"""The admission run's counter readings and what it counts as drawn lately, as pure functions (no moto): the
bound on readings kept that tests/unit/test_queue_service.py checks through 200 runs on moto, here in
milliseconds over thousands of runs."""

from __future__ import annotations

import pytest

from ticketline.models.queue import CounterReading, QueueState
from ticketline.services.queue import JOIN_WINDOW_SECONDS, READING_SPACING_SECONDS, _drawn_lately, _next_readings

MOST_READINGS = JOIN_WINDOW_SECONDS // READING_SPACING_SECONDS + 2


@pytest.mark.parametrize("run_every", [0.5, 1, 5, 6, 7, 30, 61])
def test_runs_keep_a_bounded_number_of_readings_whatever_their_pace(run_every: float) -> None:
    readings: tuple[CounterReading, ...] = ()
    now = 1_800_000_000.0
    for run in range(2_000):
        now += run_every
        at = int(now)
        readings = _next_readings(readings, CounterReading(at=at, issued=(run, run)), at - JOIN_WINDOW_SECONDS)
        assert len(readings) <= MOST_READINGS
        assert [r.at for r in readings] == sorted(r.at for r in readings)
    assert len(readings) > (1 if run_every < JOIN_WINDOW_SECONDS else 0)


def test_the_baseline_reading_before_the_window_is_kept_and_older_ones_dropped() -> None:
    old, baseline, recent = CounterReading(100, (1,)), CounterReading(110, (2,)), CounterReading(135, (3,))
    kept = _next_readings((recent, old, baseline), CounterReading(150, (4,)), cutoff=120)
    assert kept == (baseline, recent, CounterReading(150, (4,)))


def test_a_reading_too_close_to_the_last_or_with_nothing_drawn_since_is_not_kept() -> None:
    last = CounterReading(100, (5,))
    assert _next_readings((last,), CounterReading(100 + READING_SPACING_SECONDS - 1, (6,)), cutoff=50) == (last,)
    assert _next_readings((last,), CounterReading(200, (5,)), cutoff=50) == (last,)
    assert _next_readings((last,), CounterReading(200, (6,)), cutoff=50) == (last, CounterReading(200, (6,)))


def _state(admit_bound: int, readings: tuple[CounterReading, ...], shards: int = 2) -> QueueState:
    return QueueState(concert_id="c", capacity=10, shards=shards, admit_bound=admit_bound, readings=readings)


def test_numbers_drawn_after_the_newest_reading_by_the_cutoff_are_the_recent_ones() -> None:
    # Two shards: shard 0 holds 1, 3, 5, ...; shard 1 holds 2, 4, 6, ... A bound of 10: five numbers each.
    readings = (CounterReading(100, (1, 1)), CounterReading(110, (3, 2)), CounterReading(130, (4, 4)))
    assert _drawn_lately(_state(10, readings), issued=[6, 5], cutoff=120) == [(4, 5), (3, 5)]


def test_with_no_reading_by_the_cutoff_every_number_drawn_under_the_bound_is_recent() -> None:
    assert _drawn_lately(_state(4, (CounterReading(130, (1, 1)),)), issued=[3, 1], cutoff=120) == [(1, 2), (1, 1)]
    assert _drawn_lately(_state(0, ()), issued=[2, 2], cutoff=120) == [(1, 0), (1, 0)]
