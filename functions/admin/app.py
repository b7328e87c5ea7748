"""The operator's routes: create a concert (its dates, seats and queue), watch its sale, pause, resume or resize its
queue."""

from aws_lambda_powertools.event_handler import Response, content_types

from ticketline.api import IDEMPOTENT, JSON_BODY, SIGNED_IN, PathId, create_app, error_responses, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.errors import Forbidden, NotFound, ValidationFailed
from ticketline.idempotency import IdempotencyKey
from ticketline.models.catalog import ConcertIn, ConcertOut, SaleStatus
from ticketline.models.queue import ConcertSaleOut, QueueControlIn, QueueFiguresOut
from ticketline.services.catalog import CatalogService
from ticketline.services.operator import OperatorService

# Operators only: anyone else is answered 403 before their request is even read (create_app).
app = create_app(operators_only=True)
catalog = CatalogService()
operator = OperatorService()


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
    responses=error_responses(
        *SIGNED_IN,
        *JSON_BODY,
        *IDEMPOTENT,
        Forbidden,
        ok={201: "The concert, published", 202: "The concert, publishing"},
    ),
    tags=["Catalog"],
)
def create_concert(request: ConcertIn, idempotency_key: IdempotencyKey) -> Response[ConcertOut]:
    caller = caller_from_event(app.current_event.raw_event)
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
    responses=error_responses(*SIGNED_IN, *JSON_BODY, Forbidden, NotFound),
    tags=["Operators"],
)
def change_queue(concertId: PathId, request: QueueControlIn) -> QueueFiguresOut:
    caller = caller_from_event(app.current_event.raw_event)
    return operator.change_queue(concertId, request, caller.user_id)


@app.get(
    "/admin/concerts/<concertId>",
    summary="A concert's sale as it stands",
    description="Admin group only. The queue (capacity, paused, waiting, admitted, estimated wait), the seats (free, "
    "held, sold per date and in all), how old those figures are, and the queue's audit trail (every pause, resume "
    "and capacity change with the operator's sub). One Query of the concert's partition: the figures the stream "
    "consumer and the admission runs keep, seconds old (figuresAsOf).",
    responses=error_responses(*SIGNED_IN, ValidationFailed, Forbidden, NotFound),
    tags=["Operators"],
)
def concert_sale(concertId: PathId) -> ConcertSaleOut:
    return operator.concert_sale(concertId)


lambda_handler = lambda_entry(app)
