"""HTTP helpers shared by the integration tests: an admin's concert, a buyer's headers, the raw table."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import requests

TIMEOUT = 30


def starts_at(days: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def concert_body(seats: int = 10, schedules: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "title": f"Night {uuid.uuid4().hex[:6]}",
        "schedules": [
            {
                "startsAt": starts_at(days=i + 1),
                "seats": [{"number": n, "price": 10_000 + n} for n in range(1, seats + 1)],
            }
            for i in range(schedules)
        ],
        **fields,
    }


def operator(server: Any) -> dict[str, str]:
    """An operator's headers for POST /admin/concerts: its JWT and a fresh Idempotency-Key."""
    return {**bearer(server, "ops", admin=True), "Idempotency-Key": uuid.uuid4().hex}


def bearer(server: Any, user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(user, admin=admin)}"}


def create_concert(server: Any, **kwargs: Any) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/admin/concerts",
        json=concert_body(**kwargs),
        headers=operator(server),
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def join(server: Any, concert_id: str, user: str) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/concerts/{concert_id}/queue/tokens", headers=bearer(server, user), timeout=TIMEOUT
    )
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def buyer(server: Any, concert_id: str, user: str) -> dict[str, str]:
    """Headers of a user holding an ACTIVE queue token for the concert."""
    token = join(server, concert_id, user)
    assert token["status"] == "ACTIVE", token
    return bearer(server, user) | {"X-Queue-Token": token["token"]}


def hold(server: Any, headers: dict[str, str], schedule_id: str, seat: int) -> requests.Response:
    return requests.post(
        f"{server.url}/reservations",
        json={"scheduleId": schedule_id, "seatNumber": seat},
        headers=headers,
        timeout=TIMEOUT,
    )


def table(server: Any) -> Any:
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=server.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return resource.Table(server.table_name("TicketlineTable"))


def listed_available_seats(
    server: Any, concert_id: str, headers: dict[str, str], expected: list[int], timeout: float = 15.0
) -> list[int]:
    """The dates' availableSeats as GET schedules lists them, once they equal `expected` or `timeout` passes:
    the hint follows seat changes through the table's stream (a second or two behind, locally)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = requests.get(f"{server.url}/concerts/{concert_id}/schedules", headers=headers, timeout=TIMEOUT)
        seen = [s["availableSeats"] for s in listed.json()["schedules"]]
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])
