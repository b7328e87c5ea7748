"""An operator in a real browser: sign in on the operator page, pick a concert, see its line and sales as the API
serves them, pause (the server confirms), resume, change the capacity, meet the API's own error for a bad one, and
watch the chart gain a point per sample. All on the local server."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import pytest

from devserver.testing import RunningServer
from tests.conftest import ROOT
from tests.e2e.test_demo import PRICE, buy_over_http, call

pytestmark = pytest.mark.integration
SCREENSHOT = ROOT / "docs" / "screenshots" / "operator.png"
OPERATOR = "ops-e2e"


def sale(server: RunningServer, concert_id: str) -> dict[str, Any]:
    response = call(server, "GET", f"/admin/concerts/{concert_id}", "ops")
    assert response.status_code == 200, response.text
    return dict(response.json())


def a_sale_with_a_line(server: RunningServer) -> tuple[dict[str, Any], int]:
    """A concert with one seat sold and people waiting (capacity 2); returns it and the sold seat's price."""
    from devserver.seed import demo_concert

    body = demo_concert(title="Operator night", dates=2, seats=20, capacity=2, price=PRICE)
    created = call(server, "POST", "/admin/concerts", "ops", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert created.status_code == 201, created.text
    concert = dict(created.json())
    buy_over_http(server, concert, "carol", seat=3)  # one seat sold (her place frees up)
    for i in range(4):
        call(server, "POST", f"/concerts/{concert['concertId']}/queue/tokens", f"line-{i}")
    server.run_schedule("Expire")
    server.run_schedule("Admit")
    return concert, next(seat["price"] for seat in body["schedules"][0]["seats"] if seat["number"] == 3)


def sign_in_and_watch(page: Any, server: RunningServer, concert_id: str) -> None:
    """Sign in as an operator, the chart sampling every second, and pick the concert from the list."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/operator?sample=1")
    page.get_by_test_id("user").fill(OPERATOR)
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("who")).to_have_text(f"operator {OPERATOR}")
    page.locator(f"[data-testid=concert][data-concert-id='{concert_id}']").click()
    expect(page.get_by_test_id("sale-title")).to_have_text("Operator night")


def the_chart_draws_points(page: Any) -> None:
    """A sample a second: the chart gains points (three series, a circle each per sample)."""
    chart = page.get_by_test_id("chart")
    page.wait_for_function("Number(document.getElementById('chart').dataset.points) >= 4")
    points = int(chart.get_attribute("data-points"))
    assert chart.locator("circle").count() >= 3 * points - 3  # a sample may land between the two reads
    assert chart.locator("polyline").count() == 3
    if os.environ.get("TICKETLINE_SCREENSHOT"):  # `make screenshot`: refresh docs/screenshots/operator.png
        page.locator("#message-close").click()
        page.get_by_test_id("capacity-input").fill("5")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_an_operator_watches_pauses_resumes_and_resizes_a_sale(page: Any, server: RunningServer) -> None:
    from playwright.sync_api import expect

    concert, price = a_sale_with_a_line(server)
    concert_id = concert["concertId"]
    queue = sale(server, concert_id)["queue"]  # no scheduler runs in this server but run_schedule: it stays so
    assert queue["waiting"] > 0 and queue["active"] > 0, queue

    sign_in_and_watch(page, server, concert_id)

    # The page shows what the API serves; the sold seat and its price arrive through the table's stream.
    for name in ("waiting", "active", "admitted", "capacity"):
        expect(page.get_by_test_id(name)).to_have_text(str(queue[name]))
    expect(page.get_by_test_id("paused")).to_have_text("running")
    expect(page.get_by_test_id("sold")).to_have_text("1", timeout=20_000)
    expect(page.get_by_test_id("revenue")).to_have_text(re.compile(rf"₩\s?{price:,}"))
    expect(page.get_by_test_id("free")).to_have_text("39")
    expect(page.get_by_test_id("as-of")).to_contain_text("line as of the admission run")

    message = page.get_by_test_id("message")
    page.get_by_test_id("pause").click()
    expect(message).to_contain_text("paused: true")
    expect(page.get_by_test_id("paused")).to_have_text("PAUSED")
    assert sale(server, concert_id)["queue"]["paused"] is True
    page.get_by_test_id("resume").click()
    expect(message).to_contain_text("paused: false")
    expect(page.get_by_test_id("paused")).to_have_text("running")
    assert sale(server, concert_id)["queue"]["paused"] is False

    page.get_by_test_id("capacity-input").fill("5")
    page.get_by_test_id("set-capacity").click()
    expect(message).to_contain_text("Capacity set to 5")
    expect(page.get_by_test_id("capacity")).to_have_text("5")
    assert sale(server, concert_id)["queue"]["capacity"] == 5
    server.run_schedule("Admit")  # the raised capacity lets the waiters in: the next samples show it
    admitted = sale(server, concert_id)["queue"]
    assert (admitted["waiting"], admitted["active"]) == (0, queue["active"] + queue["waiting"]), admitted
    expect(page.get_by_test_id("waiting")).to_have_text("0")
    expect(page.get_by_test_id("active")).to_have_text(str(admitted["active"]))

    # A capacity the API refuses: its error body, shown as it is, and nothing changed.
    page.get_by_test_id("capacity-input").fill("0")
    page.get_by_test_id("set-capacity").click()
    expect(message).to_have_attribute("data-code", "VALIDATION_ERROR")
    expect(message).to_contain_text("capacity")
    figures = sale(server, concert_id)
    assert figures["queue"]["capacity"] == 5
    assert [(c["operator"], c["paused"], c["capacity"]) for c in figures["queueChanges"]] == [
        (OPERATOR, True, None),
        (OPERATOR, False, None),
        (OPERATOR, None, 5),
    ]
    expect(page.get_by_test_id("changes").locator("li")).to_have_count(3)

    the_chart_draws_points(page)
