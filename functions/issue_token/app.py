"""POST /concerts/{concertId}/queue/tokens: join a concert's waiting room (or get the token you hold)."""

from aws_lambda_powertools.event_handler import Response, content_types

from ticketline.api import SIGNED_IN, PathId, create_app, error_responses, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.errors import NotFound, SaleNotOpen, SoldOut, ValidationFailed
from ticketline.models.queue import QueueTokenOut
from ticketline.services.queue import QueueService

app = create_app()
queue = QueueService()


@app.post(
    "/concerts/<concertId>/queue/tokens",
    summary="Join the queue",
    description="Issues the caller's queue token, or returns the live one they hold (200). "
    "ACTIVE while the concert is under capacity, else WAIT with a position.",
    responses=error_responses(
        *SIGNED_IN,
        ValidationFailed,
        NotFound,
        SaleNotOpen,
        SoldOut,
        ok={200: "The token the caller already holds", 201: "A new token"},
    ),
    tags=["Queue"],
)
def issue_token(concertId: PathId) -> Response[QueueTokenOut]:
    caller = caller_from_event(app.current_event.raw_event)
    token, created = queue.issue(concertId, caller.user_id)
    return Response(status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=token)


lambda_handler = lambda_entry(app)
