"""Identity that lasts the wait (issue 14 item 6), over HTTP on the local server: a waiter's user JWT expires in
the middle of its wait, its poll is a 401 in the API's error shape, and with a new JWT for the same user (`sub`) the
same queue token keeps its place, moves up and is admitted. The place is bound to (concert, sub), never to a JWT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests

from devserver.testing import running_server
from tests.integration.api import TIMEOUT, create_concert, join
from tests.integration.conftest import BASE_OVERRIDES

pytestmark = pytest.mark.integration

# The waiter's first JWT expires while it waits; ACTIVE turns are short so that the line moves without payments.
# Both leave seconds of margin on a loaded machine: a request there can take a second or two.
JWT_SECONDS = 10
ACTIVE_SECONDS = 6


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    overrides = BASE_OVERRIDES | {"ActiveTokenTtlSeconds": str(ACTIVE_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=2, scheduler=False) as running:
        yield running


def poll(server: Any, concert_id: str, user_jwt: str, queue_token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/concerts/{concert_id}/queue/position",
        headers={"Authorization": f"Bearer {user_jwt}", "X-Queue-Token": queue_token},
        timeout=TIMEOUT,
    )


def test_a_waiter_whose_jwt_expires_mid_wait_keeps_its_place_with_a_new_jwt(server: Any) -> None:
    concert_id = create_concert(server, queueCapacity=1)["concertId"]
    assert join(server, concert_id, "front")["status"] == "ACTIVE"
    assert join(server, concert_id, "second")["status"] == "WAIT"

    short_jwt = server.token("waiter", ttl_seconds=JWT_SECONDS)
    joined = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens",
        headers={"Authorization": f"Bearer {short_jwt}"},
        timeout=TIMEOUT,
    )
    assert joined.status_code == 201, joined.text
    place = joined.json()
    assert (place["status"], place["position"]) == ("WAIT", 2)
    first = poll(server, concert_id, short_jwt, place["token"])
    assert first.status_code == 200, first.text
    assert first.json()["position"] == 2, first.text

    # The JWT expires while the line moves: "front"'s ACTIVE time ends (JWT_SECONDS > ACTIVE_SECONDS) and "second"
    # is admitted.
    expires_at = jwt.decode(short_jwt, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at + 1 - time.time()))
    assert server.run_schedule("Expire")["expired"] >= 1
    assert server.run_schedule("Admit")["admitted"] >= 1
    second_admitted_at = time.time()
    refused = poll(server, concert_id, short_jwt, place["token"])
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "UNAUTHENTICATED" and error["message"] and error["details"] == []

    # A refreshed JWT for the same user: the same queue token answers, one place further on.
    fresh_jwt = server.token("waiter")
    assert jwt.decode(fresh_jwt, options={"verify_signature": False})["sub"] == "waiter"
    moved = poll(server, concert_id, fresh_jwt, place["token"])
    assert moved.status_code == 200, moved.text
    assert (moved.json()["status"], moved.json()["position"]) == ("WAIT", 1)
    # An app that lost the queue token too gets the same one back by joining again (200, not a new place).
    again = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens",
        headers={"Authorization": f"Bearer {fresh_jwt}"},
        timeout=TIMEOUT,
    )
    assert again.status_code == 200, again.text
    assert (again.json()["token"], again.json()["position"]) == (place["token"], 1)

    # "second"'s turn ends; the waiter is admitted on the token it joined with.
    time.sleep(max(0.0, second_admitted_at + ACTIVE_SECONDS + 1 - time.time()))
    assert server.run_schedule("Expire")["expired"] >= 1
    assert server.run_schedule("Admit")["admitted"] >= 1
    admitted = poll(server, concert_id, fresh_jwt, place["token"])
    assert admitted.status_code == 200, admitted.text
    assert (admitted.json()["status"], admitted.json()["position"]) == ("ACTIVE", 0)
