"""EventBridge schedules: `expire` (ACTIVE tokens past their time) and `admit` (WAIT tokens, in order)."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.observability import logger, metrics, tracer
from ticketline.services.queue import QueueService

queue = QueueService()

TASKS = {
    "expire": queue.expire_due,
    "admit": queue.admit,
}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    task = event.get("task")
    if task not in TASKS:
        raise ValueError(f"unknown scheduler task {task!r}; expected one of {sorted(TASKS)}")
    summary = asdict(TASKS[task]())
    logger.info("scheduler run", extra={"task": task, **summary})
    return {"task": task, **summary}
