"""template.yaml's alarms cover every function, table and the API, and all go to AlarmTopic: a function or table
added later without its alarm fails here (copy a neighbour's block)."""

from __future__ import annotations

import json
from typing import Any

import cfn_tools
import pytest

from tests.conftest import ROOT

TEMPLATE: dict[str, Any] = cfn_tools.load_yaml((ROOT / "template.yaml").read_text())
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def of_type(kind: str) -> list[str]:
    return [name for name, resource in RESOURCES.items() if resource["Type"] == kind]


def watched(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric, dimensions) of every metric an alarm reads, single-metric or metric math."""
    if "MetricName" in alarm:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["Namespace"], alarm["MetricName"], dimensions)]
    found = []
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dimensions))
    return found


def alarmed(namespace: str, metric: str, dimension: str, value: Any) -> bool:
    return any(
        (ns, name) == (namespace, metric) and dims.get(dimension) == value
        for alarm in ALARMS.values()
        for ns, name, dims in watched(alarm)
    )


@pytest.mark.parametrize("function", of_type("AWS::Serverless::Function"))
def test_every_function_has_an_errors_and_throttles_alarm(function: str) -> None:
    for metric in ("Errors", "Throttles"):
        assert alarmed("AWS/Lambda", metric, "FunctionName", {"Ref": function}), f"{function}: no {metric} alarm"


@pytest.mark.parametrize("table", of_type("AWS::DynamoDB::Table"))
def test_every_table_has_throttle_and_system_error_alarms(table: str) -> None:
    for metric in ("ThrottledRequests", "SystemErrors"):
        assert alarmed("AWS/DynamoDB", metric, "TableName", {"Ref": table}), f"{table}: no {metric} alarm"


def test_the_api_has_5xx_and_p99_latency_alarms() -> None:
    api_name = RESOURCES["TicketlineApi"]["Properties"]["Name"]
    assert alarmed("AWS/ApiGateway", "5XXError", "ApiName", api_name)
    latency = [a for a in ALARMS.values() if ("AWS/ApiGateway", "Latency") in [(n, m) for n, m, _ in watched(a)]]
    assert latency and latency[0]["ExtendedStatistic"] == "p99"


def test_every_alarm_notifies_the_topic_and_the_email_is_optional() -> None:
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    assert json.dumps(TEMPLATE["Conditions"]["HasAlarmEmail"]) == json.dumps(
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    )
