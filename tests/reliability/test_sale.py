"""Sale invariants under concurrency, over HTTP on the local server and DynamoDB Local, checked by the audit."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.reliability.conftest import SCALE, create_concert, ddb_client, record_figures
from tests.support.audit import audit
from tests.support.client import Tally, UserClient

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _active_users(server: Any, concert_id: str, count: int, tally: Tally, prefix: str) -> list[UserClient]:
    users = [UserClient(server, f"{prefix}-{n}", tally) for n in range(count)]
    with ThreadPoolExecutor(SCALE.threads) as pool:
        tokens = list(pool.map(lambda user: user.join(concert_id), users))
    assert all(token and token["status"] == "ACTIVE" for token in tokens), tokens[:3]
    return users


def test_one_seat_many_concurrent_buyers_exactly_one_wins(reliable_server: Any) -> None:
    concert = create_concert(reliable_server, seats=1, capacity=200)
    schedule_id = concert["schedules"][0]["scheduleId"]
    tally = Tally()
    users = _active_users(reliable_server, concert["concertId"], 100, tally, f"race-{schedule_id[:6]}")
    attempts = [users[n % len(users)] for n in range(SCALE.one_seat_attempts)]
    random.shuffle(attempts)
    started = time.monotonic()
    with ThreadPoolExecutor(SCALE.threads) as pool:
        responses = list(pool.map(lambda user: user.hold(schedule_id, 1), attempts))
    elapsed = time.monotonic() - started
    statuses = [r.status_code if r is not None else None for r in responses]
    codes = [r.json()["error"]["code"] for r in responses if r is not None and r.status_code == 409]
    assert statuses.count(201) == 1, {s: statuses.count(s) for s in set(statuses)}
    assert set(codes) <= {"SEAT_UNAVAILABLE"}
    assert not tally.bad, tally.bad[:5]
    report = audit(ddb_client(reliable_server), reliable_server.table_name("TicketlineTable"))
    assert report.ok, report.summary()
    assert report.figures["seats_held"] >= 1
    record_figures(
        "one_seat_race",
        attempts=len(attempts),
        winners=statuses.count(201),
        refused_409=statuses.count(409),
        throttled=statuses.count(429) + statuses.count(503),
        seconds=round(elapsed, 1),
        bad_answers=len(tally.bad),
        violations=len(report.violations),
    )
    for user in users:
        user.close()


def test_a_whole_sale_keeps_every_invariant(sale_server: Any) -> None:
    from tests.reliability.sale import PRICE, run_sale

    sale = run_sale(sale_server, SCALE, capacity=max(10, SCALE.buyers // 2), prefix="sale", operate=True)
    record_figures("sale", **sale.figures())
    assert not sale.tally.bad, sale.tally.bad[:5]
    # ... with the operator's controls: live ACTIVE <= the capacity in force after every run that admitted, no
    # run admitted while paused, no token entered later than QueueStateCacheSeconds after the pause
    assert sale.report.ok, sale.report.summary()
    assert sale.report.figures["admission_runs_checked"] == sale.admit_runs > 9
    # runs ran under the lowered capacity (those that found more live than it admitted nobody: a figure, as how
    # many are live at that moment depends on the machine's pace)
    assert sale.report.figures["runs_under_a_lowered_capacity"] >= 4, sale.figures()
    # the operator's pause, resume and capacity changes are all in the audit trail, with the operator's sub
    trail = requests.get(
        f"{sale_server.url}/admin/concerts/{sale.concert_id}",
        headers={"Authorization": f"Bearer {sale_server.token('ops', admin=True)}"},
        timeout=30,
    ).json()["queueChanges"]
    sent = [
        {"paused": c.get("paused"), "capacity": c.get("capacity"), "operator": "sale-ops"}
        for c in sale.operator_changes
    ]
    assert [{k: c[k] for k in ("paused", "capacity", "operator")} for c in trail] == sent
    assert len(sent) == 3, sale.admit_runs  # the sale lasted past the plan's last change
    assert not sale.entitled_left_waiting
    own = sale.own
    # a released or cancelled seat is sold again: at most one live hold or sale per seat (the audit), more holds
    assert 0 < len(sale.holds_won) <= SCALE.seats + len(sale.released) + len(sale.cancelled)
    # every 201 was a distinct reservation, and every reservation the table holds was answered 201
    kept = ("held", "paid", "released", "cancelled")
    assert sum(own[f"reservations_{status}"] for status in kept) == len(sale.holds_won), own
    assert own["reservations_released"] == len(sale.released) and own["reservations_cancelled"] == len(sale.cancelled)
    assert sale.events["hold_answered_twice"] == 0
    # without faults the availableSeats hint is exact (docs/CATALOG.md: one change per transition)
    assert sale.concert_schedule not in sale.report.hint_drifts, sale.report.hint_drifts
    if sale.payments_enabled:
        # idempotent retries converge to one effect: one payment per key, one ledger entry per paid seat
        assert all(len(ids) == 1 for ids in sale.payments.values()), sale.payments
        assert all(len(ids) == 1 for ids in sale.charge_ids.values())
        assert own["reservations_paid"] + own["reservations_cancelled"] == len(sale.paid_reservations) > 0
        assert own["ledger_payment_entries"] == len(sale.paid_reservations)
        assert own["ledger_charges"] == sum(sale.charges.values())
        # one refund per cancelled ticket, of its price, however often the cancellation was sent
        assert all(refunds == {PRICE} for refunds in sale.cancelled.values()), sale.cancelled
        assert own["ledger_refund_entries"] == len(sale.cancelled) and own["ledger_refunds"] == PRICE * len(
            sale.cancelled
        )
