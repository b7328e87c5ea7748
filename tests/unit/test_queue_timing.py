"""The poll's estimate and retry time (ticketline.services.queue_timing), and the admission runs the scheduler
records for them (on moto)."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import ValidationError

from ticketline.config import Settings, schedule_seconds
from ticketline.models.queue import AdmissionRun, TokenStatus
from ticketline.repositories.queue import QueueRepository
from ticketline.services.queue import QueueService
from ticketline.services.queue_timing import (
    NO_HISTORY_MAX_SECONDS,
    NO_HISTORY_MIN_SECONDS,
    RUN_SETTLE_SECONDS,
    RUNS_KEPT,
    PollTiming,
    line_pace,
    line_view,
    next_run_at,
    poll_timing,
)

ACTIVE = 300
SPREAD = ACTIVE * 0.05  # JITTER_SHARE_OF_ACTIVE_TIME of the ACTIVE time


def line(advances: list[int], every: int = 60, start: int = 1_000_000, bound: int = 1_000) -> list[AdmissionRun]:
    """Runs every `every` s moving the bound by each advance, with people still waiting after each."""
    runs = [AdmissionRun(at=start, bound=bound, drawn=10**9)]
    for advance in advances:
        runs.append(AdmissionRun(at=runs[-1].at + every, bound=runs[-1].bound + advance, drawn=10**9))
    return runs


def test_rate_expressions_give_the_seconds_between_runs_and_cron_gives_none():
    assert schedule_seconds("rate(1 minute)") == 60
    assert schedule_seconds("rate(5 minutes)") == 300
    assert schedule_seconds("rate(2 hours)") == 7200
    assert schedule_seconds("cron(0/5 * * * ? *)") is None
    assert Settings(table_name="t").admission_interval_seconds == 300
    with pytest.raises(ValidationError):
        Settings(table_name="t", admission_schedule_rate="every 5 minutes")


def test_only_intervals_that_left_people_waiting_measure_the_pace():
    runs = line([300, 300])
    emptied = AdmissionRun(at=runs[-1].at + 60, bound=runs[-1].bound + 5000, drawn=runs[-1].bound + 10)
    pace = line_pace((*runs, emptied), interval=60)
    assert pace is not None and pace.mean == pytest.approx(300) and pace.seconds_seen == 120
    assert line_pace(tuple(line([0, 0, 0])), interval=60) is None  # the line has not moved: nothing to go by


def test_the_estimate_counts_the_runs_the_line_needs_at_its_mean_pace():
    runs = tuple(line([280, 320] * 4))  # 8 intervals of 60 s: a whole ACTIVE window seen, mean 300 per run
    view = line_view(runs, capacity=1_000, configured_interval=60, active_seconds=ACTIVE)
    now = runs[-1].at + 10  # the next run is due in 50 s
    timing = poll_timing(900, view, now, jitter=0.0)
    assert timing.estimated_wait_seconds == 50 + 2 * 60  # 3 runs: the next one and two more
    assert poll_timing(1, view, now, jitter=0.0).estimated_wait_seconds == 50


def test_until_the_runs_cover_an_active_window_there_is_no_estimate_and_retries_assume_capacity_per_run():
    runs = tuple(line([10, 20]))  # the opening: everyone admitted is still shopping
    view = line_view(runs, capacity=1_000, configured_interval=60, active_seconds=ACTIVE)
    now = runs[-1].at + 30
    timing = poll_timing(2_500, view, now, jitter=0.0)
    assert timing.estimated_wait_seconds is None
    # At most 1,000 places per run: not before the third run from now (30 s, then 60 s apart).
    assert timing.retry_after_seconds == math.ceil(30 + 2 * 60 + RUN_SETTLE_SECONDS)


def test_returns_are_spread_over_a_short_window_after_the_run():
    view = line_view(tuple(line([300] * 8)), capacity=1_000, configured_interval=60, active_seconds=ACTIVE)
    now = 1_000_000 + 8 * 60 + 20  # next run in 40 s
    retries = {poll_timing(100, view, now, jitter=random.random()).retry_after_seconds for _ in range(2_000)}
    earliest, latest = 40 + RUN_SETTLE_SECONDS, 40 + RUN_SETTLE_SECONDS + SPREAD
    assert min(retries) >= earliest and max(retries) <= math.ceil(latest)
    assert len(retries) >= SPREAD - 1  # spread over the window, not one second
    assert SPREAD + RUN_SETTLE_SECONDS <= 0.1 * ACTIVE  # what a punctual waiter loses is under 10 % of its turn


def test_a_run_due_and_not_recorded_yet_is_expected_at_once_and_a_missed_one_puts_it_back_on_schedule():
    assert next_run_at(1_000, 60, now=1_030) == 1_060
    assert next_run_at(1_000, 60, now=1_065) == 1_065  # late by 5 s: any moment now
    assert next_run_at(1_000, 60, now=1_130) == 1_180  # a run missed: the next on the schedule


def test_before_any_run_is_recorded_the_retry_grows_with_the_distance_to_the_front():
    no_runs = line_view((), capacity=10, configured_interval=60, active_seconds=ACTIVE)
    assert poll_timing(1, no_runs, now=0, jitter=0.5) == PollTiming(None, NO_HISTORY_MIN_SECONDS)
    assert poll_timing(500, no_runs, now=0, jitter=0.5) == PollTiming(None, NO_HISTORY_MIN_SECONDS + 10)
    assert poll_timing(50_000, no_runs, now=0, jitter=0.5) == PollTiming(None, NO_HISTORY_MAX_SECONDS)


def test_runs_seen_closer_together_than_the_schedule_set_the_interval():
    runs = tuple(line([5] * 8, every=2))  # a local server admitting every 2 s, the template saying 5 minutes
    view = line_view(runs, capacity=10, configured_interval=300, active_seconds=ACTIVE)
    assert view.interval == 2


@pytest.mark.parametrize("seed", range(20))
def test_a_waiter_that_follows_retry_after_is_never_back_a_run_late(seed: int):
    """The line moves at a pace that varies run to run; whatever it does within the pace it has shown, a waiter
    who comes back when told is back after the run that admits it within the settle time and the spread."""
    rng = random.Random(seed)
    every, capacity = 60, 1_000
    runs = line([rng.randint(200, 400) for _ in range(8)], every=every)
    position = rng.randint(1, 50_000)
    seq = runs[-1].bound + position
    now = float(runs[-1].at + rng.randint(0, every - 1))
    polls = 0
    while True:
        polls += 1
        view = line_view(tuple(runs[-RUNS_KEPT:]), capacity, every, ACTIVE)
        timing = poll_timing(seq - runs[-1].bound, view, now, jitter=rng.random())
        back = now + timing.retry_after_seconds
        while runs[-1].at + every <= back:  # the runs until then, each within the pace shown so far
            runs.append(AdmissionRun(runs[-1].at + every, runs[-1].bound + rng.randint(200, 400), 10**9))
            if runs[-1].bound >= seq:
                admitted_at = runs[-1].at
                lost = back - admitted_at if back >= admitted_at else 0.0
                assert lost <= RUN_SETTLE_SECONDS + SPREAD + 1
                assert polls <= 15
                return
        now = back


def test_admission_records_every_run_and_the_poll_answers_from_them(aws, clock):
    QueueRepository().create_queue("c1", capacity=2, shards=1, now=int(clock()))
    queue = QueueService(settings=Settings(table_name="TicketlineTable"))
    tokens = [queue.issue("c1", f"u{n}")[0] for n in range(40)]
    for _ in range(RUNS_KEPT + 3):
        clock.advance(ACTIVE)  # every ACTIVE token lapses: each run admits 2
        queue.admit()
    state = QueueRepository().get_state("c1", consistent=True)
    assert state is not None and len(state.runs) == RUNS_KEPT
    assert [b.bound - a.bound for a, b in zip(state.runs, state.runs[1:], strict=False)] == [2] * (RUNS_KEPT - 1)
    assert state.runs[-1].bound == state.admit_bound and state.runs[-1].drawn == 40
    clock.advance(1)
    last = queue.position("c1", "u39", tokens[39].token)
    assert last.status is TokenStatus.WAIT and last.estimated_wait_seconds is not None
    # 40 - 28 = 12 places at 2 per run: the 6th run from now, the next one 299 s from now and 300 s apart.
    assert last.position == 12
    assert last.estimated_wait_seconds == ACTIVE - 1 + 5 * ACTIVE
    admitted = queue.position("c1", "u27", tokens[27].token)
    assert admitted.status is TokenStatus.ACTIVE and admitted.estimated_wait_seconds == 0


@pytest.mark.parametrize(("rate", "seconds"), [(None, 300), ("rate(1 minute)", 60)])
def test_the_queue_functions_know_the_admission_schedule_the_template_deploys(rate: str | None, seconds: int):
    from devserver import DEFAULT_TEMPLATE
    from devserver.template import load_template

    overrides = {"AdmissionScheduleRate": rate} if rate else None
    functions = {f.logical_id: f for f in load_template(DEFAULT_TEMPLATE, overrides).functions}
    environment = functions["QueuePositionFunction"].environment
    settings = Settings(table_name="t", admission_schedule_rate=environment["ADMISSION_SCHEDULE_RATE"])
    assert settings.admission_interval_seconds == seconds
