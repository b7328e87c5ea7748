"""The purchase's races over HTTP on DynamoDB Local (moto is not atomic under threads): release vs payment,
cancellation vs a new hold of the same seat, holds vs the date's start, a payment of several seats vs one of
them lapsing. Each ends with the table read directly: exactly one side won, and nothing is half done."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from threading import Barrier
from typing import Any

import pytest
import requests

from tests.integration.api import TIMEOUT, bearer, buyer, create_concert, error_code, hold, operator, table
from tests.integration.test_wallet_payments import balance, charge, user

pytestmark = pytest.mark.integration
ROUNDS = 6


def pay_many(server: Any, headers: dict[str, str], reservation_ids: list[str]) -> requests.Response:
    return requests.post(
        f"{server.url}/payments",
        json={"reservationIds": reservation_ids},
        headers=headers | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )


def release(server: Any, who: str, reservation_id: str) -> requests.Response:
    return requests.delete(f"{server.url}/reservations/{reservation_id}", headers=bearer(server, who), timeout=TIMEOUT)


def cancel(server: Any, who: str, reservation_id: str) -> requests.Response:
    return requests.post(
        f"{server.url}/reservations/{reservation_id}/cancellation",
        headers=bearer(server, who) | {"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )


def seat(server: Any, schedule_id: str, number: int) -> dict[str, Any]:
    return dict(table(server).get_item(Key={"PK": f"SCHEDULE#{schedule_id}", "SK": f"SEAT#{number:05d}"})["Item"])


def reservation(server: Any, reservation_id: str) -> dict[str, Any]:
    return dict(table(server).get_item(Key={"PK": f"RESERVATION#{reservation_id}", "SK": "RESERVATION"})["Item"])


def together(*calls: Any) -> list[requests.Response]:
    """Run the calls at once (a barrier releases them together)."""
    barrier = Barrier(len(calls))

    def run(call: Any) -> requests.Response:
        barrier.wait()
        answer: requests.Response = call()
        return answer

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_release_racing_a_payment_exactly_one_wins(server):
    concert = create_concert(server, seats=ROUNDS)
    schedule_id = concert["schedules"][0]["scheduleId"]
    alice = user("alice")
    assert charge(server, alice, 1_000_000).status_code == 200
    wins = {"released": 0, "paid": 0}
    for number in range(1, ROUNDS + 1):
        headers = buyer(server, concert["concertId"], alice)  # a payment expires the token: a fresh one each round
        rid = hold(server, headers, schedule_id, number).json()["reservationId"]
        released, paid = together(partial(release, server, alice, rid), partial(pay_many, server, headers, [rid]))
        status = reservation(server, rid)["status"]
        if paid.status_code == 201:
            assert (released.status_code, error_code(released)) == (409, "RESERVATION_NOT_RELEASABLE")
            assert status == "PAID" and seat(server, schedule_id, number)["status"] == "SOLD"
            wins["paid"] += 1
        else:
            assert released.status_code == 200 and released.json()["status"] == "RELEASED", released.text
            assert (paid.status_code, error_code(paid)) == (409, "RESERVATION_NOT_PAYABLE"), paid.text
            assert status == "RELEASED" and seat(server, schedule_id, number)["status"] == "FREE"
            wins["released"] += 1
    prices = sum(10_000 + n for n in range(1, ROUNDS + 1))
    paid_total = 1_000_000 - balance(server, alice)
    assert sum(wins.values()) == ROUNDS and 0 <= paid_total <= prices


def test_a_cancellation_racing_a_new_hold_of_its_seat(server):
    concert = create_concert(server, seats=ROUNDS, schedules=2)
    schedule_id = concert["schedules"][1]["scheduleId"]  # in two days: past the default 24 h cut-off
    alice, bob = user("alice"), user("bob")
    assert charge(server, alice, 1_000_000).status_code == 200
    taken = 0
    for number in range(1, ROUNDS + 1):
        rid = hold(server, buyer(server, concert["concertId"], alice), schedule_id, number).json()["reservationId"]
        assert pay_many(server, buyer(server, concert["concertId"], alice), [rid]).status_code == 201
        bobs = buyer(server, concert["concertId"], bob)
        cancelled, held = together(
            partial(cancel, server, alice, rid), partial(hold, server, bobs, schedule_id, number)
        )
        assert cancelled.status_code == 200 and cancelled.json()["refund"] == 10_000 + number, cancelled.text
        assert reservation(server, rid)["status"] == "CANCELLED"
        after = seat(server, schedule_id, number)
        if held.status_code == 201:  # after the cancellation: the seat is bob's hold, never a sold seat taken
            assert after["status"] == "HELD" and after["reservationId"] == held.json()["reservationId"]
            taken += 1
        else:  # before it: refused while SOLD, and the seat is free now
            assert (held.status_code, error_code(held)) == (409, "SEAT_UNAVAILABLE"), held.text
            assert after["status"] == "FREE"
    assert balance(server, alice) == 1_000_000  # every payment refunded once
    assert 0 <= taken <= ROUNDS


def test_holds_racing_the_dates_start_never_sell(server):
    """A date starting in a few seconds: holds keep coming until it starts; none after the start is held, and
    those made just before it cannot be paid once it has started."""
    seats = 40
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    body = {
        "title": "Now",
        "schedules": [
            {
                "startsAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "seats": [{"number": n, "price": 100} for n in range(1, seats + 1)],
            }
        ],
    }
    created = requests.post(f"{server.url}/admin/concerts", json=body, headers=operator(server), timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    concert_id, schedule_id = created.json()["concertId"], created.json()["schedules"][0]["scheduleId"]
    buyers = [user("early") for _ in range(4)]
    for who in buyers:
        assert charge(server, who, 100_000).status_code == 200
    headers = {who: buyer(server, concert_id, who) for who in buyers}

    def hold_until_closed(index: int) -> list[tuple[float, requests.Response]]:
        who, answers = buyers[index], []
        # At most 3 holds fit before the start (at -1.4, -0.9, -0.4 s): never MaxHoldsPerSchedule (4), however
        # fast the server answers, so every refusal is the date's.
        time.sleep(max(0.0, start.timestamp() - 1.4 - time.time()))
        for number in range(index + 1, seats + 1, len(buyers)):
            sent = time.time()
            answers.append((sent, hold(server, headers[who], schedule_id, number)))
            if answers[-1][1].status_code == 409:
                break
            time.sleep(0.5)
        return answers

    with ThreadPoolExecutor(max_workers=len(buyers)) as pool:
        results = list(pool.map(hold_until_closed, range(len(buyers))))
    for sent, answer in (pair for answers in results for pair in answers):
        if answer.status_code == 201:
            assert sent < start.timestamp(), "a hold sent after the start was accepted"
        else:
            assert (answer.status_code, error_code(answer)) == (409, "SCHEDULE_CLOSED"), answer.text
    assert all(answers[-1][1].status_code == 409 for answers in results), "holds ran out before the start"
    assert any(a.status_code == 201 for answers in results for _, a in answers), "the set-up outran the start"
    time.sleep(max(0.0, start.timestamp() + 1 - time.time()))
    for index, who in enumerate(buyers):
        held = [a.json()["reservationId"] for _, a in results[index] if a.status_code == 201]
        if held:
            paid = pay_many(server, headers[who], held)
            assert (paid.status_code, error_code(paid)) == (409, "SCHEDULE_CLOSED"), paid.text
        assert balance(server, who) == 100_000
    statuses = [seat(server, schedule_id, n)["status"] for n in range(1, seats + 1)]
    assert "SOLD" not in statuses


def test_a_payment_of_several_seats_racing_one_of_them_lapsing_is_all_or_nothing(short_hold_server):
    """Holds last 2 s: three seats held a second apart, paid when the first is about to lapse while another
    buyer tries to take that seat over. Either all three are sold to the payer, or none and the money stays."""
    server = short_hold_server
    outcomes = set()
    for _ in range(ROUNDS):
        concert = create_concert(server, seats=3)
        schedule_id = concert["schedules"][0]["scheduleId"]
        alice, bob = user("alice"), user("bob")
        assert charge(server, alice, 100_000).status_code == 200
        headers = buyer(server, concert["concertId"], alice)
        rids = []
        for number in (1, 2, 3):
            rids.append(hold(server, headers, schedule_id, number).json()["reservationId"])
            time.sleep(0.4)
        lapses_at = int(reservation(server, rids[0])["holdExpiresAt"])
        bobs = buyer(server, concert["concertId"], bob)
        time.sleep(max(0.0, lapses_at - time.time() - 0.05))
        paid, took = together(
            partial(pay_many, server, headers, rids), partial(_take_over, server, bobs, schedule_id, lapses_at)
        )
        seats = [seat(server, schedule_id, n) for n in (1, 2, 3)]
        sold = [s["status"] == "SOLD" and s.get("reservationId") in rids for s in seats]
        if paid.status_code == 201:
            assert all(sold) and balance(server, alice) == 100_000 - paid.json()["amount"]
            assert took.status_code == 409
        else:
            assert (paid.status_code, error_code(paid)) == (410, "RESERVATION_EXPIRED"), paid.text
            assert not any(sold) and balance(server, alice) == 100_000
            assert {reservation(server, rid)["status"] for rid in rids} == {"HELD"}
        outcomes.add(paid.status_code)
    assert outcomes <= {201, 410}


def _take_over(server: Any, headers: dict[str, str], schedule_id: str, lapses_at: int) -> requests.Response:
    """Bob tries seat 1 until just after its hold lapses (or he gets it)."""
    while True:
        answer = hold(server, headers, schedule_id, 1)
        if answer.status_code == 201 or time.time() > lapses_at + 0.5:
            return answer
        time.sleep(0.05)
