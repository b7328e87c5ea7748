"""When a waiter can expect to enter, and when it should poll again (docs/QUEUE.md, "Polling").

Pure functions of what the poll already has: the waiter's place, the queue state's recorded admission runs
(`AdmissionRun`: when each ran, the bound it left, the highest number drawn by then) and the admission cadence
(`AdmissionScheduleRate`). Nothing here reads or writes DynamoDB.

- `estimatedWaitSeconds` is the time until the run that should pass the waiter at the line's mean pace over the
  recorded runs: a best guess, null while the line has not been seen to move.
- `retryAfterSeconds` errs early: it brings the waiter back just after the first run that could pass it if the
  line kept the fastest pace it plausibly can. At most `capacity` places enter per run, so
  until the runs cover a whole ACTIVE window (every token admitted before has left by then: the pace seen is
  representative) that is the pace assumed. A waiter therefore comes back before or just after its admission
  run, never a run late, and far from the front it comes back after a share of its wait (a handful of polls
  whatever the wait). The return is spread over a window after the run (`jitter`), so that waiters admitted by
  one run do not all come back in the same second, and the window is short next to the ACTIVE time it eats into.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

from ticketline.models.queue import AdmissionRun

# How many admission runs the queue state keeps: 10 minutes of line at 60 s admission, 50 at 300 s.
RUNS_KEPT = 10
# After a run the poll waits for the run's writes and for a cached queue state to age (+ QueueStateCacheSeconds).
RUN_SETTLE_SECONDS = 2
# Returns are spread over this share of the ACTIVE time after the run (15 s of 300 s): the waiter loses at most
# the settle time plus this window of its turn.
JITTER_SHARE_OF_ACTIVE_TIME = 0.05
MAX_JITTER_SECONDS = 30
# The pace assumed for retries: the fastest run interval seen, with this margin (capped at capacity per run).
# Not the mean plus a swing shrinking like sqrt(k) over k runs: admissions come in waves (a run's batch leaves
# together about an ACTIVE window later), so several runs in a row can keep the fastest pace.
PACE_MARGIN = 1.2
# Before any run is recorded (a queue younger than one admission period) the phase of the runs is unknown: the
# rule from before the runs were recorded, 2 s plus 1 s per 50 places ahead, at most 30 s.
NO_HISTORY_MIN_SECONDS = 2
NO_HISTORY_MAX_SECONDS = 30
NO_HISTORY_PLACES_PER_SECOND = 50
DEFAULT_ADMISSION_SECONDS = 300


@dataclass(frozen=True, slots=True)
class PollTiming:
    estimated_wait_seconds: int | None
    retry_after_seconds: int


@dataclass(frozen=True, slots=True)
class LinePace:
    """Places the bound moved per admission run while people were still waiting after the run."""

    mean: float
    fastest: float
    seconds_seen: int


def recorded_runs(runs: tuple[AdmissionRun, ...], new: AdmissionRun) -> tuple[AdmissionRun, ...]:
    """The runs the queue state keeps: the newest RUNS_KEPT, this one included."""
    return (*runs, new)[-RUNS_KEPT:]


def admission_interval(runs: tuple[AdmissionRun, ...], configured_seconds: int | None) -> float:
    """Seconds between admission runs: the schedule's, or the runs' own median interval when shorter (a local server
    that runs admission every few seconds, a cron schedule)."""
    gaps = [b.at - a.at for a, b in pairwise(runs) if b.at > a.at]
    seen = median(gaps) if gaps else None
    candidates = [c for c in (configured_seconds, seen) if c]
    return float(min(candidates)) if candidates else float(DEFAULT_ADMISSION_SECONDS)


def line_pace(runs: tuple[AdmissionRun, ...], interval: float) -> LinePace | None:
    """How fast the line moved over the recorded runs; None until it has been seen to move.

    Only intervals that ended with someone still waiting count: an interval that emptied the line moved as fast
    as people arrived, not as fast as slots freed."""
    moved = [(b.bound - a.bound, b.at - a.at) for a, b in pairwise(runs) if b.drawn > b.bound]
    moved = [(places, seconds) for places, seconds in moved if seconds > 0]
    places = sum(p for p, _ in moved)
    seconds = sum(s for _, s in moved)
    if places <= 0 or seconds <= 0:
        return None
    fastest = max(p / s for p, s in moved) * interval
    return LinePace(mean=places / seconds * interval, fastest=fastest, seconds_seen=seconds)


def next_run_at(last_run: int, interval: float, now: float) -> float:
    """When the next admission run should land. A run due and not recorded yet is expected at once (EventBridge
    is not second-aligned and a run takes time); one missed altogether puts the next back on the schedule."""
    due = last_run + interval
    if due > now:
        return due
    if now - due < interval:
        return now
    return last_run + interval * math.ceil((now - last_run) / interval)


@dataclass(frozen=True, slots=True)
class LineView:
    """What a queue state's runs say, worked out once per state read (the poll reuses it while the state is cached)."""

    last_run: int | None
    interval: float
    pace: LinePace | None
    fastest: int  # places per run assumed for retries
    spread: float  # seconds over which returns after a run are spread


def line_view(
    runs: tuple[AdmissionRun, ...], capacity: int, configured_interval: int | None, active_seconds: int
) -> LineView:
    interval = admission_interval(runs, configured_interval)
    pace = line_pace(runs, interval)
    # Until the runs cover a whole ACTIVE window the pace seen is the opening's (everyone admitted is still
    # shopping), slower than the pace to come: nothing to estimate from yet.
    if pace is not None and pace.seconds_seen < active_seconds + interval:
        pace = None
    fastest = capacity if pace is None else min(capacity, math.ceil(pace.fastest * PACE_MARGIN))
    spread = min(MAX_JITTER_SECONDS, max(1.0, active_seconds * JITTER_SHARE_OF_ACTIVE_TIME))
    return LineView(runs[-1].at if runs else None, interval, pace, max(1, fastest), spread)


def poll_timing(
    position: int, line: LineView, now: float, jitter: float, settle_seconds: float = RUN_SETTLE_SECONDS
) -> PollTiming:
    """Estimate and retry time of a waiter at `position` (>= 1); `jitter` is uniform in [0, 1)."""
    if line.last_run is None:
        wait = NO_HISTORY_MIN_SECONDS + position // NO_HISTORY_PLACES_PER_SECOND
        return PollTiming(None, min(NO_HISTORY_MAX_SECONDS, wait))
    next_run = next_run_at(line.last_run, line.interval, now)
    estimate = None
    if line.pace is not None:
        runs_to_wait = math.ceil(position / line.pace.mean)
        estimate = max(0, math.ceil(next_run - now + (runs_to_wait - 1) * line.interval))
    # The first run that could reach the waiter at the fastest pace: coming back just after it is never late.
    runs_to_skip = max(1, math.ceil(position / line.fastest))
    back_at = next_run + (runs_to_skip - 1) * line.interval + settle_seconds + jitter * line.spread
    return PollTiming(estimate, max(1, math.ceil(back_at - now)))


def first_run_from(moment: float, last_run: int | None, interval: float, now: float) -> float:
    """When the first admission run at or after `moment` should land (now, or the next run, once it has passed)."""
    if last_run is None:
        return max(moment, now)
    if moment > now:
        return last_run + interval * max(1, math.ceil((moment - last_run) / interval))
    return next_run_at(last_run, interval, now)


def opening_timing(
    place: int,
    line: LineView,
    forms_at: float,
    now: float,
    *,
    jitter: float,
    settle_seconds: float = RUN_SETTLE_SECONDS,
) -> PollTiming:
    """Retry time of a waiter whose line forms at `forms_at` (the lobby): back just after the first run that could
    reach `place` (>= 1) from then on, at the fastest pace; no estimate until the line has formed."""
    runs_to_skip = max(1, math.ceil(place / line.fastest))
    back_at = max(now, forms_at) + (runs_to_skip - 1) * line.interval + settle_seconds + jitter * line.spread
    return PollTiming(None, max(1, math.ceil(back_at - now)))
