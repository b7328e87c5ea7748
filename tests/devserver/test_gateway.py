"""The gateway in-process, on the synthetic template whose echo handler returns the event it got."""

import json
import os
import time
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


def test_a_function_sees_none_of_the_variables_only_other_functions_have(
    synthetic_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECHO_ONLY", "leaked from the server's own environment")
    template = load_template(synthetic_template)
    host = LambdaHost(ENDPOINT, template.environment_names)
    gateway = Gateway(template, host, ScheduleRunner(template, host, tmp_path), ENDPOINT)

    assert json.loads(call(gateway, "GET", "/echo/fixed").body)["echoOnly"] == "yes"
    assert json.loads(call(gateway, "POST", "/open").body)["echoOnly"] is None
    assert os.environ["ECHO_ONLY"] == "leaked from the server's own environment"  # restored after the call


def test_unknown_paths_and_methods_are_not_found_as_on_api_gateway(gateway: Gateway) -> None:
    missing = call(gateway, "GET", "/nowhere")
    wrong_method = call(gateway, "DELETE", "/echo/fixed")
    unconfigured = call(gateway, "DELETE", "/open")  # the implicit API has no GatewayResponses

    assert (missing.status, error_code(missing)) == (404, "NOT_FOUND")
    assert (wrong_method.status, error_code(wrong_method)) == (404, "NOT_FOUND")  # API Gateway: Missing Auth. Token
    assert (unconfigured.status, json.loads(unconfigured.body)) == (403, {"message": "Missing Authentication Token"})


def test_handler_failures_and_results_past_lambdas_6_mb_are_502_from_default_5xx(gateway: Gateway) -> None:
    token = mint_token("alice")
    for path in ("/echo/crash", "/echo/malformed", "/echo/huge"):
        response = call(gateway, "GET", path, token)
        assert (response.status, error_code(response)) == (502, "FAILED")  # DEFAULT_5XX, as configured
        assert json.loads(response.body)["error"]["message"] == "Internal server error"
        assert ("Access-Control-Allow-Origin", "https://example.com") in response.headers
        assert b"boom" not in response.body  # the traceback goes to the log only


def test_refusals_are_the_templates_gateway_responses(gateway: Gateway) -> None:
    refused = call(gateway, "GET", "/echo/bob")

    assert refused.status == 401
    assert json.loads(refused.body) == {"error": {"code": "UNAUTHENTICATED", "message": "Sign in.", "details": []}}
    assert ("Access-Control-Allow-Origin", "https://example.com") in refused.headers


def test_an_unconfigured_response_type_is_api_gateways_own(synthetic_template: Path, tmp_path: Path) -> None:
    """No REQUEST_TOO_LARGE and no DEFAULT_4XX: API Gateway's built-in body, with the type's status."""
    template = load_template(synthetic_template)
    host = LambdaHost(ENDPOINT)
    too_large = Gateway(template, host, ScheduleRunner(template, host, tmp_path), ENDPOINT).body_too_large()

    assert (too_large.status, json.loads(too_large.body)) == (413, {"message": "Request Too Long"})


def test_an_event_past_lambdas_6_mb_never_reaches_the_handler(gateway: Gateway, invocations: list[str]) -> None:
    response = call(gateway, "POST", "/echo/bob", mint_token("alice"), body=b"x" * (6 * 1024 * 1024))

    assert response.status == 413
    assert invocations == []


def test_integration_timeout_is_504_while_the_handler_runs_on(gateway: Gateway) -> None:
    started = time.monotonic()
    response = call(gateway, "GET", "/slow?seconds=1")

    assert time.monotonic() - started < 0.9  # the event's TimeoutInMillis: 300
    assert response.status == 504  # INTEGRATION_TIMEOUT, not configured here: API Gateway's own
    assert json.loads(response.body) == {"message": "Endpoint request timed out"}
    time.sleep(1)  # this process runs one invocation at a time, as one Lambda container does
    assert call(gateway, "GET", "/slow?seconds=0").status == 200


def test_each_method_has_its_own_token_bucket(synthetic_template: Path, tmp_path: Path) -> None:
    """Stage default burst 3 per method, /echo/fixed's own burst 1, refilled at StageRate per second."""
    template = load_template(synthetic_template, {"StageRate": "1"})
    host = LambdaHost(ENDPOINT)
    gateway = Gateway(template, host, ScheduleRunner(template, host, tmp_path), ENDPOINT)

    token = mint_token("alice")
    fixed = [call(gateway, "GET", "/echo/fixed").status for _ in range(2)]
    echoed = [call(gateway, "GET", "/echo/bob", token).status for _ in range(4)]

    assert fixed == [200, 429]
    assert echoed == [200, 200, 200, 429]  # another method: its own bucket, untouched by /echo/fixed
    assert [call(gateway, "POST", "/open").status for _ in range(5)] == [200] * 5  # the implicit API: unthrottled
    throttled = call(gateway, "GET", "/echo/bob", token)
    assert throttled.status == 429
    assert ("Retry-After", "1") in throttled.headers
    assert json.loads(throttled.body)["error"]["code"] == "THROTTLED"
    time.sleep(1.1)  # one token back at 1 per second
    assert call(gateway, "GET", "/echo/bob", token).status == 200


def test_cors_preflight(gateway: Gateway, invocations: list[str]) -> None:
    # SAM's default AddDefaultAuthorizerToCorsPreflight: the preflight needs the token too.
    # The path's method is ANY: SAM's OPTIONS method still answers the preflight, not the function.
    assert call(gateway, "OPTIONS", "/echo/bob").status == 401
    response = call(gateway, "OPTIONS", "/echo/bob", mint_token("alice"))

    assert response.status == 200
    headers = dict(response.headers)
    assert headers["Access-Control-Allow-Origin"] == "https://example.com"
    assert headers["Access-Control-Allow-Methods"] == "DELETE,GET,HEAD,OPTIONS,PATCH,POST,PUT"  # SAM's ANY
    assert response.body == b"{}\n"  # SAM's mock integration template
    assert invocations == []


def test_local_info(gateway: Gateway) -> None:
    response = call(gateway, "GET", "/_local/info")

    assert json.loads(response.body) == {
        "dynamodbEndpoint": ENDPOINT,
        "tables": {"ThingsTable": "hello-things", "SimpleThings": "SimpleThings"},
        "sqsEndpoint": "",  # the synthetic template has no queue
        "queues": {},
        "parameters": {"Greeting": "hello", "Capacity": "5", "TickRate": "rate(2 hours)", "StageRate": "1000"},
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
