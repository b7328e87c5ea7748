"""GET a concert's future dates with free seats, and a date's free seats (ACTIVE queue token of the concert)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path

from ticketline.api import create_app, lambda_entry
from ticketline.auth import caller_from_event, queue_token_from_headers
from ticketline.models.catalog import SchedulesOut, SeatsOut
from ticketline.models.queue import ID_PATTERN
from ticketline.services.catalog import CatalogService

app = create_app()
catalog = CatalogService()


@app.get(
    "/concerts/<concertId>/schedules",
    summary="Dates on sale",
    description="Future schedules with at least one free seat (availableSeats is a hint). Needs an ACTIVE "
    "X-Queue-Token of this concert.",
    tags=["Catalog"],
)
def list_schedules(concertId: Annotated[str, Path(pattern=ID_PATTERN)]) -> SchedulesOut:
    caller = caller_from_event(app.current_event.raw_event)
    return catalog.schedules(concertId, caller.user_id, queue_token_from_headers(app.current_event.headers))


@app.get(
    "/concerts/<concertId>/schedules/<scheduleId>/seats",
    summary="Free seats of a date",
    description="Seats never sold and not held (or held by a lapsed hold), by number. Needs an ACTIVE "
    "X-Queue-Token of this concert; 404 for a schedule of another concert.",
    tags=["Catalog"],
)
def list_seats(
    concertId: Annotated[str, Path(pattern=ID_PATTERN)],
    scheduleId: Annotated[str, Path(pattern=ID_PATTERN)],
) -> SeatsOut:
    caller = caller_from_event(app.current_event.raw_event)
    token = queue_token_from_headers(app.current_event.headers)
    return catalog.seats(concertId, scheduleId, caller.user_id, token)


lambda_handler = lambda_entry(app)
