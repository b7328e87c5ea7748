"""The Lambda proxy integration of API Gateway REST (v1): HTTP request -> event, result -> HTTP response.

The event carries the fields AWS sends, with the same None-versus-empty rules, so handlers that run
here run unchanged behind the real API.
"""

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, ApiRoute, FunctionSpec

LOCAL_API_ID = "local"


class MalformedProxyResponse(ValueError):
    """The handler's result is not a proxy response (API Gateway answers 502 for that)."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # as on the wire, without the query string
    query: str
    headers: list[tuple[str, str]]  # in arrival order, names as sent
    body: bytes
    source_ip: str
    server_port: int

    def header(self, name: str) -> str | None:
        """The last value of a header, matched case-insensitively."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    body = json.dumps(payload, default=str).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), *(headers or [])], body)


def error_response(status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> HttpResponse:
    """An error in API.md's shape, for the refusals the gateway makes itself (404, 405, 401...)."""
    return json_response(status, {"error": {"code": code, "message": message, "details": details or []}})


def rest_event(
    request: HttpRequest,
    *,
    route: ApiRoute,
    stage: str,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, str] | None,
) -> dict[str, Any]:
    headers = [
        *request.headers,
        ("X-Forwarded-For", request.source_ip),
        ("X-Forwarded-Port", str(request.server_port)),
        ("X-Forwarded-Proto", "http"),
    ]
    multi_value_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_value_headers.setdefault(name, []).append(value)
    multi_value_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(request.query, keep_blank_values=True):
        multi_value_query.setdefault(name, []).append(value)
    now = datetime.now(UTC)
    request_context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": request.header("Host") or "localhost",
        "extendedRequestId": uuid.uuid4().hex,
        "httpMethod": request.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": request.header("User-Agent"),
            "userArn": None,
        },
        # Behind a stage the gateway's own path starts with it; `path` above (what resolvers route on) does not.
        "path": f"/{stage}{request.path}" if stage else request.path,
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": route.event_name,
        "resourcePath": route.path,
        "stage": stage,
    }
    if claims is not None:
        request_context["authorizer"] = {"claims": dict(claims)}
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_value_headers.items()},
        "multiValueHeaders": multi_value_headers,
        "queryStringParameters": {name: values[-1] for name, values in multi_value_query.items()} or None,
        "multiValueQueryStringParameters": multi_value_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": request_context,
        **_event_body(request.body),
    }


def _event_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {"body": None, "isBase64Encoded": False}
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        # What API Gateway does for bytes it cannot pass as text: base64, and say so.
        return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def http_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a handler's proxy result."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int | str):
        raise MalformedProxyResponse(f"not a proxy response: {result!r:.200}")
    try:
        status = int(result["statusCode"])
    except ValueError as error:
        raise MalformedProxyResponse(f"statusCode is not a number: {result['statusCode']!r}") from error
    multi_value_headers: Mapping[str, list[Any]] = result.get("multiValueHeaders") or {}
    # As on AWS: multiValueHeaders win for a name given in both.
    headers = [(name, str(value)) for name, values in multi_value_headers.items() for value in values]
    headers += [
        (name, str(value)) for name, value in (result.get("headers") or {}).items() if name not in multi_value_headers
    ]
    body = "" if result.get("body") is None else result["body"]
    if not isinstance(body, str):
        raise MalformedProxyResponse(f"body is not a string: {type(body).__name__}")
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return HttpResponse(status, headers, payload)


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, function: FunctionSpec) -> None:
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{function.logical_id}"
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = f"local/{self.aws_request_id}"
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
