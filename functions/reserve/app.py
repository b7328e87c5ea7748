"""POST /reservations (hold a seat, ACTIVE queue token), GET /reservations (the caller's), GET and DELETE
/reservations/{reservationId} (owner only: read, give a hold back)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from ticketline.api import (
    ACTIVE_QUEUE_TOKEN,
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
    Forbidden,
    HoldLimitReached,
    NotFound,
    ReservationNotReleasable,
    ScheduleClosed,
    SeatUnavailable,
    TicketLimitReached,
    ValidationFailed,
)
from ticketline.models.reservations import (
    LIST_DEFAULT_LIMIT,
    LIST_MAX_LIMIT,
    HoldIn,
    ReservationOut,
    ReservationsOut,
    ReservationStatus,
)
from ticketline.services.reservations import ReservationService

app = create_app()
reservations = ReservationService()


@app.post(
    "/reservations",
    summary="Hold a seat",
    description="Holds the seat for SEAT_HOLD_TTL seconds. Exactly one of any number of concurrent requests "
    "for a seat wins; the others get 409 SEAT_UNAVAILABLE. 409 HOLD_LIMIT_REACHED past the per-user limit "
    "per date; 409 SCHEDULE_CLOSED once the date has started; 409 TICKET_LIMIT_REACHED when the caller owns "
    "MaxTicketsPerUser PAID tickets of the concert. Needs an ACTIVE X-Queue-Token of the schedule's concert.",
    responses=error_responses(
        *SIGNED_IN,
        *JSON_BODY,
        *ACTIVE_QUEUE_TOKEN,
        NotFound,
        SeatUnavailable,
        HoldLimitReached,
        ScheduleClosed,
        TicketLimitReached,
        ok={201: "The hold"},
    ),
    tags=["Reservations"],
)
def hold_seat(request: HoldIn, queue_token: QueueToken) -> Response[ReservationOut]:
    caller = caller_from_event(app.current_event.raw_event)
    held = reservations.hold(request, caller.user_id, queue_token)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=held)


@app.get(
    "/reservations/<reservationId>",
    summary="A reservation",
    description="The caller's reservation: HELD, PAID, EXPIRED, RELEASED or CANCELLED (a HELD past "
    "holdExpiresAt shows EXPIRED). 403 FORBIDDEN for someone else's.",
    responses=error_responses(*SIGNED_IN, ValidationFailed, Forbidden, NotFound),
    tags=["Reservations"],
)
def get_reservation(reservationId: PathId) -> ReservationOut:
    caller = caller_from_event(app.current_event.raw_event)
    return reservations.get(reservationId, caller.user_id)


@app.get(
    "/reservations",
    summary="My tickets",
    description="The caller's reservations, newest first; `status` filters (as shown: a HELD past its hold is "
    "EXPIRED); pass `nextCursor` as `cursor` for older ones.",
    responses=error_responses(*SIGNED_IN, ValidationFailed),
    tags=["Reservations"],
)
def list_reservations(
    status: Annotated[ReservationStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_MAX_LIMIT)] = LIST_DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReservationsOut:
    caller = caller_from_event(app.current_event.raw_event)
    return reservations.mine(caller.user_id, limit, cursor, status)


@app.delete(
    "/reservations/<reservationId>",
    summary="Give a hold back",
    description="Gives a HELD seat back at once: 200 the reservation, status RELEASED; the seat is free for the "
    "next buyer. Releasing again answers the same 200. 409 RESERVATION_NOT_RELEASABLE when it is PAID, EXPIRED "
    "or CANCELLED; 403 FORBIDDEN for someone else's.",
    responses=error_responses(*SIGNED_IN, ValidationFailed, Forbidden, NotFound, ReservationNotReleasable),
    tags=["Reservations"],
)
def release_reservation(reservationId: PathId) -> ReservationOut:
    caller = caller_from_event(app.current_event.raw_event)
    return reservations.release(reservationId, caller.user_id)


lambda_handler = lambda_entry(app)
