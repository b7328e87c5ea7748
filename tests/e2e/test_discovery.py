"""The demo page's first screen (issue 13): the concerts on sale, listed before anyone signs in (no concert id to
paste); a sold-out concert shown as such, with no way to join; a date that has started not offered; a click on a
concert joins its queue. Headless Chromium against the local server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from devserver.testing import RunningServer
from tests.e2e.test_demo import TIMEOUT, call

pytestmark = pytest.mark.integration


def iso(seconds_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(server: RunningServer, title: str, starts: list[str], seats: int) -> dict[str, Any]:
    body = {
        "title": title,
        "queueCapacity": 10,
        "schedules": [
            {"startsAt": at, "seats": [{"number": n, "price": 10_000} for n in range(1, seats + 1)]} for at in starts
        ],
    }
    response = call(server, "POST", "/admin/concerts", "ops", json=body, headers={"Idempotency-Key": title})
    assert response.status_code == 201, response.text
    return dict(response.json())


def sell_out(server: RunningServer, concert: dict[str, Any]) -> None:
    """Someone buys the concert's only seat over HTTP; the stream consumer then marks the concert sold out."""
    buyer = f"buyer-{uuid.uuid4().hex[:6]}"
    token = call(server, "POST", f"/concerts/{concert['concertId']}/queue/tokens", buyer).json()
    queue = {"X-Queue-Token": token["token"]}
    assert call(
        server, "POST", "/wallet/charges", buyer, json={"amount": 10_000}, headers={"Idempotency-Key": uuid.uuid4().hex}
    ).ok
    hold = call(
        server,
        "POST",
        "/reservations",
        buyer,
        json={"scheduleId": concert["schedules"][0]["scheduleId"], "seatNumber": 1},
        headers=queue,
    )
    assert hold.status_code == 201, hold.text
    paid = call(
        server,
        "POST",
        "/payments",
        buyer,
        json={"reservationId": hold.json()["reservationId"]},
        headers=queue | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 201, paid.text
    deadline = time.monotonic() + 20
    while not requests.get(f"{server.url}/concerts/{concert['concertId']}", timeout=TIMEOUT).json()["soldOut"]:
        assert time.monotonic() < deadline, "the stream consumer never marked the concert sold out"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def concerts(server: RunningServer) -> Iterator[dict[str, Any]]:
    tonight = iso(12)  # starts during the test: the page must stop offering it
    tour = create(server, f"Tour {uuid.uuid4().hex[:4]}", [tonight, iso(7 * 86_400)], seats=5)
    gone = create(server, f"Gone {uuid.uuid4().hex[:4]}", [iso(3 * 86_400)], seats=1)
    sell_out(server, gone)
    yield {"tour": tour, "gone": gone, "tonight": tonight}


def concert_button(page: Any, concert: dict[str, Any]) -> Any:
    return page.locator(f"[data-testid=concerts] button[data-concert-id='{concert['concertId']}']")


def test_the_first_screen_lists_concerts_and_marks_the_sold_out_one(
    page: Any, server: RunningServer, concerts: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    page.goto(server.url)  # nobody signed in, no concert id anywhere
    expect(page.get_by_test_id("message")).to_be_hidden()
    tour, gone = concert_button(page, concerts["tour"]), concert_button(page, concerts["gone"])
    expect(tour).to_contain_text(concerts["tour"]["title"])
    expect(tour.get_by_test_id("sold-out")).to_have_count(0)
    expect(gone.get_by_test_id("sold-out")).to_have_text("Sold out")

    gone.click()
    expect(page.get_by_test_id("concert-sale")).to_contain_text("Sold out")
    expect(page.get_by_test_id("join-concert")).to_be_disabled()


def test_a_date_that_has_started_is_not_offered_and_a_click_joins_the_queue(
    page: Any, server: RunningServer, concerts: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    started = datetime.fromisoformat(concerts["tonight"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (started - datetime.now(UTC)).total_seconds() + 1))
    page.goto(server.url)
    concert_button(page, concerts["tour"]).click()
    dates = page.get_by_test_id("concert-dates").locator("li")
    later = concerts["tour"]["schedules"][1]["scheduleId"]
    expect(dates).to_have_count(1)
    expect(dates.first).to_have_attribute("data-schedule-id", later)

    page.get_by_test_id("join-concert").click()  # not signed in yet: the page says what to do
    expect(page.get_by_test_id("message")).to_contain_text("Sign in first")
    page.get_by_test_id("user").fill("dora")
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("who")).to_have_text("signed in as dora")
    page.get_by_test_id("join-concert").click()
    expect(page.get_by_test_id("queue-badge")).to_have_text("ACTIVE")
    expect(page.get_by_test_id("concert-id")).to_have_value(concerts["tour"]["concertId"])
    schedules = page.locator("[data-testid=schedules] button")  # the buyer's dates: the started one is gone too
    expect(schedules).to_have_count(1)
    expect(schedules.first).to_have_attribute("data-schedule-id", later)
