"""The queue endpoints through their Lambda handlers, with the sample events of events/."""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_event
from ticketline.repositories.queue import QueueRepository


@pytest.fixture
def concert(aws: None, clock: object) -> str:
    QueueRepository().create_queue("demo-concert", capacity=1, shards=1, now=0)
    return "demo-concert"


def issue(invoke, user: str = "alice", concert_id: str = "demo-concert") -> dict:
    event = load_event(
        "issue_token.json", pathParameters={"concertId": concert_id}, path=f"/concerts/{concert_id}/queue/tokens"
    )
    event["requestContext"]["authorizer"]["claims"]["sub"] = user
    return invoke("issue_token", event)


def poll(invoke, user: str, token: str | None) -> dict:
    event = load_event("queue_position.json")
    event["requestContext"]["authorizer"]["claims"]["sub"] = user
    # As API Gateway sends headers: in both maps (Powertools validates the declared header from multiValueHeaders).
    event["headers"] = {"X-Queue-Token": token} if token is not None else {}
    event["multiValueHeaders"] = {"X-Queue-Token": [token]} if token is not None else {}
    return invoke("queue_position", event)


def error_code(response: dict) -> str:
    return json.loads(response["body"])["error"]["code"]


def test_issue_then_poll_then_repeat(invoke, concert):
    first = issue(invoke)
    assert first["statusCode"] == 201
    body = json.loads(first["body"])
    assert body["status"] == "ACTIVE" and body["concertId"] == concert
    assert issue(invoke)["statusCode"] == 200
    waiting = json.loads(issue(invoke, "bob")["body"])
    assert waiting["status"] == "WAIT" and waiting["position"] == 1 and waiting["activeUntil"] is None
    position = poll(invoke, "bob", waiting["token"])
    assert position["statusCode"] == 200
    # No admission run recorded yet: nothing to estimate from, and the runs' phase is unknown (queue_timing).
    assert json.loads(position["body"]) == {
        "status": "WAIT",
        "position": 1,
        "activeUntil": None,
        "retryAfterSeconds": 2,
        "estimatedWaitSeconds": None,
    }


@pytest.mark.parametrize("concert_id", ["has space", "x" * 65, "semi;colon", "ünïcode"])
def test_a_malformed_concert_id_is_400_with_the_field(invoke, concert, concert_id):
    response = issue(invoke, concert_id=concert_id)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["details"][0]["field"] == "concertId"


def test_an_unknown_concert_is_404(invoke, concert):
    response = issue(invoke, concert_id="no-such-concert")
    assert response["statusCode"] == 404 and error_code(response) == "NOT_FOUND"


def test_without_claims_it_is_401(invoke, concert):
    event = load_event("issue_token.json")
    del event["requestContext"]["authorizer"]
    response = invoke("issue_token", event)
    assert response["statusCode"] == 401 and error_code(response) == "UNAUTHENTICATED"


@pytest.mark.parametrize("presented", [None, "", "forged-token"])
def test_poll_without_a_valid_queue_token_is_401(invoke, concert, presented):
    issue(invoke)
    response = poll(invoke, "alice", presented)
    assert response["statusCode"] == 401 and error_code(response) == "QUEUE_TOKEN_INVALID"


def test_poll_with_another_users_token_is_401(invoke, concert):
    alice = json.loads(issue(invoke)["body"])["token"]
    issue(invoke, "bob")
    response = poll(invoke, "bob", alice)
    assert response["statusCode"] == 401


def test_poll_of_an_expired_token_is_410(invoke, concert, clock):
    token = json.loads(issue(invoke)["body"])["token"]
    clock.advance(300)
    response = poll(invoke, "alice", token)
    assert response["statusCode"] == 410 and error_code(response) == "QUEUE_TOKEN_EXPIRED"


def test_scheduler_events_run_their_tasks(invoke, concert, clock):
    issue(invoke)
    issue(invoke, "bob")
    clock.advance(300)
    assert invoke("scheduler", load_event("scheduler_expire.json")) == {
        "task": "expire",
        "concerts": 1,
        "expired": 1,
        "admitted": 0,
        "lapsed": 0,
        "released": 0,
    }
    assert invoke("scheduler", load_event("scheduler_admit.json"))["admitted"] == 1


def test_health_needs_no_auth(invoke):
    response = invoke("health", load_event("health.json"))
    assert response["statusCode"] == 200 and json.loads(response["body"]) == {"status": "ok"}
