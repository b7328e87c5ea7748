"""One way to build a function's HTTP entry: a validating Powertools resolver whose every error is API.md's shape,
and what a route declares for the OpenAPI document (its errors, its headers, its path ids)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
    OpenAPIResponseValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError
from pydantic import BaseModel, ConfigDict, Field

from ticketline.auth import QUEUE_TOKEN_HEADER, caller_from_event
from ticketline.config import get_settings
from ticketline.db import cancelled, error_code
from ticketline.errors import (
    DomainError,
    IdempotencyKeyReused,
    PayloadTooLarge,
    QueueTokenExpired,
    QueueTokenInvalid,
    QueueTokenNotActive,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
    error_body,
)
from ticketline.models import ID_PATTERN
from ticketline.observability import logger, metrics, tracer

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

_THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
# DynamoDB being unavailable (after botocore's retries): worth a retry later. TransactionConflict is here because a
# conflict the service's own retries did not resolve is contention, not a bad request.
_UNAVAILABLE_CODES = frozenset(
    {"InternalServerError", "ServiceUnavailable", "TransactionConflictException", "TransactionInProgressException"}
)


# What the CORS preflight allows (template.yaml's Cors); the answers themselves carry the allowed origin.
CORS_HEADERS = ["Authorization", "Content-Type", "X-Queue-Token", "Idempotency-Key"]


def create_app(*, operators_only: bool = False) -> APIGatewayRestResolver:
    """The function's resolver. `operators_only` (the admin function): a caller outside the admin group is answered
    401 or 403 whatever the request, before any of it is read."""
    # Every answer, errors included, names the origin the template's AllowedOrigins parameter allows (API.md):
    # with "*" Powertools echoes the caller's Origin, which browsers treat the same.
    cors = CORSConfig(
        allow_origin=os.environ.get("ALLOWED_ORIGINS") or "*",
        allow_headers=CORS_HEADERS,
        expose_headers=["Retry-After"],
    )

    # Validation is added here rather than by enable_validation=True, which would run Powertools' request
    # validation before any middleware. Here the order is ours: an operators-only app refuses non-admins before
    # reading anything, then Powertools validates the request, reading a route's body by API.md's rule
    # (_read_bodies_by_our_rule), then its response validation serializes the route's answer.
    def body_by_our_rule(_placeholder: str) -> dict[str, Any]:
        return json_object_body(app.context[_REQUEST_AS_SENT])

    app = APIGatewayRestResolver(cors=cors, json_body_deserializer=body_by_our_rule)
    app.use(
        [
            *([_admin_group_only] if operators_only else []),
            _read_bodies_by_our_rule,
            OpenAPIRequestValidationMiddleware(),  # type: ignore[no-untyped-call]  # Powertools' is untyped
            _route_sees_the_request_as_sent,
            OpenAPIResponseValidationMiddleware(validation_serializer=None, has_response_validation_error=False),
        ]
    )
    # Registered by call, not decorator: Powertools' decorator is untyped and would erase these signatures.
    app.exception_handler(DomainError)(_error_response)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(NotFoundError)(_unknown_route)
    app.exception_handler(ClientError)(_dynamodb_refused)
    app.exception_handler(HTTPClientError)(_dynamodb_unreachable)
    app.exception_handler(BotocoreConnectionError)(_dynamodb_unreachable)
    app.exception_handler(Exception)(_unexpected)
    return app


def _admin_group_only(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    caller_from_event(app.current_event.raw_event).require_admin()
    return next_middleware(app)


# ---------- what a route declares (the OpenAPI document is built from these) ----------
class ErrorDetail(BaseModel):
    field: str = Field(examples=["amount"], description="The request field, e.g. `body`, `seatNumber`.")
    message: str = Field(examples=["Input should be greater than or equal to 1"])


class ErrorInfo(BaseModel):
    code: str = Field(examples=["SEAT_UNAVAILABLE"], description="UPPER_SNAKE; the contract (API.md).")
    message: str = Field(examples=["The seat is already held or sold."], description="For humans.")
    details: list[ErrorDetail] = Field(description="The bad fields of a VALIDATION_ERROR; empty otherwise.")


class Error(BaseModel):
    """Every error the API answers (API.md)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "VALIDATION_ERROR",
                        "message": "amount: Input should be greater than or equal to 1",
                        "details": [{"field": "amount", "message": "Input should be greater than or equal to 1"}],
                    }
                }
            ]
        }
    )
    error: ErrorInfo


# The errors that come with what a route takes; a route lists these groups and its own errors in error_responses.
SIGNED_IN = (Unauthenticated, ServiceUnavailable)  # the authorizer's 401; DynamoDB unavailable (_dynamodb_refused)
JSON_BODY = (ValidationFailed, UnsupportedMediaType, PayloadTooLarge)  # json_object_body
QUEUE_TOKEN = (QueueTokenInvalid, QueueTokenExpired)  # a QueueToken header of any status
ACTIVE_QUEUE_TOKEN = (*QUEUE_TOKEN, QueueTokenNotActive)
IDEMPOTENT = (IdempotencyKeyReused,)  # an IdempotencyKey header (a duplicate in flight gets the first answer)

_VALIDATION_EXAMPLE = ValidationFailed.field("body", "is not valid JSON")
_RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
}


def error_responses(*errors: type[DomainError], ok: dict[int, str] | None = None) -> dict[int, OpenAPIResponse]:
    """A route's `responses=`: its success answers (`ok`: status -> description; their schema is the route's return
    type) and the errors it answers, grouped by status in API.md's shape with an example per code. Every route
    also answers 429 THROTTLED (API Gateway's throttling, or DynamoDB's once retries are spent)."""
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": description} for status, description in (ok or {200: "Successful Response"}).items()
    }
    by_status: dict[int, list[type[DomainError]]] = {}
    declared: set[type[DomainError]] = {*errors, Throttled}
    for error in sorted(declared, key=lambda error: error.code):
        by_status.setdefault(error.status, []).append(error)
    for status, group in sorted(by_status.items()):
        examples = {error.code: _example(error) for error in group}
        responses[status] = {
            "description": " ".join(f"`{error.code}`: {error.default_message}" for error in group),
            "content": {"application/json": {"model": Error, "examples": examples}},
        }
        if status in (Throttled.status, ServiceUnavailable.status):
            responses[status]["headers"] = _RETRY_AFTER
    return responses


def _example(error: type[DomainError]) -> dict[str, Any]:
    body = _VALIDATION_EXAMPLE.body() if error is ValidationFailed else error_body(error.code, error.default_message)
    return {"summary": body["error"]["message"], "value": body}


# A path id (concertId, scheduleId, reservationId): a malformed one is a 400 naming the parameter.
PathId = Annotated[str, Path(pattern=ID_PATTERN, examples=["01JD4Y7Z0K3M5Q8R2T6V9W1X3Y"])]
# The caller's queue token on the routes that need one; missing, it is 401 QUEUE_TOKEN_INVALID like an unknown one
# (API.md), never a 400 (_invalid_request). Declare QUEUE_TOKEN or ACTIVE_QUEUE_TOKEN in the route's errors.
QueueToken = Annotated[
    str,
    Header(
        alias=QUEUE_TOKEN_HEADER,
        min_length=1,
        description="Your queue token for this concert (from POST /concerts/{concertId}/queue/tokens). "
        "Bound to one user and one concert.",
        examples=["q1Yk2mZ0c2VyLWFsaWNl"],
    ),
]


# ---------- what a request body is (API.md, "Requests") ----------
MAX_BODY_BYTES = 1024 * 1024
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 9110's token: what a media type's type and subtype are made of
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})\s*(?:;.*)?", re.DOTALL)


def is_json_media_type(content_type: str) -> bool:
    """application/json or application/<x>+json, in any case, with any parameters (RFC 9110 media types)."""
    match = _MEDIA_TYPE.fullmatch(content_type)
    if match is None:
        return False
    kind, subtype = match.group(1).lower(), match.group(2).lower()
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > len("+json")))


def json_object_body(event: dict[str, Any]) -> dict[str, Any]:
    """The request body of a route that takes one, or the 4xx that says why not: a JSON media type (else 415;
    a body without a Content-Type too), at most MAX_BODY_BYTES (else 413), valid UTF-8 JSON whose top level is
    an object and whose objects have each key once (else 400). Routes that take no body never call this."""
    content_types_sent = _header_values(event, "Content-Type")
    raw = _body_bytes(event)
    if not content_types_sent and not raw:
        raise ValidationFailed.field("body", "Field required")
    if len(content_types_sent) != 1 or not is_json_media_type(content_types_sent[0]):
        sent = " and ".join(repr(value) for value in content_types_sent) or "none"
        message = f"must be a JSON media type such as application/json (sent: {sent})"
        raise UnsupportedMediaType(details=[{"field": "Content-Type", "message": message}])
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The body is {len(raw)} bytes; the most is {MAX_BODY_BYTES} (1 MiB).")
    if not raw:
        raise ValidationFailed.field("body", "Field required")
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_object_with_unique_keys, parse_constant=_not_json)
    except _DuplicateKey as error:
        raise ValidationFailed.field("body", f"has the key {error.args[0]!r} more than once in one object") from None
    except RecursionError:
        raise ValidationFailed.field("body", "is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, a number of more than 4,300 digits, NaN
        raise ValidationFailed.field("body", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValidationFailed.field("body", f"must be a JSON object, not {_json_kind(value)}")
    return value


class _DuplicateKey(ValueError):
    pass


def _object_with_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: {"amount": -5, "amount": 100} would be a charge of 100.
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            raise _DuplicateKey(key)
        value[key] = item
    return value


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")  # json.loads would read NaN and Infinity as numbers


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def _header_values(event: dict[str, Any], wanted: str) -> list[str]:
    """Every value of a header as sent (API Gateway's multiValueHeaders; headers keeps only the last)."""
    multi = event.get("multiValueHeaders") or {}
    single = event.get("headers") or {}
    for source in (multi, {name: [value] for name, value in single.items()}):
        values = [value for name, sent in source.items() if name.lower() == wanted.lower() for value in sent or []]
        if values:
            return [str(value) for value in values]
    return []


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed.field("body", "is not valid base64") from None


_REQUEST_AS_SENT = "request_as_sent"  # the event before _read_bodies_by_our_rule, in the resolver's context


def _read_bodies_by_our_rule(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Makes Powertools' request validation read a route's body as json_object_body does. Powertools' own reader
    goes by Content-Type (it parses form and multipart bodies, refuses `APPLICATION/JSON` and
    `application/<x>+json`, and a bad base64 or UTF-8 body is a 500); for `application/json` it calls the
    resolver's `json_body_deserializer`, and only for a route that takes a body. So, while Powertools validates,
    the event says `application/json` with a placeholder body, and the deserializer (create_app's
    body_by_our_rule) answers json_object_body of the request as sent. The route and the caller get the event
    back as sent (a route reads its body from its model: Powertools keeps the placeholder as `decoded_body`)."""
    event = app.current_event.raw_event
    app.context[_REQUEST_AS_SENT] = dict(event)  # Powertools clears the context after each request
    headers = {name: value for name, value in (event.get("headers") or {}).items() if name.lower() != "content-type"}
    event.update(headers=headers | {"Content-Type": "application/json"}, body="{}", isBase64Encoded=False)
    try:
        return next_middleware(app)
    finally:
        _put_back_as_sent(app)


def _route_sees_the_request_as_sent(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    _put_back_as_sent(app)  # validation is done
    return next_middleware(app)


def _put_back_as_sent(app: APIGatewayRestResolver) -> None:
    event = app.current_event.raw_event
    event.clear()
    event.update(app.context[_REQUEST_AS_SENT])


def _invalid_request(error: RequestValidationError) -> Response[Any]:
    errors = error.errors()
    if any(tuple(e.get("loc", ()))[:2] == ("header", QUEUE_TOKEN_HEADER.lower()) for e in errors):
        return _error_response(QueueTokenInvalid())  # no queue token: refused like an unknown one (API.md)
    return _error_response(_validation_failed(errors))


def _unknown_route(_: NotFoundError) -> Response[Any]:
    return _json(404, error_body("NOT_FOUND", "No such route."))


def _dynamodb_refused(error: ClientError) -> Response[Any]:
    code = error_code(error)
    metrics.add_metric(name="DependencyErrors", unit="Count", value=1)
    if code in _THROTTLE_CODES or code in _UNAVAILABLE_CODES or _status(error) >= 500 or _conflicted(error):
        # Retries (botocore "standard" mode) are spent: tell the client when to come back instead of a 500.
        logger.warning("DynamoDB refused the request", extra={"errorCode": code})
        return _error_response(Throttled(retry_after_seconds=1) if code in _THROTTLE_CODES else ServiceUnavailable())
    # AccessDenied, ValidationException, ResourceNotFound...: our bug or our deployment's, and a retry changes
    # nothing. A 500 logged as an error, so the 5XX alarm sees it; never a 503 that clients retry forever.
    logger.error("DynamoDB rejected a request we built", extra={"errorCode": code, "error": str(error)})
    return _json(500, error_body("INTERNAL_ERROR", "Internal error."))


def _conflicted(error: ClientError) -> bool:
    """A transaction cancelled by a concurrent one (after botocore's retries): contention, worth a retry."""
    refused = cancelled(error)
    return refused is not None and refused.conflict


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _dynamodb_unreachable(error: HTTPClientError | BotocoreConnectionError) -> Response[Any]:
    # Read timeouts and refused or dropped connections are botocore's own errors, not ClientErrors: once
    # its retries are spent they are a dependency outage too, so 503 with Retry-After, never a raw 500.
    logger.warning("DynamoDB unreachable", extra={"error": type(error).__name__})
    metrics.add_metric(name="DependencyErrors", unit="Count", value=1)
    return _error_response(ServiceUnavailable())


def _unexpected(_: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return _json(500, error_body("INTERNAL_ERROR", "Internal error."))


def lambda_entry(app: APIGatewayRestResolver) -> Handler:
    """The Lambda handler with correlation ids, tracing and metrics flushed once per call."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        get_settings()  # a function deployed without its settings fails here, loudly, before any request is served
        started = time.perf_counter()
        response = app.resolve(event, context)
        record_latency(event, response, (time.perf_counter() - started) * 1000)
        return response

    return handler


def record_latency(event: dict[str, Any], response: dict[str, Any], milliseconds: float) -> None:
    """`Latency` (ms) per route and status class, as its own EMF blob: the business metrics of the call keep
    their dimensions (service only), and CloudWatch gets p50/p99 per route without API Gateway's detailed metrics."""
    if is_metrics_disabled():
        return
    status = response.get("statusCode")
    dimensions = {
        "service": os.environ.get("POWERTOOLS_SERVICE_NAME", "ticketline"),
        "route": f"{event.get('httpMethod', '?')} {event.get('resource', '?')}",
        "status": f"{str(status)[:1]}xx" if status else "unknown",
    }
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Ticketline")
    with single_metric(name="Latency", unit=MetricUnit.Milliseconds, value=milliseconds, namespace=namespace) as metric:
        for name, value in dimensions.items():
            metric.add_dimension(name=name, value=value)


def _validation_failed(errors: Any) -> ValidationFailed:
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        field = ".".join(location[1:]) if len(location) > 1 else (location[0] if location else "body")
        if location[:1] == ["header"]:  # Powertools lower-cases header names; name them as clients send them
            field = "-".join(word.capitalize() for word in field.split("-"))
        message = str(error.get("msg") or error.get("type") or "is invalid")
        details.append({"field": field, "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "The request is invalid."
    return ValidationFailed(summary, details)


def _error_response(error: DomainError) -> Response[Any]:
    return _json(error.status, error.body(), error.headers())


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)
