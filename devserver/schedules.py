"""Fires the template's Schedule events locally, as EventBridge would, one run per event at a time."""

import fcntl
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devserver.lambda_host import LambdaHost
from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, ScheduleEvent, Template, TemplateError

logger = logging.getLogger("devserver")

# The overrides that have their own CLI option (demos want the queue to move in seconds).
EXPIRY_EVENT = "Expire"
ADMISSION_EVENT = "Admit"


class ScheduleBusy(Exception):
    """A run of the same event is in progress in another process."""


def timer_rates(template: Template, overrides: Mapping[str, float]) -> list[tuple[ScheduleEvent, float]]:
    """Seconds between timer runs for each enabled schedule whose rate is known (cron is manual only)."""
    unknown = [name for name in overrides if not _exists(template, name)]
    if unknown:
        raise TemplateError(f"no Schedule event named {', '.join(unknown)} in the template")
    rates: list[tuple[ScheduleEvent, float]] = []
    for schedule in template.schedules:
        override = overrides.get(schedule.name, overrides.get(schedule.qualified_name))
        rate = override if override is not None else schedule.rate_seconds
        if rate is None:
            logger.warning("schedule %s (%s) runs only on demand locally", schedule.name, schedule.expression)
        elif schedule.enabled:
            rates.append((schedule, rate))
    return rates


def scheduled_event(schedule: ScheduleEvent) -> Any:
    """What EventBridge delivers: the Input JSON when set, else its Scheduled Event envelope."""
    if schedule.input is not None:
        return schedule.input
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:rule/{schedule.function_id}-{schedule.name}"],
        "detail": {},
    }


class ScheduleRunner:
    """Runs schedule events; a file lock per event keeps runs apart across the server's processes."""

    def __init__(self, template: Template, host: LambdaHost, lock_dir: Path) -> None:
        self._template = template
        self._host = host
        self._lock_dir = lock_dir

    def run(self, schedule: ScheduleEvent, *, wait: bool = True) -> Any:
        """Invokes the event's function now; with wait=False raises ScheduleBusy instead of queueing."""
        with self._exclusive(schedule, wait=wait):
            started = time.monotonic()
            result = self._host.invoke(self._template.function(schedule.function_id), scheduled_event(schedule))
            logger.info(
                "schedule %s ran in %.0f ms: %s",
                schedule.name,
                (time.monotonic() - started) * 1000,
                json.dumps(result, default=str),
            )
            return result

    def run_on_timer(self, rates: list[tuple[ScheduleEvent, float]], stop: threading.Event) -> None:
        """Runs each event every `rate` seconds, the first time one period after start (as a new rule)."""
        next_run = [time.monotonic() + rate for _, rate in rates]
        while rates:
            index = min(range(len(rates)), key=next_run.__getitem__)
            schedule, rate = rates[index]
            if stop.wait(max(0.0, next_run[index] - time.monotonic())):
                return
            try:
                self.run(schedule, wait=False)
            except ScheduleBusy:
                logger.info("schedule %s skipped: a run is still in progress", schedule.name)
            except Exception:
                logger.exception("schedule %s failed", schedule.name)
            # A run longer than the period skips the missed beats instead of piling them up.
            while next_run[index] <= time.monotonic():
                next_run[index] += rate

    @contextmanager
    def _exclusive(self, schedule: ScheduleEvent, *, wait: bool) -> Iterator[None]:
        lock_path = self._lock_dir / f"{schedule.qualified_name}.lock"
        with lock_path.open("w") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise ScheduleBusy(schedule.name) from error
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _exists(template: Template, name: str) -> bool:
    try:
        template.schedule(name)
    except KeyError:
        return False
    return True
