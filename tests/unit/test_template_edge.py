"""template.yaml's browser edge (issue 11): CORS from the AllowedOrigins parameter on every answer, API Gateway's
own refusals included, in the error shape; the local gateway adds the same headers to its refusals."""

from __future__ import annotations

import json
from typing import Any

import cfn_tools
import pytest

from tests.conftest import ROOT

TEMPLATE: dict[str, Any] = cfn_tools.load_yaml((ROOT / "template.yaml").read_text())
API = TEMPLATE["Resources"]["TicketlineApi"]["Properties"]
ORIGIN = "'${AllowedOrigins}'"


def test_preflight_allows_every_method_and_header_from_the_parameter() -> None:
    cors = API["Cors"]
    assert "'${AllowedOrigins}'" in str(cors["AllowOrigin"])
    assert set(cors["AllowMethods"].strip("'").split(",")) >= {"GET", "POST", "PATCH", "DELETE", "OPTIONS"}
    assert set(cors["AllowHeaders"].strip("'").split(",")) == {
        "Authorization",
        "Content-Type",
        "X-Queue-Token",
        "Idempotency-Key",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "THROTTLED",
        "INTEGRATION_TIMEOUT",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    ],
)
def test_every_gateway_response_is_readable_cross_origin_and_in_the_error_shape(kind: str) -> None:
    response = API["GatewayResponses"][kind]
    headers = response["ResponseParameters"]["Headers"]
    assert ORIGIN in str(headers["Access-Control-Allow-Origin"])
    assert headers["Access-Control-Expose-Headers"] == "'Retry-After'"
    body = response["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"m"')
    error = json.loads(body)["error"]
    assert error["code"] and error["message"] and error["details"] == []


def test_unknown_routes_are_not_found_in_our_shape() -> None:
    missing = API["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    assert json.loads(missing["ResponseTemplates"]["application/json"])["error"]["code"] == "NOT_FOUND"


def test_api_functions_know_the_allowed_origin() -> None:
    api_functions = [
        resource["Properties"]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(event["Type"] == "Api" for event in (resource["Properties"].get("Events") or {}).values())
    ]
    assert api_functions
    for function in api_functions:
        assert function["Environment"]["Variables"]["ALLOWED_ORIGINS"] == {"Ref": "AllowedOrigins"}


def test_api_gateways_limits_answer_in_our_shape() -> None:
    responses = API["GatewayResponses"]
    assert responses["INTEGRATION_TIMEOUT"]["StatusCode"] == "504"
    assert responses["REQUEST_TOO_LARGE"]["StatusCode"] == "413"
    too_large = json.loads(responses["REQUEST_TOO_LARGE"]["ResponseTemplates"]["application/json"])
    assert too_large["error"]["code"] == "PAYLOAD_TOO_LARGE"  # API.md's code for a body too large
