"""Catalog and holds over HTTP on the local server and DynamoDB Local (the real engine: atomic transactions).

Every test creates its own concert, so tests share one server without seeing each other's data.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
import requests
from boto3.dynamodb.conditions import Attr

from tests.integration.api import (
    TIMEOUT,
    bearer,
    buyer,
    concert_body,
    create_concert,
    error_code,
    hold,
    join,
    listed_available_seats,
    operator,
    starts_at,
    table,
)


# ---- tests ----
def test_an_admin_creates_a_concert_then_buyers_list_its_dates_and_seats(server):
    concert = create_concert(server, seats=5, schedules=2, queueCapacity=10)
    assert concert["queueCapacity"] == 10 and len(concert["schedules"]) == 2
    concert_id = concert["concertId"]
    headers = buyer(server, concert_id, "alice")
    dates = requests.get(f"{server.url}/concerts/{concert_id}/schedules", headers=headers, timeout=TIMEOUT)
    assert dates.status_code == 200
    assert dates.json() == {
        "concertId": concert_id,
        "schedules": [
            {"scheduleId": s["scheduleId"], "startsAt": s["startsAt"], "availableSeats": 5}
            for s in concert["schedules"]
        ],
    }
    schedule_id = concert["schedules"][1]["scheduleId"]
    seats_url = f"{server.url}/concerts/{concert_id}/schedules/{schedule_id}/seats"
    seats = requests.get(seats_url, headers=headers, timeout=TIMEOUT)
    assert seats.status_code == 200
    assert seats.json() == {
        "scheduleId": schedule_id,
        "seats": [{"number": n, "price": 10_000 + n, "section": None} for n in range(1, 6)],
        "nextCursor": None,
    }
    assert hold(server, headers, schedule_id, 3).status_code == 201
    assert [s["number"] for s in requests.get(seats_url, headers=headers, timeout=TIMEOUT).json()["seats"]] == [
        1,
        2,
        4,
        5,
    ]
    assert listed_available_seats(server, concert_id, headers, [5, 4]) == [5, 4]


def test_a_non_admin_cannot_create_a_concert(server):
    mallory = {**bearer(server, "mallory"), "Idempotency-Key": "k1"}
    response = requests.post(f"{server.url}/admin/concerts", json=concert_body(), headers=mallory, timeout=TIMEOUT)
    assert (response.status_code, error_code(response)) == (403, "FORBIDDEN")
    no_jwt = requests.post(f"{server.url}/admin/concerts", json=concert_body(), timeout=TIMEOUT)
    assert no_jwt.status_code == 401


def test_fifty_concurrent_holds_of_one_seat_have_exactly_one_winner(server):
    concert = create_concert(server, seats=3)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    buyers = [buyer(server, concert_id, f"u{i:02d}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda headers: hold(server, headers, schedule_id, 2), buyers))
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 49}
    assert {error_code(r) for r in responses if r.status_code == 409} == {"SEAT_UNAVAILABLE"}
    winner = next(r.json() for r in responses if r.status_code == 201)

    db = table(server)
    seat = db.get_item(Key={"PK": f"SCHEDULE#{schedule_id}", "SK": "SEAT#00002"}, ConsistentRead=True)["Item"]
    assert (seat["status"], seat["reservationId"]) == ("HELD", winner["reservationId"])
    reservations = db.scan(FilterExpression=Attr("scheduleId").eq(schedule_id) & Attr("SK").eq("RESERVATION"))["Items"]
    assert [r["reservationId"] for r in reservations] == [winner["reservationId"]]
    holds = db.scan(FilterExpression=Attr("scheduleId").eq(schedule_id) & Attr("SK").eq("HOLDS"))["Items"]
    assert len(holds) == 1 and list(holds[0]["holds"]) == [winner["reservationId"]]
    assert listed_available_seats(server, concert_id, buyers[0], [2]) == [2]


def test_the_hold_limit_holds_under_concurrency(server):
    concert = create_concert(server, seats=10)
    schedule_id = concert["schedules"][0]["scheduleId"]
    headers = buyer(server, concert["concertId"], "greedy")
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda seat: hold(server, headers, schedule_id, seat), range(1, 11)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 4, 409: 6}, [r.text for r in responses]
    assert {error_code(r) for r in responses if r.status_code == 409} == {"HOLD_LIMIT_REACHED"}
    seats = requests.get(
        f"{server.url}/concerts/{concert['concertId']}/schedules/{schedule_id}/seats", headers=headers, timeout=TIMEOUT
    ).json()["seats"]
    assert len(seats) == 6  # exactly the four winners' seats are taken


def test_a_reservation_is_its_owners_only(server):
    concert = create_concert(server, seats=2)
    held = hold(server, buyer(server, concert["concertId"], "alice"), concert["schedules"][0]["scheduleId"], 1).json()
    url = f"{server.url}/reservations/{held['reservationId']}"
    mine = requests.get(url, headers=bearer(server, "alice"), timeout=TIMEOUT)
    assert mine.status_code == 200 and mine.json() == held
    theirs = requests.get(url, headers=bearer(server, "bob"), timeout=TIMEOUT)
    assert (theirs.status_code, error_code(theirs)) == (403, "FORBIDDEN")
    unknown = requests.get(
        f"{server.url}/reservations/{uuid.uuid4().hex}", headers=bearer(server, "a"), timeout=TIMEOUT
    )
    assert (unknown.status_code, error_code(unknown)) == (404, "NOT_FOUND")


def test_a_lapsed_hold_is_taken_by_the_next_buyer_and_tidied_by_the_scheduler(short_hold_server):
    server = short_hold_server
    concert = create_concert(server, seats=2)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    first = hold(server, buyer(server, concert_id, "alice"), schedule_id, 1)
    assert first.status_code == 201
    lapse_at = datetime.fromisoformat(first.json()["holdExpiresAt"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, lapse_at - time.time()) + 0.05)  # SeatHoldTtlSeconds=2: wait just past the hold's end

    bob = buyer(server, concert_id, "bob")
    seats = requests.get(
        f"{server.url}/concerts/{concert_id}/schedules/{schedule_id}/seats", headers=bob, timeout=TIMEOUT
    )
    assert [s["number"] for s in seats.json()["seats"]] == [1, 2]
    second = hold(server, bob, schedule_id, 1)
    assert second.status_code == 201, second.text
    alice_view = requests.get(
        f"{server.url}/reservations/{first.json()['reservationId']}", headers=bearer(server, "alice"), timeout=TIMEOUT
    )
    assert alice_view.json()["status"] == "EXPIRED"

    bob_lapse = datetime.fromisoformat(second.json()["holdExpiresAt"].replace("Z", "+00:00")).timestamp()
    server.run_schedule("Expire")
    expire_done = time.time()
    db = table(server)
    stored = db.get_item(Key={"PK": f"RESERVATION#{first.json()['reservationId']}", "SK": "RESERVATION"})["Item"]
    assert stored["status"] == "EXPIRED" and "GSI2PK" not in stored
    seat = db.get_item(Key={"PK": f"SCHEDULE#{schedule_id}", "SK": "SEAT#00001"}, ConsistentRead=True)["Item"]
    if expire_done < bob_lapse:  # bob's hold was live all through the run: bob's, untouched
        assert (seat["status"], seat["reservationId"]) == ("HELD", second.json()["reservationId"])
    else:  # a slow machine: bob's own 2 s hold lapsed before the run ended and may be tidied too, never alice's
        assert seat["status"] == "FREE" or seat["reservationId"] == second.json()["reservationId"], seat


def test_the_scheduler_frees_a_lapsed_seat_and_restores_the_count(short_hold_server):
    server = short_hold_server
    concert = create_concert(server, seats=2)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    alice = buyer(server, concert_id, "alice")
    held = hold(server, alice, schedule_id, 2).json()
    assert listed_available_seats(server, concert_id, alice, [1]) == [1]  # the held seat is out of the count
    lapse_at = datetime.fromisoformat(held["holdExpiresAt"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, lapse_at - time.time()) + 0.05)
    server.run_schedule("Expire")
    db = table(server)
    seat = db.get_item(Key={"PK": f"SCHEDULE#{schedule_id}", "SK": "SEAT#00002"}, ConsistentRead=True)["Item"]
    assert seat["status"] == "FREE" and "reservationId" not in seat
    assert listed_available_seats(server, concert_id, buyer(server, concert_id, "bob"), [2]) == [2]


def buyer_routes(server: Any, concert: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    return [
        ("GET", f"{server.url}/concerts/{concert_id}/schedules", None),
        ("GET", f"{server.url}/concerts/{concert_id}/schedules/{schedule_id}/seats", None),
        ("POST", f"{server.url}/reservations", {"scheduleId": schedule_id, "seatNumber": 1}),
    ]


def test_every_buyer_route_refuses_missing_foreign_and_waiting_tokens(server):
    concert = create_concert(server, seats=2, queueCapacity=1)
    other = create_concert(server, seats=2)
    alice_token = join(server, concert["concertId"], "alice")["token"]  # takes the only slot
    waiting = join(server, concert["concertId"], "bob")
    assert waiting["status"] == "WAIT"
    foreign = join(server, other["concertId"], "carol")["token"]
    cases = [
        (bearer(server, "carol"), 401, "QUEUE_TOKEN_INVALID"),  # missing
        (bearer(server, "carol") | {"X-Queue-Token": "forged"}, 401, "QUEUE_TOKEN_INVALID"),
        (bearer(server, "carol") | {"X-Queue-Token": foreign}, 401, "QUEUE_TOKEN_INVALID"),  # another concert's
        (bearer(server, "carol") | {"X-Queue-Token": alice_token}, 401, "QUEUE_TOKEN_INVALID"),  # another user's
        (bearer(server, "bob") | {"X-Queue-Token": waiting["token"]}, 403, "QUEUE_TOKEN_NOT_ACTIVE"),
    ]
    for headers, status, code in cases:
        for method, url, body in buyer_routes(server, concert):
            response = requests.request(method, url, json=body, headers=headers, timeout=TIMEOUT)
            assert (response.status_code, error_code(response)) == (status, code), (method, url, headers)


def test_every_buyer_route_refuses_an_expired_token(short_token_server):
    server = short_token_server
    concert = create_concert(server, seats=2)
    token = join(server, concert["concertId"], "alice")
    ends = datetime.fromisoformat(token["activeUntil"].replace("Z", "+00:00")).timestamp()
    time.sleep(max(0.0, ends - time.time()) + 0.05)  # ActiveTokenTtlSeconds=2
    headers = bearer(server, "alice") | {"X-Queue-Token": token["token"]}
    for method, url, body in buyer_routes(server, concert):
        response = requests.request(method, url, json=body, headers=headers, timeout=TIMEOUT)
        assert (response.status_code, error_code(response)) == (410, "QUEUE_TOKEN_EXPIRED"), (method, url)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedules": []}, "title"),
        (concert_body() | {"queueCapacity": 0}, "queueCapacity"),
        (
            concert_body()
            | {"schedules": [{"startsAt": "2001-01-01T00:00:00Z", "seats": [{"number": 1, "price": 1}]}]},
            "schedules.0.startsAt",
        ),
        (
            concert_body() | {"schedules": [{"startsAt": starts_at(), "seats": [{"number": 1, "price": 1}] * 2}]},
            "schedules.0.seats",
        ),
        (
            concert_body() | {"schedules": [{"startsAt": starts_at(), "seats": [{"number": 1, "price": 0}]}]},
            "schedules.0.seats.0.price",
        ),
    ],
)
def test_bad_concert_bodies_are_400_with_the_field(server, body, field):
    response = requests.post(f"{server.url}/admin/concerts", json=body, headers=operator(server), timeout=TIMEOUT)
    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")
    assert field in [d["field"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"seatNumber": 1}, "scheduleId"), ({"scheduleId": "s1", "seatNumber": "one"}, "seatNumber"), ("{", "body")],
)
def test_bad_hold_bodies_are_400_with_the_field(server, body, field):
    concert = create_concert(server, seats=1)
    headers = buyer(server, concert["concertId"], "alice") | {"Content-Type": "application/json"}
    data = body if isinstance(body, str) else None
    response = requests.post(
        f"{server.url}/reservations", json=None if data else body, data=data, headers=headers, timeout=TIMEOUT
    )
    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")
    assert field in [d["field"] for d in response.json()["error"]["details"]]
