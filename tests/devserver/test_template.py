from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from devserver import DEFAULT_TEMPLATE
from devserver.template import IMPLICIT_API_ID, TemplateError, create_tables, load_template


def test_ticketline_template_routes_come_from_the_template() -> None:
    template = load_template(DEFAULT_TEMPLATE)

    routes = {(route.method, route.path): route for route in template.routes}

    assert routes[("GET", "/health")].authorizer is None
    issue = routes[("POST", "/concerts/{concertId}/queue/tokens")]
    assert issue.authorizer == "CognitoAuthorizer"
    assert issue.function_id == "IssueTokenFunction"
    assert template.apis[issue.api_id].stage_name == "v1"


def test_ticketline_template_schedules_and_environment() -> None:
    template = load_template(DEFAULT_TEMPLATE, {"ExpiryScheduleRate": "rate(30 seconds)", "LogLevel": "DEBUG"})

    assert template.schedule("Expire").rate_seconds == 30
    assert template.schedule("Expire").input == {"task": "expire"}
    assert template.schedule("Admit").rate_seconds == 300
    environment = template.function(template.schedule("Admit").function_id).environment
    assert environment["TABLE_NAME"] == "TicketlineTable"
    assert environment["LOG_LEVEL"] == "DEBUG"
    assert environment["DYNAMODB_ENDPOINT_URL"] == ""


def test_ticketline_tables_create_on_moto() -> None:
    template = load_template(DEFAULT_TEMPLATE)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, template)
        create_tables(client, template)  # a second run keeps what exists

        assert sorted(client.list_tables()["TableNames"]) == sorted(template.table_names.values())
        for table in template.tables:
            if table.time_to_live is not None:
                description = client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
                assert description["AttributeName"] == table.time_to_live["AttributeName"]


def test_environment_resolution(synthetic_template: Path) -> None:
    template = load_template(synthetic_template, {"Greeting": "hi"})

    echo = template.function("EchoFunction")
    implicit = template.function("ImplicitFunction")
    assert echo.environment["GREETING"] == "overridden-per-function"  # the function's own value wins
    assert implicit.environment["GREETING"] == "hi"
    assert implicit.environment["TABLE"] == "hi-things"  # !Ref table -> its (resolved) name
    assert implicit.environment["SIMPLE"] == "SimpleThings"  # no TableName -> the logical id
    assert implicit.environment["SUBBED"] == "ticketline-local-hi"
    assert implicit.environment["JOINED"] == "hi/5"
    assert implicit.environment["ARN"] == ""  # only a deployed stack knows it
    assert echo.timeout_seconds == 7
    assert echo.memory_mb == 256
    assert echo.handler_file == synthetic_template.parent / "functions" / "echo" / "app.py"


def test_routes_auth_and_apis(synthetic_template: Path) -> None:
    template = load_template(synthetic_template)

    routes = {route.event_name: route for route in template.routes}
    assert routes["Echo"].method == "ANY"
    assert routes["Echo"].authorizer == "Users"
    assert routes["Fixed"].authorizer is None
    assert routes["Open"].api_id == IMPLICIT_API_ID
    assert routes["Open"].method == "POST"
    assert routes["Open"].authorizer is None
    api = template.apis["Api"]
    assert api.stage_name == "dev"
    assert api.cors is not None
    assert api.cors.allow_origin == "https://example.com"  # Globals.Api merged, quotes removed
    assert api.authorize_preflight  # SAM's default


def test_schedules(synthetic_template: Path) -> None:
    template = load_template(synthetic_template, {"TickRate": "rate(1 day)"})

    assert template.schedule("Tick").rate_seconds == 86400
    assert template.schedule("EchoFunction.Tick").input == {"task": "tick"}
    assert template.schedule("Nightly").rate_seconds is None
    assert template.schedule("Nightly").input is None
    assert not template.schedule("Paused").enabled


def test_table_kwargs_create_on_moto(synthetic_template: Path) -> None:
    template = load_template(synthetic_template)
    things = next(table for table in template.tables if table.logical_id == "ThingsTable")

    assert things.create_kwargs["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 2}
    assert things.create_kwargs["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"]["WriteCapacityUnits"] == 5
    assert things.create_kwargs["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert "SSESpecification" not in things.create_kwargs
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, template)
        assert sorted(client.list_tables()["TableNames"]) == ["SimpleThings", "hello-things"]
        ttl = client.describe_time_to_live(TableName="hello-things")["TimeToLiveDescription"]
        assert ttl["AttributeName"] == "expiresAt"


def test_parameter_override_errors(synthetic_template: Path) -> None:
    with pytest.raises(TemplateError, match="Greting"):
        load_template(synthetic_template, {"Greting": "typo"})
    synthetic_template.write_text(
        synthetic_template.read_text().replace(
            "  Greeting:\n    Type: String\n    Default: hello\n", "  Greeting:\n    Type: String\n"
        )
    )
    with pytest.raises(TemplateError, match="Greeting has no Default"):
        load_template(synthetic_template)
    assert load_template(synthetic_template, {"Greeting": "given"}).parameters["Greeting"] == "given"
