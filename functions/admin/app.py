"""The operator's routes: create a concert (its dates, seats and queue), watch its sale, pause, resume or resize its
queue."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from ticketline.api import body_errors, create_app, json_object_body, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.idempotency import IdempotencyKey
from ticketline.models.catalog import ConcertIn, ConcertOut, SaleStatus
from ticketline.models.queue import ID_PATTERN, ConcertSaleOut, QueueControlIn, QueueFiguresOut
from ticketline.services.catalog import CatalogService
from ticketline.services.operator import OperatorService

app = create_app()
catalog = CatalogService()
operator = OperatorService()

# The bodies are validated in the routes rather than in their signatures, so that a non-admin learns nothing but 403.


@app.post(
    "/admin/concerts",
    summary="Create a concert",
    description="Admin group only (403 otherwise, checked before the body). Header Idempotency-Key (required): a "
    "retry with the same key and body answers the same concert, never a second one; another body with the key is 409 "
    'IDEMPOTENCY_KEY_REUSED. Body: ConcertIn - {"title", "queueCapacity"?, "queueShards"?, "salesOpenAt"?, '
    '"schedules": [{"startsAt", "seats": [{"number", "price", "section"?}]} or {"startsAt", "seatBlocks": '
    '[{"section"?, "from", "to", "price"}]}]} (1..50 schedules in the future, up to 100,000 seats each with unique '
    "numbers, 0 < price <= 10,000,000). 201: the concert with its concertId and each schedule's scheduleId; its "
    'queue is open. 202: `"status": "PUBLISHING"`, a concert too large to write within the request; it opens for '
    'sale ("ON_SALE") once every seat is written.',
    responses={201: {"description": "The concert, published"}, 202: {"description": "The concert, publishing"}},
    tags=["Catalog"],
)
def create_concert(idempotency_key: IdempotencyKey) -> Response[ConcertOut]:
    caller = caller_from_event(app.current_event.raw_event)
    caller.require_admin()
    with body_errors():
        request = ConcertIn.model_validate(json_object_body(app.current_event))
    concert = catalog.create_concert(request, caller.user_id, idempotency_key)
    status = 202 if concert.status is SaleStatus.PUBLISHING else 201
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=concert)


@app.patch(
    "/admin/concerts/<concertId>/queue",
    summary="Pause, resume or resize a concert's queue",
    description="Admin group only (403 otherwise, checked before the body). Body: QueueControlIn - "
    '{"paused"?: bool, "capacity"?: int} (at least one). Pausing stops every admission: the admission runs at once, '
    "a waiter's walk-in within QueueStateCacheSeconds. A capacity applies from the next admission run; lowering it "
    "admits nobody until the live ACTIVE tokens fall under it and cuts no one's turn short. Every change is kept "
    "with the operator's sub (GET /admin/concerts/{concertId}). 200: the queue's figures.",
    tags=["Operators"],
)
def change_queue(concertId: Annotated[str, Path(pattern=ID_PATTERN)]) -> QueueFiguresOut:
    caller = caller_from_event(app.current_event.raw_event)
    caller.require_admin()
    with body_errors():
        request = QueueControlIn.model_validate(json_object_body(app.current_event))
    return operator.change_queue(concertId, request, caller.user_id)


@app.get(
    "/admin/concerts/<concertId>",
    summary="A concert's sale as it stands",
    description="Admin group only. The queue (capacity, paused, waiting, admitted, estimated wait), the seats (free, "
    "held, sold per date and in all), how old those figures are, and the queue's audit trail (every pause, resume "
    "and capacity change with the operator's sub). One Query of the concert's partition: the figures the stream "
    "consumer and the admission runs keep, seconds old (figuresAsOf).",
    tags=["Operators"],
)
def concert_sale(concertId: Annotated[str, Path(pattern=ID_PATTERN)]) -> ConcertSaleOut:
    caller_from_event(app.current_event.raw_event).require_admin()
    return operator.concert_sale(concertId)


lambda_handler = lambda_entry(app)
