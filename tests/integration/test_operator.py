"""An operator's pause, resume and capacity change over HTTP on the local server and DynamoDB Local."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devserver.testing import running_server
from tests.integration.api import TIMEOUT, bearer, create_concert, join
from tests.integration.test_queue import poll

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def cached_state_server() -> Iterator[Any]:
    """The queue state cached for 1 s in each worker, as deployed: a pause reaches a walk-in that late."""
    overrides = {"QueueStateCacheSeconds": str(CACHE_SECONDS)}
    with running_server(parameter_overrides=overrides, workers=4, scheduler=False) as running:
        yield running


def change_queue(server: Any, concert_id: str, operator: str = "ops", **body: Any) -> requests.Response:
    return requests.patch(
        f"{server.url}/admin/concerts/{concert_id}/queue",
        json=body,
        headers=bearer(server, operator, admin=True),
        timeout=TIMEOUT,
    )


def sale(server: Any, concert_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{server.url}/admin/concerts/{concert_id}", headers=bearer(server, "ops", admin=True), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_pause_mid_sale_admits_nobody_until_resume(short_token_server):
    server = short_token_server
    concert_id = create_concert(server, queueCapacity=2)["concertId"]
    tokens = {f"u{i}": join(server, concert_id, f"u{i}")["token"] for i in range(5)}
    paused = change_queue(server, concert_id, operator="ops-1", paused=True)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    time.sleep(2.2)  # the two ACTIVE tokens run out: slots are free, but admission is paused
    server.run_schedule("Expire")
    assert server.run_schedule("Admit")["admitted"] == 0
    polled = [poll(server, concert_id, u, tokens[u]) for u in ("u2", "u3")]
    assert [p.json().get("status") for p in polled] == ["WAIT", "WAIT"], [p.text for p in polled]
    assert join(server, concert_id, "late")["status"] == "WAIT"
    resumed = change_queue(server, concert_id, operator="ops-2", paused=False)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert server.run_schedule("Admit")["admitted"] == 2
    # u2 and u3 are in (their 2 s may run out before a poll on a busy machine: read the bound), u4 still waits.
    assert sale(server, concert_id)["queue"]["admitted"] == 4
    assert poll(server, concert_id, "u4", tokens["u4"]).json()["status"] == "WAIT"
    changes = sale(server, concert_id)["queueChanges"]
    assert [(c["operator"], c["paused"]) for c in changes] == [("ops-1", True), ("ops-2", False)]


def test_a_lowered_capacity_admits_nobody_while_the_live_tokens_fill_it_and_a_raised_one_admits_more(server):
    concert_id = create_concert(server, queueCapacity=4)["concertId"]
    for i in range(9):
        join(server, concert_id, f"c{i}")
    resized = change_queue(server, concert_id, capacity=2)
    assert (resized.status_code, resized.json()["capacity"]) == (200, 2)
    server.run_schedule("Admit")  # (it runs over every concert of this session's server: read this one's figures)
    assert sale(server, concert_id)["queue"]["admitted"] == 4  # 4 live ACTIVE tokens (300 s each), capacity 2
    assert change_queue(server, concert_id, capacity=6).status_code == 200
    server.run_schedule("Admit")
    figures = sale(server, concert_id)
    assert (figures["queue"]["capacity"], figures["queue"]["admitted"]) == (6, 6)
    assert [c["capacity"] for c in figures["queueChanges"]] == [2, 6]


def test_no_walk_in_later_than_the_cache_time_after_a_pause(cached_state_server):
    server = cached_state_server
    concert_id = create_concert(server, queueCapacity=1000)["concertId"]
    for i in range(8):  # every worker caches the open, unpaused state
        assert join(server, concert_id, f"early{i}")["status"] == "ACTIVE"
    assert change_queue(server, concert_id, paused=True).status_code == 200
    paused_at = time.monotonic()
    late_entries = []
    n = 0
    while time.monotonic() - paused_at < CACHE_SECONDS + 1.0:
        entered = join(server, concert_id, f"after{n}")["status"] == "ACTIVE"
        answered = time.monotonic() - paused_at
        if entered and answered > CACHE_SECONDS + 0.2:  # the answer's own latency is the margin
            late_entries.append((n, round(answered, 2)))
        n += 1
    assert not late_entries, late_entries
    assert join(server, concert_id, "later")["status"] == "WAIT"
    assert change_queue(server, concert_id, paused=False).status_code == 200
    time.sleep(CACHE_SECONDS + 0.1)
    assert join(server, concert_id, "after-resume")["status"] == "ACTIVE"  # places under the bound are still there


def test_the_sale_shows_money_taken_and_tickets_cancelled_from_the_stream_and_the_line_from_the_runs(server):
    from tests.integration.api import buyer, hold
    from tests.integration.test_purchase_races import cancel, pay_many
    from tests.integration.test_wallet_payments import charge, user

    concert = create_concert(server, seats=4, schedules=2, queueCapacity=3)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][1]["scheduleId"]  # past the cut-off
    alice = user("alice")
    assert charge(server, alice, 1_000_000).status_code == 200
    headers = buyer(server, concert_id, alice)
    held = [hold(server, headers, schedule_id, n).json()["reservationId"] for n in (1, 2, 3)]
    assert pay_many(server, headers, held).status_code == 201
    assert cancel(server, alice, held[0]).status_code == 200
    for i in range(4):
        join(server, concert_id, f"line-{concert_id}-{i}")  # 4 more, capacity 3 (alice's paid token left): one waits
    server.run_schedule("Admit")
    expected = {"sold": 2, "cancelled": 1, "revenue": 10_002 + 10_003}  # seat n costs 10,000 + n
    deadline = time.monotonic() + 20  # the stream's figures: a second or two behind locally
    while True:
        figures = sale(server, concert_id)
        seen = {key: figures["sales"][key] for key in expected}
        if seen == expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == expected, figures
    assert (figures["queue"]["active"], figures["queue"]["waiting"], figures["queue"]["admitted"]) == (3, 1, 4)
    assert figures["figuresAsOf"]["queue"] is not None
    assert change_queue(server, concert_id, paused=True).status_code == 200
    for i in range(3):
        join(server, concert_id, f"paused-{concert_id}-{i}")
    server.run_schedule("Admit")  # paused: it admits nobody but records the line as it grows
    figures = sale(server, concert_id)
    assert (figures["queue"]["waiting"], figures["queue"]["admitted"], figures["queue"]["paused"]) == (4, 4, True)
