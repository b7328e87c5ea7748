"""One way to build a function's HTTP entry: a validating Powertools resolver whose every error is API.md's shape."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from ticketline.config import get_settings
from ticketline.errors import DomainError, ServiceUnavailable, Throttled, ValidationFailed, error_body
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


def create_app() -> APIGatewayRestResolver:
    # Every answer, errors included, names the origin the template's AllowedOrigins parameter allows (API.md):
    # with "*" Powertools echoes the caller's Origin, which browsers treat the same.
    cors = CORSConfig(
        allow_origin=os.environ.get("ALLOWED_ORIGINS") or "*",
        allow_headers=CORS_HEADERS,
        expose_headers=["Retry-After"],
    )
    app = APIGatewayRestResolver(enable_validation=True, cors=cors)
    # Registered by call, not decorator: Powertools' decorator is untyped and would erase these signatures.
    app.exception_handler(DomainError)(_error_response)
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.exception_handler(NotFoundError)(_unknown_route)
    app.exception_handler(ClientError)(_dynamodb_refused)
    app.exception_handler(HTTPClientError)(_dynamodb_unreachable)
    app.exception_handler(BotocoreConnectionError)(_dynamodb_unreachable)
    app.exception_handler(Exception)(_unexpected)

    def unparsable_body_or_bug(error: ValueError | RecursionError) -> Response[Any]:
        return _unparsable_body(error) if not _body_parses(app) else _unexpected(error)

    # Powertools turns only json.JSONDecodeError into a validation error; a body that is not UTF-8
    # (UnicodeDecodeError), holds a number of more than 4,300 digits (ValueError) or nests thousands deep
    # (RecursionError) escaped as a 500. The client sent it: 400. Raised by anything else, still a 500.
    app.exception_handler(ValueError)(unparsable_body_or_bug)
    app.exception_handler(RecursionError)(unparsable_body_or_bug)
    return app


def _body_parses(app: APIGatewayRestResolver) -> bool:
    try:
        app.current_event.json_body  # noqa: B018 - parsing is the point
    except (ValueError, RecursionError):
        return False
    return True


def _unparsable_body(error: ValueError | RecursionError) -> Response[Any]:
    reason = "is nested too deeply" if isinstance(error, RecursionError) else "is not valid JSON"
    return _error_response(ValidationFailed.field("body", reason))


def _invalid_request(error: RequestValidationError) -> Response[Any]:
    return _error_response(_validation_failed(error.errors()))


def _unknown_route(_: NotFoundError) -> Response[Any]:
    return _json(404, error_body("NOT_FOUND", "No such route."))


def _dynamodb_refused(error: ClientError) -> Response[Any]:
    code = error.response.get("Error", {}).get("Code", "")
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
    reasons = error.response.get("CancellationReasons") or []
    return any(reason.get("Code") == "TransactionConflict" for reason in reasons)


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
        if error.get("type") == "json_invalid":
            field, message = "body", "is not valid JSON"
        else:
            message = str(error.get("msg") or error.get("type") or "is invalid")
        details.append({"field": field, "message": message})
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "The request is invalid."
    return ValidationFailed(summary, details)


def _error_response(error: DomainError) -> Response[Any]:
    return _json(error.status, error.body(), error.headers())


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)
