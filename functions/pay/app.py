"""POST /payments: pay held seats from the wallet (user JWT, ACTIVE queue token, Idempotency-Key); POST
/reservations/{reservationId}/cancellation: cancel a PAID ticket with a refund (owner, Idempotency-Key)."""

from aws_lambda_powertools.event_handler import Response, content_types

from ticketline.api import (
    ACTIVE_QUEUE_TOKEN,
    IDEMPOTENT,
    JSON_BODY,
    SIGNED_IN,
    PathId,
    QueueToken,
    create_app,
    error_responses,
    lambda_entry,
)
from ticketline.auth import caller_from_event
from ticketline.errors import (
    CancellationClosed,
    Forbidden,
    InsufficientBalance,
    NotFound,
    ReservationExpired,
    ReservationNotPayable,
    ReservationNotReleasable,
    ScheduleClosed,
    TicketLimitReached,
    ValidationFailed,
)
from ticketline.idempotency import IdempotencyKey
from ticketline.models.reservations import CancellationOut
from ticketline.models.wallet import PaymentIn, PaymentOut
from ticketline.services.cancellations import CancellationService
from ticketline.services.payments import PaymentService

app = create_app()
payments = PaymentService()
cancellations = CancellationService()


@app.post(
    "/payments",
    summary="Pay holds",
    description="`reservationId`, or `reservationIds`: 1..10 of the caller's HELD reservations of one concert, any "
    "of its dates. One atomic step: balance debited by the total, every reservation PAID, every seat sold, one "
    "ledger entry written, the caller's queue token EXPIRED; all or nothing. When several refusals apply, the "
    "first of these is answered: 403 FORBIDDEN (not the caller's), 410 RESERVATION_EXPIRED (a hold lapsed), 409 "
    "SCHEDULE_CLOSED (a date has started), 402 INSUFFICIENT_BALANCE. 409 RESERVATION_NOT_PAYABLE when already "
    "paid (a retry with the same Idempotency-Key returns the first 201); 409 TICKET_LIMIT_REACHED past "
    "MaxTicketsPerUser PAID tickets of the concert.",
    responses=error_responses(
        *SIGNED_IN,
        *JSON_BODY,
        *ACTIVE_QUEUE_TOKEN,
        *IDEMPOTENT,
        Forbidden,
        NotFound,
        ReservationExpired,
        ScheduleClosed,
        InsufficientBalance,
        ReservationNotPayable,
        TicketLimitReached,
        ok={201: "Paid"},
    ),
    tags=["Payments"],
)
def pay(request: PaymentIn, idempotency_key: IdempotencyKey, queue_token: QueueToken) -> Response[PaymentOut]:
    caller = caller_from_event(app.current_event.raw_event)
    paid = payments.pay(caller.user_id, idempotency_key, request, queue_token)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=paid)


@app.post(
    "/reservations/<reservationId>/cancellation",
    summary="Cancel a ticket",
    description="Cancels a PAID ticket until CancellationCutoffHours before the date starts, in one atomic step: "
    "the price refunded to the wallet (a REFUND ledger entry), the reservation CANCELLED, the seat free and on "
    "sale again. A retry with the same Idempotency-Key returns the first answer. 409 CANCELLATION_CLOSED past "
    "the cut-off; 409 RESERVATION_NOT_RELEASABLE when the reservation is not PAID; 403 FORBIDDEN for someone "
    "else's.",
    responses=error_responses(
        *SIGNED_IN,
        *IDEMPOTENT,
        ValidationFailed,
        Forbidden,
        NotFound,
        CancellationClosed,
        ReservationNotReleasable,
    ),
    tags=["Reservations"],
)
def cancel(reservationId: PathId, idempotency_key: IdempotencyKey) -> CancellationOut:
    caller = caller_from_event(app.current_event.raw_event)
    return cancellations.cancel(caller.user_id, idempotency_key, reservationId)


lambda_handler = lambda_entry(app)
