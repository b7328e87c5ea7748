"""The catalog and reservation endpoints through their Lambda handlers, with the sample events of events/."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import load_event
from ticketline import clock as ticketline_clock
from ticketline.services.queue import QueueService


def call(invoke, function: str, event_file: str, user: str = "alice", admin: bool = False, **changes: Any) -> dict:
    event = load_event(event_file, **changes)
    event["requestContext"]["authorizer"]["claims"] |= {"sub": user, "cognito:groups": "admin" if admin else ""}
    response = invoke(function, event)
    response["json"] = json.loads(response["body"])
    return response


def concert_body(**changes: Any) -> dict[str, Any]:
    starts_at = ticketline_clock.to_iso(ticketline_clock.now() + 86_400)
    body = {"title": "Night", "schedules": [{"startsAt": starts_at, "seats": [{"number": 1, "price": 50_000}]}]}
    return body | changes


def create(invoke, body: Any, **kwargs: Any) -> dict:
    raw = body if isinstance(body, str) else json.dumps(body)
    return call(invoke, "admin", "admin_create_concert.json", body=raw, **kwargs)


def with_token(event_file: str, token: str, **changes: Any) -> dict[str, Any]:
    event = load_event(event_file, **changes)
    event["headers"]["X-Queue-Token"] = token
    event["multiValueHeaders"]["X-Queue-Token"] = [token]
    return event


def test_the_sample_event_creates_a_concert(invoke, clock):
    response = call(invoke, "admin", "admin_create_concert.json", admin=True)
    assert response["statusCode"] == 201
    body = response["json"]
    assert body["title"] == "Demo night" and body["queueCapacity"] == 100
    assert body["schedules"] == [
        {"scheduleId": body["schedules"][0]["scheduleId"], "startsAt": "2030-12-24T19:00:00Z", "seatCount": 3}
    ]


def test_only_admins_create_concerts_and_the_check_comes_before_the_body(invoke, clock):
    for body in [concert_body(), {"title": ""}, "not json"]:
        response = create(invoke, body, admin=False)
        assert (response["statusCode"], response["json"]["error"]["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        ("", "body"),
        ({"schedules": []}, "title"),
        (concert_body(schedules=[]), "schedules"),
        (concert_body(queueCapacity=0), "queueCapacity"),
        (
            concert_body(schedules=[{"startsAt": "2001-01-01T00:00:00Z", "seats": [{"number": 1, "price": 1}]}]),
            "schedules.0.startsAt",
        ),
        (
            concert_body(schedules=[{"startsAt": "2099-01-01T00:00:00Z", "seats": [{"number": 1, "price": -1}]}]),
            "schedules.0.seats.0.price",
        ),
    ],
)
def test_bad_concerts_are_400_with_the_field(invoke, clock, body, field):
    response = create(invoke, body, admin=True)
    assert response["statusCode"] == 400
    error = response["json"]["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in error["details"]]


def test_browse_hold_and_read_through_the_handlers(invoke, clock):
    concert = create(invoke, concert_body(), admin=True)["json"]
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    token, _ = QueueService().issue(concert_id, "alice")
    path = {"concertId": concert_id, "scheduleId": schedule_id}

    dates_path = f"/concerts/{concert_id}/schedules"
    schedules = invoke("seats", with_token("list_schedules.json", token.token, pathParameters=path, path=dates_path))
    assert schedules["statusCode"] == 200, schedules["body"]
    assert json.loads(schedules["body"])["schedules"][0]["availableSeats"] == 1
    seats_path = f"{dates_path}/{schedule_id}/seats"
    seats = invoke("seats", with_token("list_seats.json", token.token, pathParameters=path, path=seats_path))
    assert json.loads(seats["body"]) == {
        "scheduleId": schedule_id,
        "seats": [{"number": 1, "price": 50_000, "section": None}],
        "nextCursor": None,
    }

    hold = json.dumps({"scheduleId": schedule_id, "seatNumber": 1})
    held = invoke("reserve", with_token("hold_seat.json", token.token, body=hold))
    assert held["statusCode"] == 201
    reservation = json.loads(held["body"])
    assert reservation["status"] == "HELD" and reservation["price"] == 50_000
    again = invoke("reserve", with_token("hold_seat.json", token.token, body=hold))
    assert (again["statusCode"], json.loads(again["body"])["error"]["code"]) == (409, "SEAT_UNAVAILABLE")

    def read(reservation_id: str, user: str = "alice") -> dict:
        changes = {"pathParameters": {"reservationId": reservation_id}, "path": f"/reservations/{reservation_id}"}
        return call(invoke, "reserve", "get_reservation.json", user=user, **changes)

    mine = read(reservation["reservationId"])
    assert mine["statusCode"] == 200 and mine["json"] == reservation
    other = read(reservation["reservationId"], user="bob")
    assert (other["statusCode"], other["json"]["error"]["code"]) == (403, "FORBIDDEN")
    missing = read("nope")
    assert missing["statusCode"] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seatNumber": 1}, "scheduleId"),
        ({"scheduleId": "has space", "seatNumber": 1}, "scheduleId"),
        ({"scheduleId": "s1", "seatNumber": "1"}, "seatNumber"),
        ({"scheduleId": "s1", "seatNumber": 0}, "seatNumber"),
        ({"scheduleId": "s1"}, "seatNumber"),
    ],
)
def test_bad_holds_are_400_with_the_field(invoke, clock, body, field):
    response = invoke("reserve", with_token("hold_seat.json", "t", body=json.dumps(body)))
    assert response["statusCode"] == 400
    assert field in [d["field"] for d in json.loads(response["body"])["error"]["details"]]


def test_a_missing_queue_token_is_401_on_every_buyer_route(invoke, clock):
    for function, event_file in [
        ("seats", "list_schedules.json"),
        ("seats", "list_seats.json"),
        ("reserve", "hold_seat.json"),
    ]:
        event = load_event(event_file)
        event["headers"].pop("X-Queue-Token")
        event["multiValueHeaders"].pop("X-Queue-Token")
        response = invoke(function, event)
        assert (response["statusCode"], json.loads(response["body"])["error"]["code"]) == (401, "QUEUE_TOKEN_INVALID")
