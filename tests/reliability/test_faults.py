"""Under a few percent of injected DynamoDB faults (devserver/faults.py in every worker of the server) the sale
keeps every invariant, every client gets a meaningful answer (2xx, 4xx, or 429/503 with Retry-After; never a
raw 500) and idempotent retries converge to exactly one effect."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devserver.faults import read_fault_log
from tests.reliability.conftest import FAULT_SPEC, SCALE, create_concert, ddb_client, record_figures
from tests.support.audit import audit
from tests.support.client import Tally, UserClient

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_the_sale_keeps_its_invariants_under_injected_faults(faulty_server: Any) -> None:
    from tests.reliability.sale import run_sale

    sale = run_sale(faulty_server, SCALE, capacity=max(10, SCALE.buyers // 2), prefix="faulty")
    injected = read_fault_log(faulty_server.fault_log)
    record_figures(
        "sale_under_faults",
        faults=FAULT_SPEC,
        **{f"injected_{kind}": injected[kind] for kind in ("throttle", "conflict", "internal", "timeout_after_commit")},
        **sale.figures(),
    )
    assert not sale.tally.bad, sale.tally.bad[:5]
    assert sale.report.ok, sale.report.summary()  # with live ACTIVE <= capacity after every run that admitted
    assert not sale.entitled_left_waiting
    assert injected["throttle"] and injected["internal"] and injected["timeout_after_commit"]
    assert 0 < len(sale.holds_won) <= SCALE.seats + len(sale.released) + len(sale.cancelled)
    own = sale.own
    # A hold whose answer was lost and retried by botocore still yields one reservation, answered once.
    assert sale.events["hold_answered_twice"] == 0
    kept = ("held", "paid", "released", "cancelled")
    assert sum(own[f"reservations_{status}"] for status in kept) >= len(sale.holds_won)
    if sale.payments_enabled:
        assert all(len(ids) == 1 for ids in sale.payments.values()), sale.payments
        assert all(len(ids) == 1 for ids in sale.charge_ids.values())
        paid = own["reservations_paid"] + own["reservations_cancelled"]
        assert own["ledger_payment_entries"] == paid >= len(sale.paid_reservations)
        assert own["ledger_refund_entries"] == own["reservations_cancelled"] >= len(sale.cancelled)
        assert own["ledger_charges"] >= sum(sale.charges.values())


def test_one_seat_race_under_faults_has_one_winner(faulty_server: Any) -> None:
    concert = create_concert(faulty_server, seats=1, capacity=200)
    schedule_id = concert["schedules"][0]["scheduleId"]
    tally = Tally()
    users = [UserClient(faulty_server, f"frace-{schedule_id[:6]}-{n}", tally) for n in range(60)]
    with ThreadPoolExecutor(SCALE.threads) as pool:
        joined = list(pool.map(lambda user: user.join(concert["concertId"]), users))
        active = [user for user, token in zip(users, joined, strict=True) if token and token["status"] == "ACTIVE"]
        attempts = [active[n % len(active)] for n in range(SCALE.one_seat_attempts // 2)]
        responses = list(pool.map(lambda user: user.hold(schedule_id, 1), attempts))
    statuses = [r.status_code for r in responses if r is not None]
    assert statuses.count(201) == 1, sorted(set(statuses))
    assert set(statuses) <= {201, 409, 429, 503}
    assert not tally.bad, tally.bad[:5]
    report = audit(ddb_client(faulty_server), faulty_server.table_name("TicketlineTable"))
    assert report.ok, report.summary()
    for user in users:
        user.close()
