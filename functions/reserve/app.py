"""POST /reservations (hold a seat, ACTIVE queue token) and GET /reservations/{reservationId} (owner only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from ticketline.api import create_app, lambda_entry
from ticketline.auth import caller_from_event, queue_token_from_headers
from ticketline.models.queue import ID_PATTERN
from ticketline.models.reservations import HoldIn, ReservationOut
from ticketline.services.reservations import ReservationService

app = create_app()
reservations = ReservationService()


@app.post(
    "/reservations",
    summary="Hold a seat",
    description="Holds the seat for SEAT_HOLD_TTL seconds. Exactly one of any number of concurrent requests "
    "for a seat wins; the others get 409 SEAT_UNAVAILABLE. 409 HOLD_LIMIT_REACHED past the per-user limit "
    "per date. Needs an ACTIVE X-Queue-Token of the schedule's concert.",
    responses={201: {"description": "The hold"}},
    tags=["Reservations"],
)
def hold_seat(request: HoldIn) -> Response[ReservationOut]:
    caller = caller_from_event(app.current_event.raw_event)
    held = reservations.hold(request, caller.user_id, queue_token_from_headers(app.current_event.headers))
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=held)


@app.get(
    "/reservations/<reservationId>",
    summary="A reservation",
    description="The caller's reservation: HELD, PAID or EXPIRED (a HELD past holdExpiresAt shows EXPIRED).",
    tags=["Reservations"],
)
def get_reservation(reservationId: Annotated[str, Path(pattern=ID_PATTERN)]) -> ReservationOut:
    caller = caller_from_event(app.current_event.raw_event)
    return reservations.get(reservationId, caller.user_id)


lambda_handler = lambda_entry(app)
