"""How a DynamoDB refusal reaches the client (issues 11, 12): unavailability and throttling are worth a retry
(503 / 429 with Retry-After); a request DynamoDB rejects as ours to fix is a 500, logged as an error, never a 503."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ticketline.api import create_app


def refused(code: str, status: int, **extra: Any) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra}, "Op"
    )


def answer(error: ClientError) -> tuple[int, str, dict[str, str]]:
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise error

    event = {"httpMethod": "GET", "path": "/boom", "resource": "/boom", "headers": {}, "requestContext": {}}
    response = app.resolve(event, None)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])["error"]["code"], response["multiValueHeaders"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (refused("ProvisionedThroughputExceededException", 400), 429, "THROTTLED"),
        (refused("InternalServerError", 500), 503, "SERVICE_UNAVAILABLE"),
        (
            refused("TransactionCanceledException", 400, CancellationReasons=[{"Code": "TransactionConflict"}]),
            503,
            "SERVICE_UNAVAILABLE",
        ),
        (refused("AccessDeniedException", 400), 500, "INTERNAL_ERROR"),
        (refused("ValidationException", 400), 500, "INTERNAL_ERROR"),
        (refused("ResourceNotFoundException", 400), 500, "INTERNAL_ERROR"),
    ],
    ids=["throttled", "internal", "conflict", "access-denied", "validation", "no-table"],
)
def test_each_refusal_maps_to_what_a_client_can_do(error: ClientError, status: int, code: str) -> None:
    answered, answered_code, headers = answer(error)

    assert (answered, answered_code) == (status, code)
    assert ("Retry-After" in headers) == (status in (429, 503))
