import base64
import json
from pathlib import Path

import pytest

from devserver.iam import RolePolicy
from devserver.proxy import HttpRequest, LambdaContext, MalformedProxyResponse, http_response, rest_event
from devserver.template import ApiRoute, FunctionSpec

ROUTE = ApiRoute(
    function_id="ReserveFunction",
    event_name="GetReservation",
    api_id="Api",
    path="/reservations/{reservationId}",
    method="GET",
    authorizer="Cognito",
)


def request(**changes: object) -> HttpRequest:
    values: dict[str, object] = {
        "method": "GET",
        "path": "/reservations/r1",
        "query": "",
        "headers": [("Host", "127.0.0.1:3000"), ("User-Agent", "pytest")],
        "body": b"",
        "source_ip": "127.0.0.1",
        "server_port": 3000,
    }
    return HttpRequest(**(values | changes))  # type: ignore[arg-type]


def test_event_without_query_body_or_claims() -> None:
    event = rest_event(request(), route=ROUTE, stage="v1", path_parameters={"reservationId": "r1"}, claims=None)

    assert event["resource"] == "/reservations/{reservationId}"
    assert event["path"] == "/reservations/r1"
    assert event["httpMethod"] == "GET"
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] == {"reservationId": "r1"}
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["resourcePath"] == "/reservations/{reservationId}"
    assert context["path"] == "/v1/reservations/r1"
    assert context["stage"] == "v1"
    assert context["httpMethod"] == "GET"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "pytest"
    assert isinstance(context["requestTimeEpoch"], int)
    assert len(context["requestId"]) == 36
    assert "authorizer" not in context
    json.dumps(event)  # what Lambda would serialise


def test_event_with_multi_values_claims_and_body() -> None:
    event = rest_event(
        request(
            method="POST",
            query="a=1&a=2&b=&c=x%20y",
            headers=[("Host", "h"), ("X-Tag", "one"), ("X-Tag", "two")],
            body='{"seat": "é"}'.encode(),
        ),
        route=ROUTE,
        stage="v1",
        path_parameters={},
        claims={"sub": "alice"},
    )

    assert event["queryStringParameters"] == {"a": "2", "b": "", "c": "x y"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""], "c": ["x y"]}
    assert event["headers"]["X-Tag"] == "two"
    assert event["multiValueHeaders"]["X-Tag"] == ["one", "two"]
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["pathParameters"] is None
    assert event["body"] == '{"seat": "é"}'
    assert event["requestContext"]["authorizer"] == {"claims": {"sub": "alice"}}


def test_binary_body_is_base64() -> None:
    event = rest_event(request(body=b"\xff\x00"), route=ROUTE, stage="v1", path_parameters={}, claims=None)

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"


def test_http_response_mapping() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Both": "single"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["multi"]},
            "body": '{"ok": true}',
        }
    )

    assert response.status == 201
    assert sorted(response.headers) == [
        ("Content-Type", "application/json"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-Both", "multi"),
    ]
    assert response.body == b'{"ok": true}'
    assert http_response({"statusCode": 204}).body == b""
    encoded = {"statusCode": 200, "body": base64.b64encode(b"\x01\x02").decode(), "isBase64Encoded": True}
    assert http_response(encoded).body == b"\x01\x02"


@pytest.mark.parametrize(
    "result", [None, "text", {"body": "x"}, {"statusCode": "abc"}, {"statusCode": 200, "body": {}}]
)
def test_malformed_results(result: object) -> None:
    with pytest.raises(MalformedProxyResponse):
        http_response(result)


def test_lambda_context() -> None:
    function = FunctionSpec(
        logical_id="PayFunction",
        code_dir=Path("functions/pay"),
        handler="app.lambda_handler",
        environment={},
        memory_mb=512,
        timeout_seconds=10,
        routes=(),
        schedules=(),
        streams=(),
        queue_events=(),
        layer_dirs=(),
        role=RolePolicy("PayFunction", "ticketline-local-PayFunctionRole", ()),
    )
    context = LambdaContext(function)

    assert context.function_name == "PayFunction"
    assert context.memory_limit_in_mb == 512
    assert context.invoked_function_arn.endswith(":function:PayFunction")
    assert 9_000 < context.get_remaining_time_in_millis() <= 10_000
    assert context.aws_request_id != LambdaContext(function).aws_request_id
