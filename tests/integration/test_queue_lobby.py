"""The lobby over HTTP on the local server and DynamoDB Local: joins before salesOpenAt, the line formed at the opening
in the lobby's random order, a join at the exact opening second behind all of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.integration.api import TIMEOUT, bearer, create_concert, error_code, join, table

# No lobby join outlives this (services/queue.py JOIN_WINDOW_SECONDS): the line forms at the first run after it.
JOIN_WINDOW_SECONDS = 30


def poll(server: Any, concert_id: str, user: str, token: str) -> requests.Response:
    headers = bearer(server, user) | {"X-Queue-Token": token}
    return requests.get(f"{server.url}/concerts/{concert_id}/queue/position", headers=headers, timeout=TIMEOUT)


def lobby_key(server: Any, concert_id: str, user: str) -> int:
    item = table(server).get_item(Key={"PK": f"QTOKEN#{concert_id}#{user}", "SK": "QTOKEN"}, ConsistentRead=True)
    return int(item["Item"]["lobbyKey"])


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def test_the_lobby_is_let_in_in_its_random_order_before_a_join_at_the_opening_second(short_token_server):
    server = short_token_server
    opens_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    concert_id = create_concert(server, queueCapacity=2, salesOpenAt=opens_at.strftime("%Y-%m-%dT%H:%M:%SZ"))[
        "concertId"
    ]
    lobby = {f"u{i}": join(server, concert_id, f"u{i}") for i in range(5)}
    assert all((t["status"], t["position"], t["activeUntil"]) == ("WAIT", None, None) for t in lobby.values())
    waiting = poll(server, concert_id, "u0", lobby["u0"]["token"]).json()
    until_opening = opens_at.timestamp() - time.time()  # measured after the answer: at most the server's figure
    assert until_opening > 1, "the machine was too slow to join before the opening"
    assert (waiting["position"], waiting["estimatedWaitSeconds"]) == (None, None)
    assert waiting["retryAfterSeconds"] >= until_opening + JOIN_WINDOW_SECONDS  # back once the line has formed

    sleep_until(opens_at.timestamp())
    bot = join(server, concert_id, "bot")  # the exact opening second: no walk-in, although capacity is free
    assert (bot["status"], bot["position"]) == ("WAIT", None)
    assert server.run_schedule("Admit")["admitted"] == 0  # a lobby join may still be in flight

    sleep_until(opens_at.timestamp() + JOIN_WINDOW_SECONDS + 0.5)
    by_key = sorted(lobby, key=lambda user: lobby_key(server, concert_id, user))
    everyone = {**lobby, "bot": bot}
    admitted: list[str] = []
    positions_after_forming: dict[str, Any] = {}
    while len(admitted) < len(everyone):
        server.run_schedule("Admit")
        batch = []
        for user, token in everyone.items():
            if user in admitted:
                continue
            answer = poll(server, concert_id, user, token["token"])
            if answer.status_code == 410:  # admitted by this run, and its 2 s are already over (a slow machine)
                assert error_code(answer) == "QUEUE_TOKEN_EXPIRED"
                batch.append(user)
            elif answer.json()["status"] == "ACTIVE":
                batch.append(user)
            else:
                positions_after_forming.setdefault(user, answer.json()["position"])
        assert len(batch) <= 2  # capacity
        admitted += sorted(batch, key=lambda u: by_key.index(u) if u in by_key else len(by_key))
        time.sleep(2.2)  # ActiveTokenTtlSeconds=2 on this server
        server.run_schedule("Expire")
    assert admitted == [*by_key, "bot"]  # the lobby in its key order, then the first arrival after the opening
    # Once the line formed, every waiter had a place, the bot behind the whole lobby.
    placed = [positions_after_forming[u] for u in by_key[2:]]
    assert all(isinstance(p, int) and p >= 1 for p in placed) and placed == sorted(placed)
    assert positions_after_forming["bot"] > max(placed)


def test_a_join_before_the_lobby_opens_is_409_sale_not_open_with_retry_after(server):
    opens_at = datetime.now(UTC) + timedelta(minutes=30, seconds=120)  # PreQueueMinutes: 30 by default
    concert_id = create_concert(server, salesOpenAt=opens_at.strftime("%Y-%m-%dT%H:%M:%SZ"))["concertId"]
    refused = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens", headers=bearer(server, "early"), timeout=TIMEOUT
    )
    assert (refused.status_code, error_code(refused)) == (409, "SALE_NOT_OPEN")
    assert 100 <= int(refused.headers["Retry-After"]) <= 120
