"""EventBridge schedules: `expire` (ACTIVE tokens past their time, lapsed holds), `admit` (WAIT tokens, in order)
and `recount` (the stream-fed seat and sales figures and sold-out flags of live concerts, so a wrong one heals
itself)."""

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.observability import logger, metrics, tracer
from ticketline.services.catalog import CatalogService
from ticketline.services.queue import QueueService
from ticketline.services.reservations import ReservationService

queue = QueueService()
reservations = ReservationService()
catalog = CatalogService()


def expire() -> dict[str, Any]:
    """One schedule (ExpiryScheduleRate) expires tokens and lapses holds."""
    return asdict(queue.expire_due()) | asdict(reservations.lapse_due())


TASKS: dict[str, Callable[[], dict[str, Any]]] = {
    "expire": expire,
    "admit": lambda: asdict(queue.admit()),
    "recount": lambda: asdict(catalog.recount_live()),
}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = event.get("task")
    if task not in TASKS:
        raise ValueError(f"unknown scheduler task {task!r}; expected one of {sorted(TASKS)}")
    summary = TASKS[task]()
    logger.info("scheduler run", extra={"task": task, **summary})
    return {"task": task, **summary}
