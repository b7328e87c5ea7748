"""Discovery (public: the concerts on sale or coming up, a concert's page), and what an ACTIVE buyer browses: a
concert's future dates with free seats, and a date's free seats (ACTIVE queue token of the concert)."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from ticketline.api import (
    ACTIVE_QUEUE_TOKEN,
    SIGNED_IN,
    PathId,
    QueueToken,
    create_app,
    error_responses,
    lambda_entry,
)
from ticketline.auth import caller_from_event
from ticketline.errors import NotFound, ServiceUnavailable, ValidationFailed
from ticketline.models.catalog import (
    DEFAULT_PAGE,
    MAX_PAGE,
    MAX_SEAT_PAGE,
    MAX_SECTION_LENGTH,
    SECTION_PATTERN,
    ConcertDetailOut,
    ConcertsOut,
    SchedulesOut,
    SeatsOut,
)
from ticketline.services.catalog import CatalogService

app = create_app()
catalog = CatalogService()

# Public answers the same for everyone: a CDN in front of the API (or the stage cache) may serve them this long
# (README, "Discovery behind a CDN"). Short, so that sold out and new concerts show within seconds.
DISCOVERY_CACHE_CONTROL = "public, max-age=5"


@app.get(
    "/concerts",
    summary="Concerts on sale or coming up",
    description="Public (no token). The concerts whose last date has not started, by that date, soonest first; "
    "`soldOut` when every seat of every date still on sale is sold. Pass `nextCursor` as `cursor` for the next "
    "page. Cacheable for a few seconds (Cache-Control).",
    responses=error_responses(ValidationFailed, ServiceUnavailable),
    tags=["Discovery"],
)
def list_concerts(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> Response[ConcertsOut]:
    return _public(catalog.concerts(limit, cursor))


@app.get(
    "/concerts/<concertId>",
    summary="A concert",
    description="Public (no token). The concert, whether it is sold out, and its dates that have not started, "
    "soonest first; 404 for an unknown concert. Cacheable for a few seconds (Cache-Control).",
    responses=error_responses(ValidationFailed, NotFound, ServiceUnavailable),
    tags=["Discovery"],
)
def get_concert(concertId: PathId) -> Response[ConcertDetailOut]:
    return _public(catalog.concert(concertId))


def _public[T: (ConcertsOut, ConcertDetailOut)](body: T) -> Response[T]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Cache-Control": DISCOVERY_CACHE_CONTROL},
    )


@app.get(
    "/concerts/<concertId>/schedules",
    summary="Dates on sale",
    description="Future schedules with at least one free seat (availableSeats is a hint). Needs an ACTIVE "
    "X-Queue-Token of this concert.",
    responses=error_responses(*SIGNED_IN, *ACTIVE_QUEUE_TOKEN, ValidationFailed),
    tags=["Catalog"],
)
def list_schedules(concertId: PathId, queue_token: QueueToken) -> SchedulesOut:
    caller = caller_from_event(app.current_event.raw_event)
    return catalog.schedules(concertId, caller.user_id, queue_token)


@app.get(
    "/concerts/<concertId>/schedules/<scheduleId>/seats",
    summary="Free seats of a date",
    description="Seats never sold and not held (or held by a lapsed hold), by number, `limit` a page (default and "
    f"most {MAX_SEAT_PAGE}), of one `section` when given; pass `nextCursor` as `cursor` for the next page. Needs an "
    "ACTIVE X-Queue-Token of this concert; 404 for a schedule of another concert.",
    responses=error_responses(*SIGNED_IN, *ACTIVE_QUEUE_TOKEN, ValidationFailed, NotFound),
    tags=["Catalog"],
)
def list_seats(
    concertId: PathId,
    scheduleId: PathId,
    queue_token: QueueToken,
    *,
    limit: Annotated[int, Query(ge=1, le=MAX_SEAT_PAGE)] = MAX_SEAT_PAGE,
    section: Annotated[str | None, Query(min_length=1, max_length=MAX_SECTION_LENGTH, pattern=SECTION_PATTERN)] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> SeatsOut:
    caller = caller_from_event(app.current_event.raw_event)
    return catalog.seats(
        concertId, scheduleId, caller.user_id, queue_token, limit=limit, section=section, cursor=cursor
    )


lambda_handler = lambda_entry(app)
