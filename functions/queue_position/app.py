"""GET /concerts/{concertId}/queue/position: where the caller stands (one DynamoDB read)."""

from ticketline.api import QUEUE_TOKEN, SIGNED_IN, PathId, QueueToken, create_app, error_responses, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.errors import SoldOut, ValidationFailed
from ticketline.models.queue import QueuePositionOut
from ticketline.services.queue import QueueService

app = create_app()
queue = QueueService()


@app.get(
    "/concerts/<concertId>/queue/position",
    summary="Queue position",
    description="Status and place in line of the caller's X-Queue-Token; 410 once it has expired.",
    responses=error_responses(*SIGNED_IN, *QUEUE_TOKEN, ValidationFailed, SoldOut),
    tags=["Queue"],
)
def queue_position(concertId: PathId, queue_token: QueueToken) -> QueuePositionOut:
    caller = caller_from_event(app.current_event.raw_event)
    return queue.position(concertId, caller.user_id, queue_token)


lambda_handler = lambda_entry(app)
