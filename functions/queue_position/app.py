"""GET /concerts/{concertId}/queue/position: where the caller stands (one DynamoDB read)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

from ticketline.api import create_app, lambda_entry
from ticketline.auth import caller_from_event, queue_token_from_headers
from ticketline.models.queue import ID_PATTERN, QueuePositionOut
from ticketline.services.queue import QueueService

app = create_app()
queue = QueueService()


@app.get(
    "/concerts/<concertId>/queue/position",
    summary="Queue position",
    description="Status and place in line of the caller's X-Queue-Token; 410 once it has expired.",
    tags=["Queue"],
)
def queue_position(concertId: Annotated[str, Path(pattern=ID_PATTERN)]) -> QueuePositionOut:
    caller = caller_from_event(app.current_event.raw_event)
    return queue.position(concertId, caller.user_id, queue_token_from_headers(app.current_event.headers))


lambda_handler = lambda_entry(app)
