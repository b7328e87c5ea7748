"""A buyer in a real browser: sign in, wait in the queue until admitted, pick a date and a seat on the map,
meet a 402, top up, pay, get the ticket; another holds three seats, gives one back, pays two at once and
cancels one from "my tickets", the refund in the wallet history. Then the API docs page, offline. All on the
local server."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import pytest
import requests

from devserver.testing import RunningServer
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
TIMEOUT = 30
SCREENSHOT = ROOT / "docs" / "screenshots" / "demo.png"
PRICE = 50_000


def call(server: RunningServer, method: str, path: str, user: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {server.token(user, admin=user == 'ops')}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{server.url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def concert(server: RunningServer) -> dict[str, Any]:
    """Room for one buyer at a time, so that the second one waits."""
    from devserver.seed import demo_concert

    body = demo_concert(title="E2E night", dates=2, seats=20, capacity=1, price=PRICE)
    response = call(server, "POST", "/admin/concerts", "ops", json=body, headers={"Idempotency-Key": "e2e-night"})
    assert response.status_code == 201, response.text
    return dict(response.json())


def buy_over_http(server: RunningServer, concert: dict[str, Any], user: str, seat: int) -> str:
    """Another buyer takes a seat and pays, which expires their queue token and frees their place."""
    token = call(server, "POST", f"/concerts/{concert['concertId']}/queue/tokens", user).json()
    assert token["status"] == "ACTIVE", token
    queue = {"X-Queue-Token": token["token"]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    charge = call(server, "POST", "/wallet/charges", user, json={"amount": PRICE * 2}, headers=key)
    assert charge.status_code == 200, charge.text
    schedule = concert["schedules"][0]["scheduleId"]
    hold = call(server, "POST", "/reservations", user, json={"scheduleId": schedule, "seatNumber": seat}, headers=queue)
    assert hold.status_code == 201, hold.text
    paid = call(
        server,
        "POST",
        "/payments",
        user,
        json={"reservationId": hold.json()["reservationId"]},
        headers=queue | {"Idempotency-Key": uuid.uuid4().hex},
    )
    assert paid.status_code == 201, paid.text
    return str(token["token"])


def sign_in_and_join(page: Any, server: RunningServer, concert_id: str, user: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/?concert={concert_id}")
    page.get_by_test_id("user").fill(user)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("who")).to_have_text(f"signed in as {user}")
    expect(page.get_by_test_id("concert-id")).to_have_value(concert_id)
    page.get_by_test_id("join").click()
    # The join has answered (the status block shows); only then may a test join over HTTP as the same user. The
    # first join a worker serves loads the function (a cold start, its role's translation): more than the default 5 s
    # on a busy CI machine.
    expect(page.get_by_test_id("queue-badge")).to_have_text(re.compile("WAIT|ACTIVE"), timeout=20_000)


def hold_a_seat(page: Any, seat: int, sold: int) -> None:
    """Dates, then the seat map: seat `sold` is taken, the others are free; hold `seat`."""
    from playwright.sync_api import expect

    schedules = page.locator("[data-testid=schedules] button")
    expect(schedules).to_have_count(2)
    schedules.first.click()
    seat_map = page.get_by_test_id("seat-map")
    expect(seat_map.locator(f"button[data-seat='{sold}']")).to_be_disabled()
    expect(seat_map.locator("button.seat:not(.taken)")).to_have_count(19)
    seat_map.locator(f"button[data-seat='{seat}']").click()
    expect(page.get_by_test_id("seat-choice")).to_contain_text(f"Seat {seat}")
    page.get_by_test_id("hold").click()
    expect(page.get_by_test_id("reservation")).to_contain_text(f"Seat {seat} held for you")


def test_a_buyer_waits_picks_a_seat_tops_up_and_pays(page: Any, server: RunningServer, concert: dict) -> None:
    from playwright.sync_api import expect

    concert_id = concert["concertId"]
    # Bob holds the concert's only ACTIVE place.
    bob = call(server, "POST", f"/concerts/{concert_id}/queue/tokens", "bob").json()
    assert bob["status"] == "ACTIVE"

    sign_in_and_join(page, server, concert_id, "alice")

    # Alice waits, first in line, and the page polls as retryAfterSeconds says.
    expect(page.get_by_test_id("queue-badge")).to_have_text("WAIT")
    expect(page.get_by_test_id("queue-line")).to_have_text("You are next in line")
    expect(page.get_by_test_id("queue-detail")).to_contain_text("Checking again in")

    # Bob buys seat 1 (his token expires), the scheduler admits Alice, her page notices on its next poll.
    buy_over_http(server, concert, "bob", seat=1)
    server.run_schedule("Expire")
    server.run_schedule("Admit")
    expect(page.get_by_test_id("queue-badge")).to_have_text("ACTIVE", timeout=20_000)
    expect(page.get_by_test_id("queue-detail")).to_contain_text("Your turn ends in")

    hold_a_seat(page, seat=15, sold=1)

    # No money yet: the API's 402 becomes a clear message.
    page.get_by_test_id("pay").click()
    message = page.get_by_test_id("message")
    expect(message).to_have_attribute("data-code", "INSUFFICIENT_BALANCE")
    expect(message).to_contain_text("balance is too low")

    # Top up, then pay.
    page.get_by_test_id("amount").fill("100000")
    page.get_by_test_id("top-up").click()
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"₩\s?100,000"))
    expect(message).to_contain_text("Added")
    page.get_by_test_id("history").locator("xpath=..").locator("summary").click()
    expect(page.get_by_test_id("history")).to_contain_text("CHARGE")
    if os.environ.get("TICKETLINE_SCREENSHOT"):  # `make screenshot`: refresh docs/screenshots/demo.png
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.get_by_test_id("pay").click()
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_contain_text("Seat 15 is yours")
    expect(ticket).to_contain_text("₩50,000")
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"₩\s?50,000"))

    # The API agrees: one PAID reservation for Alice, and her token is spent.
    payment_id = ticket.locator("code").inner_text()
    assert payment_id
    history = call(server, "GET", "/wallet/history", "alice").json()["items"]
    payment = next(item for item in history if item["type"] == "PAYMENT")
    assert payment["amount"] == PRICE
    reservation = call(server, "GET", f"/reservations/{payment['reservationId']}", "alice").json()
    assert reservation["status"] == "PAID" and reservation["seatNumber"] == 15


def test_a_spent_token_shows_the_expired_message_and_rejoins(page: Any, server: RunningServer, concert: dict) -> None:
    """Carol's token expires while she is on the page: the message says so and offers to join again."""
    from playwright.sync_api import expect

    concert_id = concert["concertId"]
    sign_in_and_join(page, server, concert_id, "carol")
    expect(page.get_by_test_id("queue-badge")).to_have_text(re.compile("WAIT|ACTIVE"))
    carol = call(server, "POST", f"/concerts/{concert_id}/queue/tokens", "carol").json()
    if carol["status"] == "WAIT":
        server.run_schedule("Expire")
        server.run_schedule("Admit")
        expect(page.get_by_test_id("queue-badge")).to_have_text("ACTIVE", timeout=20_000)
    # Carol buys from another tab (over HTTP): this token is EXPIRED, the page learns it on its next call.
    buy_over_http(server, concert, "carol", seat=2)
    page.locator("[data-testid=schedules] button").first.click()
    message = page.get_by_test_id("message")
    expect(message).to_have_attribute("data-code", "QUEUE_TOKEN_EXPIRED")
    expect(message).to_contain_text("Join the queue again")
    page.locator("#message-action").click()
    expect(page.get_by_test_id("queue-badge")).to_have_text(re.compile("WAIT|ACTIVE"))


def test_several_seats_held_one_given_back_two_paid_one_cancelled(page: Any, server: RunningServer) -> None:
    from playwright.sync_api import expect

    from devserver.seed import demo_concert

    body = demo_concert(title="E2E purchase", dates=1, seats=20, capacity=10, price=PRICE)
    created = call(server, "POST", "/admin/concerts", "ops", json=body, headers={"Idempotency-Key": "e2e-purchase"})
    assert created.status_code == 201, created.text
    concert_id = created.json()["concertId"]

    page.goto(f"{server.url}/?concert={concert_id}")
    expect(page.get_by_test_id("message")).to_be_hidden()  # no banner before anything has happened
    sign_in_and_join(page, server, concert_id, "dora")
    expect(page.get_by_test_id("queue-badge")).to_have_text("ACTIVE")
    page.locator("[data-testid=schedules] button").first.click()
    seat_map = page.get_by_test_id("seat-map")
    for seat in (12, 13, 14):
        seat_map.locator(f"button[data-seat='{seat}']").click()
        page.get_by_test_id("hold").click()
        expect(seat_map.locator(f"button[data-seat='{seat}']")).to_be_disabled()  # held: taken on the map
    holds = page.locator("[data-testid=hold-line]")
    expect(holds).to_have_count(3)

    # Seat 13 given back: free on the map at once, and for anyone.
    holds.nth(1).get_by_test_id("release").click()
    expect(holds).to_have_count(2)
    expect(page.get_by_test_id("message")).to_contain_text("Seat 13 given back")
    expect(seat_map.locator("button[data-seat='13']")).to_be_enabled()

    page.get_by_test_id("amount").fill("200000")
    page.get_by_test_id("top-up").click()
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"₩\s?200,000"))
    expect(page.get_by_test_id("pay")).to_contain_text("for 2 seats")
    page.get_by_test_id("pay").click()
    expect(page.get_by_test_id("ticket")).to_contain_text("Seats 12, 14 are yours")
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"₩\s?100,000"))

    # My tickets: both PAID; cancel seat 12, the refund lands in the wallet and its history.
    tickets = page.locator("[data-testid=ticket-line]")
    expect(tickets).to_have_count(2)
    tickets.filter(has_text="Seat 12").get_by_test_id("cancel-ticket").click()
    expect(page.get_by_test_id("message")).to_contain_text("Seat 12 cancelled")
    expect(tickets.filter(has_text="Seat 12")).to_contain_text("CANCELLED")
    expect(page.get_by_test_id("balance")).to_have_text(re.compile(r"₩\s?150,000"))
    page.get_by_test_id("history").locator("xpath=..").locator("summary").click()
    expect(page.get_by_test_id("history")).to_contain_text("REFUND +")

    # The API agrees: one payment of two seats, one refund, seat 13 released.
    history = call(server, "GET", "/wallet/history", "dora").json()["items"]
    assert [item["type"] for item in history] == ["REFUND", "PAYMENT", "CHARGE"]
    assert len(history[1]["reservationIds"]) == 2 and history[0]["amount"] == PRICE
    mine = call(server, "GET", "/reservations", "dora").json()["items"]
    assert sorted((r["seatNumber"], r["status"]) for r in mine) == [(12, "CANCELLED"), (13, "RELEASED"), (14, "PAID")]


def test_the_api_docs_render_offline(page: Any, server: RunningServer) -> None:
    from playwright.sync_api import expect

    document = requests.get(f"{server.url}/openapi.json", timeout=TIMEOUT).json()
    operations = sum(len(item) for item in document["paths"].values())
    page.goto(f"{server.url}/docs")
    expect(page.locator(".opblock")).to_have_count(operations)
    expect(page.locator(".info .title")).to_contain_text("Ticketline API")
