"""Discovery and sold out over HTTP on DynamoDB Local (issue 13): the public routes through the local gateway,
and the sold-out figure as the real engine, the table's stream and its consumer make it, under concurrency:
seats coming back reopen the line for the same token, and joins racing the last seat's payment."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devserver.testing import running_server
from tests.integration.api import TIMEOUT, bearer, create_concert, error_code, hold, table
from tests.integration.conftest import BASE_OVERRIDES


@pytest.fixture(scope="module")
def sale_server() -> Iterator[Any]:
    """Holds lapse after 8 s (a slow machine still pays in time), queue tokens last 10 minutes; the scheduler
    runs only when a test says so."""
    overrides = BASE_OVERRIDES | {"SeatHoldTtlSeconds": "8", "ActiveTokenTtlSeconds": "600"}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


def user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def join(server: Any, concert_id: str, who: str) -> requests.Response:
    return requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens", headers=bearer(server, who), timeout=TIMEOUT
    )


def poll(server: Any, concert_id: str, who: str, token: str) -> requests.Response:
    return requests.get(
        f"{server.url}/concerts/{concert_id}/queue/position",
        headers=bearer(server, who) | {"X-Queue-Token": token},
        timeout=TIMEOUT,
    )


def active_buyer(server: Any, concert_id: str, who: str) -> dict[str, str]:
    """`who` joins (ACTIVE, asserted) and tops up: the headers of their holds and payments."""
    token = join(server, concert_id, who).json()
    assert token["status"] == "ACTIVE", token
    charged = requests.post(
        f"{server.url}/wallet/charges",
        json={"amount": 100_000},
        headers=bearer(server, who) | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )
    assert charged.status_code == 200, charged.text
    return bearer(server, who) | {"X-Queue-Token": token["token"]}


def held(server: Any, headers: dict[str, str], schedule_id: str, seat: int) -> str:
    response = hold(server, headers, schedule_id, seat)
    assert response.status_code == 201, response.text
    return str(response.json()["reservationId"])


def pay(server: Any, headers: dict[str, str], reservation_id: str) -> requests.Response:
    """Pays a hold (and so expires the payer's queue token)."""
    return requests.post(
        f"{server.url}/payments",
        json={"reservationId": reservation_id},
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The check's answer once it is truthy: the figures follow the table's stream a second or two behind."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.25)


def sold_out(server: Any, concert_id: str) -> bool:
    response = requests.get(f"{server.url}/concerts/{concert_id}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return bool(response.json()["soldOut"])


def test_discovery_is_public_and_cacheable_through_the_gateway(sale_server):
    concert = create_concert(sale_server, seats=2, schedules=2)
    listed = requests.get(f"{sale_server.url}/concerts?limit=100", timeout=TIMEOUT)  # no Authorization at all
    assert listed.status_code == 200 and listed.headers["Cache-Control"] == "public, max-age=5"
    assert concert["concertId"] in [item["concertId"] for item in listed.json()["items"]]
    page = requests.get(f"{sale_server.url}/concerts/{concert['concertId']}", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "public, max-age=5"
    assert [s["scheduleId"] for s in page.json()["schedules"]] == [s["scheduleId"] for s in concert["schedules"]]
    assert requests.get(f"{sale_server.url}/concerts/nope", timeout=TIMEOUT).status_code == 404
    # only these two are public: the buyer's routes under the same path still need the JWT
    dates = requests.get(f"{sale_server.url}/concerts/{concert['concertId']}/schedules", timeout=TIMEOUT)
    assert (dates.status_code, error_code(dates)) == (401, "UNAUTHENTICATED")


def test_a_hold_lapsing_when_every_seat_is_taken_lets_the_waiter_in(sale_server):
    concert = create_concert(sale_server, seats=2, queueCapacity=1)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    first = active_buyer(sale_server, concert_id, user("first"))
    sold = held(sale_server, first, schedule_id, 1)
    held(sale_server, first, schedule_id, 2)  # stays held, and lapses
    assert pay(sale_server, first, sold).status_code == 201
    waiter = user("waiter")
    token = join(sale_server, concert_id, waiter)
    assert token.status_code == 201 and token.json()["status"] == "WAIT"  # a held seat may lapse: not sold out
    assert not eventually(lambda: sold_out(sale_server, concert_id), timeout=3)

    time.sleep(8.5)  # the hold lapses; the scheduler frees the seat and admits the waiter
    sale_server.run_schedule("Expire")
    sale_server.run_schedule("Admit")
    answer = poll(sale_server, concert_id, waiter, token.json()["token"])
    assert answer.status_code == 200 and answer.json()["status"] == "ACTIVE", answer.text
    headers = bearer(sale_server, waiter) | {"X-Queue-Token": token.json()["token"]}
    assert hold(sale_server, headers, schedule_id, 2).status_code == 201


def test_a_sold_out_concert_reopens_for_the_same_token_when_a_seat_comes_back(sale_server):
    concert = create_concert(sale_server, seats=1, queueCapacity=1)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    first = active_buyer(sale_server, concert_id, user("first"))
    waiter = user("waiter")
    waiting = join(sale_server, concert_id, waiter).json()
    assert waiting["status"] == "WAIT"
    paid = pay(sale_server, first, held(sale_server, first, schedule_id, 1))
    assert paid.status_code == 201, paid.text

    assert eventually(lambda: sold_out(sale_server, concert_id))
    answer = poll(sale_server, concert_id, waiter, waiting["token"])
    assert (answer.status_code, error_code(answer)) == (410, "SOLD_OUT")
    late = join(sale_server, concert_id, user("late"))
    assert (late.status_code, error_code(late)) == (410, "SOLD_OUT")
    sale_server.run_schedule("Admit")  # the payer's slot is free, but nobody enters a sold-out concert
    assert error_code(poll(sale_server, concert_id, waiter, waiting["token"])) == "SOLD_OUT"

    # The seat comes back as a cancellation leaves it (SOLD -> FREE, conditional like every seat write).
    table(sale_server).update_item(
        Key={"PK": f"SCHEDULE#{schedule_id}", "SK": "SEAT#00001"},
        UpdateExpression="SET #s = :free REMOVE reservationId, holdExpiresAt",
        ConditionExpression="#s = :sold",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":free": "FREE", ":sold": "SOLD"},
    )
    assert eventually(lambda: not sold_out(sale_server, concert_id))
    answer = poll(sale_server, concert_id, waiter, waiting["token"])  # the same token, its place kept
    assert answer.status_code == 200 and answer.json()["status"] in ("WAIT", "ACTIVE"), answer.text
    sale_server.run_schedule("Admit")
    assert poll(sale_server, concert_id, waiter, waiting["token"]).json()["status"] == "ACTIVE"


def test_joins_racing_the_last_seat_sold_all_end_sold_out(sale_server):
    concert = create_concert(sale_server, seats=1, queueCapacity=1)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    last = active_buyer(sale_server, concert_id, user("last"))
    reservation = held(sale_server, last, schedule_id, 1)
    joiners = [user("racer") for _ in range(16)]

    def race(who: str | None) -> tuple[str, requests.Response]:
        return (
            ("payment", pay(sale_server, last, reservation))
            if who is None
            else (who, join(sale_server, concert_id, who))
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(pool.map(race, [*joiners[:4], None, *joiners[4:]]))
    assert results.pop("payment").status_code == 201
    outcomes = Counter(response.status_code for response in results.values())
    print(f"\n16 joins racing the last seat's payment: {dict(outcomes)}")
    assert set(outcomes) <= {201, 410}, outcomes
    assert all(error_code(r) == "SOLD_OUT" for r in results.values() if r.status_code == 410)

    assert eventually(lambda: sold_out(sale_server, concert_id))
    sale_server.run_schedule("Admit")  # the payer's slot is free: nobody enters all the same
    for who, response in results.items():  # every token issued in the race is told, and keeps its place
        if response.status_code == 201:
            answer = poll(sale_server, concert_id, who, response.json()["token"])
            assert (answer.status_code, error_code(answer)) == (410, "SOLD_OUT"), answer.text
    late = join(sale_server, concert_id, user("after"))
    assert (late.status_code, error_code(late)) == (410, "SOLD_OUT")
