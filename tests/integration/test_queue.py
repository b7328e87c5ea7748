"""The waiting queue over HTTP on the local server and DynamoDB Local."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.integration.api import TIMEOUT, bearer, create_concert, error_code, join


def poll(server: Any, concert_id: str, user: str, token: str | None) -> requests.Response:
    headers = bearer(server, user) | ({"X-Queue-Token": token} if token is not None else {})
    return requests.get(f"{server.url}/concerts/{concert_id}/queue/position", headers=headers, timeout=TIMEOUT)


def test_capacity_three_and_ten_users_gives_three_active_and_seven_waiting_at_1_to_7(server):
    concert_id = create_concert(server, queueCapacity=3)["concertId"]
    tokens = [join(server, concert_id, f"user-{i}") for i in range(10)]
    assert [t["status"] for t in tokens] == ["ACTIVE"] * 3 + ["WAIT"] * 7
    assert [t["position"] for t in tokens] == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    polled = [poll(server, concert_id, f"user-{i}", t["token"]).json() for i, t in enumerate(tokens)]
    assert [p["position"] for p in polled] == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert all(p["retryAfterSeconds"] >= 1 for p in polled)


def test_a_repeat_request_returns_the_same_token(server):
    concert_id = create_concert(server, queueCapacity=1)["concertId"]
    first = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens", headers=bearer(server, "ann"), timeout=TIMEOUT
    )
    again = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens", headers=bearer(server, "ann"), timeout=TIMEOUT
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_concurrent_joins_of_one_user_get_one_token(server):
    concert_id = create_concert(server, queueCapacity=5)["concertId"]
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda _: join(server, concert_id, "eager")["token"], range(16)))
    assert len(set(tokens)) == 1


def test_after_expiry_a_scheduler_run_admits_the_next_waiters_in_arrival_order(short_token_server):
    server = short_token_server
    concert_id = create_concert(server, queueCapacity=2)["concertId"]
    tokens = {f"u{i}": join(server, concert_id, f"u{i}")["token"] for i in range(6)}
    time.sleep(2.2)  # ActiveTokenTtlSeconds=2 on this server
    assert server.run_schedule("Expire")["expired"] >= 2
    expired = poll(server, concert_id, "u0", tokens["u0"])
    assert (expired.status_code, error_code(expired)) == (410, "QUEUE_TOKEN_EXPIRED")
    assert server.run_schedule("Admit")["admitted"] >= 2
    states = [poll(server, concert_id, user, tokens[user]).json() for user in ("u2", "u3", "u4", "u5")]
    assert [(s["status"], s["position"]) for s in states] == [("ACTIVE", 0), ("ACTIVE", 0), ("WAIT", 1), ("WAIT", 2)]


def test_an_expired_user_who_asks_again_goes_to_the_back(short_token_server):
    server = short_token_server
    concert_id = create_concert(server, queueCapacity=1)["concertId"]
    first = join(server, concert_id, "amy")
    join(server, concert_id, "ben")
    time.sleep(2.2)
    again = join(server, concert_id, "amy")
    assert again["token"] != first["token"]
    assert (again["status"], again["position"]) == ("WAIT", 2)


def test_tokens_of_another_user_or_concert_or_forged_ones_are_refused(server):
    concert_a = create_concert(server)["concertId"]
    concert_b = create_concert(server)["concertId"]
    alice_a = join(server, concert_a, "alice")["token"]
    join(server, concert_b, "alice")
    join(server, concert_a, "bob")
    for concert_id, user, token in [
        (concert_a, "bob", alice_a),
        (concert_b, "alice", alice_a),
        (concert_a, "alice", None),
        (concert_a, "alice", alice_a[:-2] + "xx"),
    ]:
        response = poll(server, concert_id, user, token)
        assert (response.status_code, error_code(response)) == (401, "QUEUE_TOKEN_INVALID"), (concert_id, user)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/concerts/no-such-concert/queue/tokens", 404, "NOT_FOUND"),
        ("/concerts/bad%20id/queue/tokens", 400, "VALIDATION_ERROR"),
        (f"/concerts/{'x' * 65}/queue/tokens", 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_input_to_the_queue_is_a_4xx_in_the_error_shape(server, path, status, code):
    response = requests.post(f"{server.url}{path}", headers=bearer(server, "carol"), timeout=TIMEOUT)
    assert (response.status_code, error_code(response)) == (status, code)
    assert response.json()["error"]["message"]


def test_the_queue_needs_a_valid_jwt(server):
    concert_id = create_concert(server)["concertId"]
    for headers in [{}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"}]:
        response = requests.post(f"{server.url}/concerts/{concert_id}/queue/tokens", headers=headers, timeout=TIMEOUT)
        assert (response.status_code, error_code(response)) == (401, "UNAUTHENTICATED")
