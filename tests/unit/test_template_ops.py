"""template.yaml's operations side (issue 11): per-method throttling that keeps polls and joins below the stage
default, access and function logs with retention, the optional WAF, the gradual rollout and each function's own
variables."""

from __future__ import annotations

from typing import Any

import cfn_tools
import pytest
import yaml

from devserver import DEFAULT_TEMPLATE
from devserver.template import ANY_METHOD, ANY_RESOURCE, load_template
from tests.conftest import ROOT

TEMPLATE: dict[str, Any] = cfn_tools.load_yaml((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
FUNCTIONS = sorted(name for name, resource in RESOURCES.items() if resource["Type"] == "AWS::Serverless::Function")
POLL = ("/concerts/{concertId}/queue/position", "GET")
JOIN = ("/concerts/{concertId}/queue/tokens", "POST")


def test_polls_and_joins_are_throttled_below_every_other_method() -> None:
    api = load_template(DEFAULT_TEMPLATE).apis["TicketlineApi"]
    default = api.throttles[(ANY_RESOURCE, ANY_METHOD)]
    routes = {(route.path, route.method) for route in load_template(DEFAULT_TEMPLATE).routes}

    assert {POLL, JOIN} <= routes  # the settings name real routes (a typo would throttle nothing)
    for path, method in (POLL, JOIN):
        limit = api.throttle_for(path, method)
        assert limit is not None and limit.rate_per_second < default.rate_per_second and limit.burst < default.burst
    for path, method in routes - {POLL, JOIN}:
        assert api.throttle_for(path, method) == default


def test_the_throttling_parameters_reach_the_local_gateway() -> None:
    overrides = {"QueuePollRateLimit": "2", "QueuePollBurstLimit": "3", "ApiThrottlingRateLimit": "7"}
    api = load_template(DEFAULT_TEMPLATE, overrides).apis["TicketlineApi"]

    limit = api.throttle_for(*POLL)
    assert limit is not None and (limit.rate_per_second, limit.burst) == (2.0, 3)
    hold = api.throttle_for("/reservations", "POST")
    assert hold is not None and hold.rate_per_second == 7.0


def test_access_logs_are_json_to_a_group_with_retention() -> None:
    api = RESOURCES["TicketlineApi"]["Properties"]
    access = api["AccessLogSetting"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = yaml.safe_load(access["Format"])  # one JSON object per line
    assert {"requestId", "status", "resourcePath", "httpMethod", "responseLatency", "errorType"} <= set(fields)
    assert "Authorization" not in access["Format"] and "body" not in access["Format"]
    assert RESOURCES["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert RESOURCES["TicketlineApi"]["DependsOn"] == "ApiGatewayAccount"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_its_own_group_with_retention(function: str) -> None:
    group = RESOURCES[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    properties = RESOURCES[group]["Properties"]
    assert properties["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert function in properties["LogGroupName"]["Fn::Sub"]


def test_the_waf_is_optional_rate_limits_per_ip_and_answers_in_the_error_shape() -> None:
    acl = RESOURCES["WebAcl"]
    assert acl["Condition"] == RESOURCES["WebAclAssociation"]["Condition"] == "WafEnabled"
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"] if "Name" in rule}
    rate = rules["RatePerIp"]
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimitPerIp"}
    response = rate["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    assert {header["Name"] for header in response["ResponseHeaders"]} >= {"Retry-After", "Access-Control-Allow-Origin"}
    bot_control = next(rule for rule in acl["Properties"]["Rules"] if "Fn::If" in rule)["Fn::If"]
    assert bot_control[0] == "WafBotControlEnabled"
    assert bot_control[1]["Statement"]["ManagedRuleGroupStatement"]["Name"] == "AWSManagedRulesBotControlRuleSet"
    assert "TicketlineApi.Stage" in RESOURCES["WebAclAssociation"]["Properties"]["ResourceArn"]["Fn::Sub"]
    assert PARAMETERS["EnableWaf"]["Default"] == "false"


def test_every_function_rolls_out_gradually_and_rolls_back_on_the_api_alarms() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["AutoPublishAlias"]
    preference = function_globals["DeploymentPreference"]
    assert preference["Type"] == {"Ref": "DeploymentType"}
    assert {alarm["Ref"] for alarm in preference["Alarms"]} == {"Api5xxAlarm", "ApiLatencyP99Alarm"}
    assert "AllAtOnce" in PARAMETERS["DeploymentType"]["AllowedValues"]
    assert PARAMETERS["DeploymentType"]["Default"] != "AllAtOnce"


def test_holds_and_payments_may_reserve_concurrency_and_nothing_is_reserved_by_default() -> None:
    assert PARAMETERS["PaymentReservedConcurrency"]["Default"] == 0
    for function in ("ReserveFunction", "PayFunction"):
        reserved = RESOURCES[function]["Properties"]["ReservedConcurrentExecutions"]["Fn::If"]
        assert reserved[0] == "HasPaymentReservedConcurrency"


# What each function's code paths read (ticketline/config.py's settings; ALLOWED_ORIGINS: the API's resolvers).
# lambda_entry validates the settings of every API function, and config.py requires both table names.
DYNAMODB = {"TABLE_NAME", "DYNAMODB_ENDPOINT_URL"}
OWN_VARIABLES = {
    "IssueTokenFunction": DYNAMODB
    | {"ACTIVE_TOKEN_TTL_SECONDS", "QUEUE_STATE_CACHE_SECONDS", "PRE_QUEUE_MINUTES", "ALLOWED_ORIGINS"},
    "QueuePositionFunction": DYNAMODB
    | {"ACTIVE_TOKEN_TTL_SECONDS", "QUEUE_STATE_CACHE_SECONDS", "ADMISSION_SCHEDULE_RATE", "ALLOWED_ORIGINS"},
    "AdminFunction": DYNAMODB
    | {
        "DEFAULT_QUEUE_CAPACITY",
        "QUEUE_COUNTER_SHARDS",
        "ALLOWED_ORIGINS",
        "ACTIVE_TOKEN_TTL_SECONDS",
        "ADMISSION_SCHEDULE_RATE",
        "PUBLISH_SEATS_QUEUE_URL",
    },
    "SeatsFunction": DYNAMODB | {"ALLOWED_ORIGINS"},
    "ReserveFunction": DYNAMODB
    | {"SEAT_HOLD_TTL_SECONDS", "MAX_HOLDS_PER_SCHEDULE", "MAX_TICKETS_PER_USER", "ALLOWED_ORIGINS"},
    "WalletFunction": DYNAMODB | {"ALLOWED_ORIGINS"},
    "PayFunction": DYNAMODB | {"MAX_TICKETS_PER_USER", "CANCELLATION_CUTOFF_HOURS", "ALLOWED_ORIGINS"},
    "SchedulerFunction": DYNAMODB | {"ACTIVE_TOKEN_TTL_SECONDS"},
    "SeatAvailabilityFunction": DYNAMODB,
    "PublishSeatsFunction": DYNAMODB,
    "HealthFunction": {"TABLE_NAME", "ALLOWED_ORIGINS"},
}


def test_globals_carry_only_what_every_function_reads() -> None:
    assert set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]) == {
        "LOG_LEVEL",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_gets_only_its_own_variables(function: str) -> None:
    own = set(RESOURCES[function]["Properties"]["Environment"]["Variables"])
    assert own == OWN_VARIABLES[function], "a new variable goes to the functions that read it (CONTRIBUTING.md)"
