"""The gateway in-process, on the synthetic template whose echo handler returns the event it got."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

from devserver.auth import mint_token
from devserver.gateway import Gateway
from devserver.lambda_host import LambdaHost
from devserver.proxy import HttpRequest, HttpResponse
from devserver.schedules import ScheduleRunner
from devserver.template import load_template

ENDPOINT = "http://127.0.0.1:1"


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = LambdaHost.invoke

    def spy(self: LambdaHost, function: Any, event: Any) -> Any:
        calls.append(function.logical_id)
        return original(self, function, event)

    monkeypatch.setattr(LambdaHost, "invoke", spy)
    return calls


@pytest.fixture
def gateway(synthetic_template: Path, tmp_path: Path) -> Gateway:
    template = load_template(synthetic_template)
    host = LambdaHost(ENDPOINT)
    return Gateway(template, host, ScheduleRunner(template, host, tmp_path), ENDPOINT)


def call(gateway: Gateway, method: str, path: str, token: str | None = None, body: bytes = b"") -> HttpResponse:
    headers = [("Host", "localhost")] + ([("Authorization", f"Bearer {token}")] if token else [])
    path, _, query = path.partition("?")
    return gateway.handle(HttpRequest(method, path, query, headers, body, "127.0.0.1", 3000))


def error_code(response: HttpResponse) -> str:
    return str(json.loads(response.body)["error"]["code"])


def test_authorized_route_refuses_without_calling_the_handler(gateway: Gateway, invocations: list[str]) -> None:
    for token in (None, "garbage", mint_token("alice", ttl_seconds=-5)):
        response = call(gateway, "GET", "/echo/bob", token)
        assert response.status == 401
        assert error_code(response) == "UNAUTHENTICATED"
    assert invocations == []


def test_authorized_route_passes_claims_and_the_function_environment(gateway: Gateway) -> None:
    response = call(gateway, "PATCH", "/echo/bob?x=1", mint_token("alice", admin=True), body=b'{"a": 1}')

    assert response.status == 200
    assert ("X-Multi", "a") in response.headers
    assert ("X-Multi", "b") in response.headers
    assert ("X-Single", "one") in response.headers
    payload = json.loads(response.body)
    event = payload["event"]
    assert event["resource"] == "/echo/{name}"
    assert event["httpMethod"] == "PATCH"
    assert event["pathParameters"] == {"name": "bob"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["body"] == '{"a": 1}'
    assert event["requestContext"]["stage"] == "dev"
    claims = event["requestContext"]["authorizer"]["claims"]
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == "admin"
    assert all(isinstance(value, str) for value in claims.values())
    assert payload["greeting"] == "overridden-per-function"
    assert payload["function"] == "EchoFunction"
    assert "GREETING" not in os.environ  # the function's environment applies during its invocation only


def test_public_routes_and_per_function_environment(gateway: Gateway) -> None:
    fixed = call(gateway, "GET", "/echo/fixed")
    implicit = call(gateway, "POST", "/open")

    assert fixed.status == 200
    assert "authorizer" not in json.loads(fixed.body)["event"]["requestContext"]
    assert implicit.status == 200
    assert json.loads(implicit.body)["greeting"] == "hello"
    assert json.loads(implicit.body)["event"]["requestContext"]["stage"] == "Prod"


def test_unknown_paths_and_methods_are_not_found_as_on_api_gateway(gateway: Gateway) -> None:
    missing = call(gateway, "GET", "/nowhere")
    wrong_method = call(gateway, "DELETE", "/open")

    assert (missing.status, error_code(missing)) == (404, "NOT_FOUND")
    assert (wrong_method.status, error_code(wrong_method)) == (404, "NOT_FOUND")  # API Gateway: Missing Auth. Token


def test_handler_failures_are_502(gateway: Gateway) -> None:
    token = mint_token("alice")
    for path in ("/echo/crash", "/echo/malformed"):
        response = call(gateway, "GET", path, token)
        assert (response.status, error_code(response)) == (502, "INTERNAL_ERROR")
        assert b"boom" not in response.body  # the traceback goes to the log only


def test_cors_preflight(gateway: Gateway, invocations: list[str]) -> None:
    # SAM's default AddDefaultAuthorizerToCorsPreflight: the preflight needs the token too.
    # The path's method is ANY: SAM's OPTIONS method still answers the preflight, not the function.
    assert call(gateway, "OPTIONS", "/echo/bob").status == 401
    response = call(gateway, "OPTIONS", "/echo/bob", mint_token("alice"))

    assert response.status == 200
    headers = dict(response.headers)
    assert headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert headers["Access-Control-Allow-Methods"] == "ANY,OPTIONS"
    assert invocations == []


def test_local_info(gateway: Gateway) -> None:
    response = call(gateway, "GET", "/_local/info")

    assert json.loads(response.body) == {
        "dynamodbEndpoint": ENDPOINT,
        "tables": {"ThingsTable": "hello-things", "SimpleThings": "SimpleThings"},
        "parameters": {"Greeting": "hello", "Capacity": "5", "TickRate": "rate(2 hours)"},
    }
    assert call(gateway, "POST", "/_local/info").status == 405
    assert call(gateway, "GET", "/_local/other").status == 404


def test_local_schedule_runs(gateway: Gateway) -> None:
    tick = call(gateway, "POST", "/_local/schedules/Tick")
    nightly = call(gateway, "POST", "/_local/schedules/EchoFunction.Nightly")

    assert json.loads(tick.body) == {"scheduled": {"task": "tick"}, "greeting": "overridden-per-function"}
    envelope = json.loads(nightly.body)["scheduled"]
    assert envelope["detail-type"] == "Scheduled Event"
    assert envelope["source"] == "aws.events"
    assert call(gateway, "POST", "/_local/schedules/Nope").status == 404
    assert call(gateway, "GET", "/_local/schedules/Tick").status == 405


def test_a_token_whose_exp_no_datetime_holds_is_401_not_a_dropped_connection(
    gateway: Gateway, invocations: list[str]
) -> None:
    import jwt

    token = jwt.encode({"sub": "alice", "exp": 10**20}, "local-dev-secret", algorithm="HS256")
    response = call(gateway, "GET", "/echo/bob", token)
    assert (response.status, error_code(response)) == (401, "UNAUTHENTICATED")
    assert invocations == []
