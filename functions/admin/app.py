"""POST /admin/concerts: an operator creates a concert, its dates and seats, and opens its queue."""

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ticketline.api import create_app, json_object_body, lambda_entry
from ticketline.auth import caller_from_event
from ticketline.models.catalog import ConcertIn, ConcertOut
from ticketline.services.catalog import CatalogService

app = create_app()
catalog = CatalogService()


@app.post(
    "/admin/concerts",
    summary="Create a concert",
    description="Admin group only (403 otherwise, checked before the body). Body: ConcertIn - "
    '{"title", "queueCapacity"?, "queueShards"?, "schedules": [{"startsAt", "seats": [{"number", "price"}]}]} '
    "(1..50 schedules in the future, 1..5000 seats each with unique numbers, 0 < price <= 10,000,000). "
    "201: the concert with its concertId and each schedule's scheduleId; its queue is open.",
    responses={201: {"description": "The concert, published"}},
    tags=["Catalog"],
)
def create_concert() -> Response[ConcertOut]:
    caller_from_event(app.current_event.raw_event).require_admin()
    try:  # validated here rather than in the signature, so that a non-admin learns nothing but 403
        request = ConcertIn.model_validate(json_object_body(app.current_event))
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None
    concert = catalog.create_concert(request)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=concert)


lambda_handler = lambda_entry(app)
