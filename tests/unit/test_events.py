"""events/ holds one sample event per route, schedule and stream of template.yaml, and each runs through its
handler (on moto) without a 5xx. Routes are discovered from the template: a new route without an event fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devserver import iam
from devserver.event_filter import matches
from devserver.lambda_host import load_module
from devserver.proxy import LambdaContext
from devserver.template import ApiRoute, FunctionSpec, ScheduleEvent, StreamEvent, load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
EVENTS = {path.name: json.loads(path.read_text()) for path in sorted((ROOT / "events").glob("*.json"))}


def api_event_for(route: ApiRoute) -> tuple[str, dict[str, Any]] | None:
    for name, event in EVENTS.items():
        if event.get("resource") == route.path and event.get("httpMethod") == route.method:
            return name, event
    return None


def schedule_event_for(schedule: ScheduleEvent) -> tuple[str, dict[str, Any]] | None:
    for name, event in EVENTS.items():
        if schedule.input is not None and event == schedule.input:
            return name, event
    return None


def stream_event_for(stream: StreamEvent) -> tuple[str, dict[str, Any]] | None:
    """A batch of stream records every one of which the stream's FilterCriteria lets through."""
    for name, event in EVENTS.items():
        records = event.get("Records") or []
        if records and all(
            record.get("eventSource") == "aws:dynamodb"
            and (not stream.filters or any(matches(pattern, record) for pattern in stream.filters))
            for record in records
        ):
            return name, event
    return None


def function_of(logical_id: str) -> FunctionSpec:
    return TEMPLATE.function(logical_id)


@pytest.mark.parametrize("route", TEMPLATE.routes, ids=lambda r: f"{r.method} {r.path}")
def test_every_route_has_a_sample_event(route: ApiRoute) -> None:
    found = api_event_for(route)
    assert found is not None, (
        f"no event in events/ for {route.method} {route.path}: copy one of the same kind, set resource, path, "
        "httpMethod, pathParameters, requestContext.resourcePath/httpMethod/path and a valid body"
    )
    name, event = found
    assert event["requestContext"]["resourcePath"] == route.path, name
    assert event["requestContext"]["httpMethod"] == route.method, name
    path_parameters = event.get("pathParameters") or {}
    assert route.path.format(**path_parameters) == event["path"], f"{name}: path and pathParameters disagree"
    if route.authorizer:
        assert event["requestContext"]["authorizer"]["claims"]["sub"], f"{name}: a user route needs claims"


@pytest.mark.parametrize("schedule", TEMPLATE.schedules, ids=lambda s: s.qualified_name)
def test_every_schedule_has_a_sample_event(schedule: ScheduleEvent) -> None:
    assert schedule_event_for(schedule) is not None, f"no event in events/ equal to {schedule.name}'s Input"


@pytest.mark.parametrize("stream", TEMPLATE.streams, ids=lambda s: s.qualified_name)
def test_every_stream_has_a_sample_event_its_filters_let_through(stream: StreamEvent) -> None:
    assert stream_event_for(stream) is not None, f"no event in events/ whose records pass {stream.name}'s filters"


def test_every_event_belongs_to_a_route_a_schedule_or_a_stream() -> None:
    used = {found[0] for route in TEMPLATE.routes if (found := api_event_for(route))}
    used |= {found[0] for schedule in TEMPLATE.schedules if (found := schedule_event_for(schedule))}
    used |= {found[0] for stream in TEMPLATE.streams if (found := stream_event_for(stream))}
    assert set(EVENTS) - used == set(), "events that match no route, schedule or stream of template.yaml"


def _handler(function: FunctionSpec) -> Any:
    # Fresh module per test: its clients are made inside this test's moto.
    module = load_module(f"test_events_{function.logical_id}", function.handler_file)
    handler = getattr(module, function.handler_attribute)

    def under_its_role(event: Any, context: Any) -> Any:
        with iam.enforcer().acting_as(function.role):
            return handler(event, context)

    return under_its_role


@pytest.fixture
def seeded(aws: None) -> None:
    """The ids the sample events use (demo-concert, ...) exist where a repository can set them up simply."""
    from ticketline.repositories.queue import QueueRepository

    QueueRepository().create_queue("demo-concert", capacity=1, shards=1, now=0)


@pytest.mark.parametrize("route", TEMPLATE.routes, ids=lambda r: f"{r.method} {r.path}")
def test_each_route_event_runs_through_its_handler_without_a_5xx(route: ApiRoute, seeded: None) -> None:
    found = api_event_for(route)
    if found is None:
        pytest.fail(f"no event for {route.method} {route.path}")
    name, event = found
    response = _handler(function_of(route.function_id))(
        json.loads(json.dumps(event)), LambdaContext(function_of(route.function_id))
    )
    assert isinstance(response, dict) and isinstance(response.get("statusCode"), int), name
    assert response["statusCode"] < 500, f"{name}: {response['statusCode']} {response.get('body')}"
    body = json.loads(response["body"]) if response.get("body") else None
    if response["statusCode"] >= 400:
        assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), name


@pytest.mark.parametrize("schedule", TEMPLATE.schedules, ids=lambda s: s.qualified_name)
def test_each_schedule_event_runs_through_its_handler(schedule: ScheduleEvent, seeded: None) -> None:
    found = schedule_event_for(schedule)
    assert found is not None
    result = _handler(function_of(schedule.function_id))(
        dict(found[1]), LambdaContext(function_of(schedule.function_id))
    )
    assert isinstance(result, dict)


@pytest.mark.parametrize("stream", TEMPLATE.streams, ids=lambda s: s.qualified_name)
def test_each_stream_event_runs_through_its_handler(stream: StreamEvent, seeded: None) -> None:
    found = stream_event_for(stream)
    assert found is not None
    result = _handler(function_of(stream.function_id))(
        json.loads(json.dumps(found[1])), LambdaContext(function_of(stream.function_id))
    )
    assert result == {"batchItemFailures": []}  # the sample's date is not in the seeded table: nothing to recount


def test_events_are_documented() -> None:
    assert Path(ROOT / "events" / "README.md").read_text().count("sam local invoke") >= 1
