"""A simulated on-sale over HTTP: buyers join the queue, wait to be admitted, charge their wallets, race for
seats and pay, some retrying with the same Idempotency-Key; the scheduler admits on a timer and the
admission is checked after every run. Bounded in threads, attempts and time; loopback only."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.reliability.conftest import SALE_DEADLINE_SECONDS, Scale, create_concert, ddb_client
from tests.support.audit import (
    AdmissionRunRecord,
    AuditReport,
    admissions,
    audit_items,
    audit_operator_controls,
    entry_amount,
    entry_type,
    scan_table,
    wallet_owner,
)
from tests.support.client import Tally, UserClient, new_key
from tests.support.streams import settle_hint

PRICE = 10_000
ADMIT_EVERY_SECONDS = 0.5
DUPLICATE_RATE = 0.25  # share of charges, payments and cancellations sent twice with the same Idempotency-Key
RELEASE_RATE = 0.15  # share of holds given back instead of paid (the seat goes back on sale at once)
CANCEL_RATE = 0.2  # share of paid tickets cancelled and refunded (the seat goes back on sale at once)


@dataclass
class SaleResult:
    tally: Tally
    report: AuditReport
    concert_id: str
    concert_schedule: str
    capacity: int
    seconds: float
    payments_enabled: bool
    admit_runs: int = 0
    max_live_active: int = 0
    runs: list[AdmissionRunRecord] = field(default_factory=list)  # the audit checks each against the controls
    operator_changes: list[dict[str, Any]] = field(default_factory=list)  # the bodies sent, in order
    entitled_left_waiting: list[str] = field(default_factory=list)
    holds_won: set[str] = field(default_factory=set)
    hold_attempts: int = 0
    charges: dict[str, int] = field(default_factory=dict)  # key -> amount, for keys answered 2xx
    charge_ids: dict[str, set[str]] = field(default_factory=dict)  # key -> chargeIds seen
    payments: dict[str, set[str]] = field(default_factory=dict)  # key -> paymentIds seen
    paid_reservations: set[str] = field(default_factory=set)
    released: set[str] = field(default_factory=set)
    cancelled: dict[str, set[int]] = field(default_factory=dict)  # reservationId -> refunds answered
    events: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)  # this sale's items in the table (others share it)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def figures(self) -> dict[str, Any]:
        return {
            "buyers_requests": self.tally.total,
            "hold_attempts": self.hold_attempts,
            "holds_won": len(self.holds_won),
            "paid": len(self.paid_reservations),
            "released": len(self.released),
            "cancelled": len(self.cancelled),
            "charges": len(self.charges),
            "duplicate_sends": self.events["duplicate"],
            "admit_runs": self.admit_runs,
            "capacity": self.capacity,
            "max_live_active": self.max_live_active,
            "answers_429_503": self.tally.count(" 429") + self.tally.count(" 503"),
            "bad_answers": len(self.tally.bad),
            "violations": len(self.report.violations),
            "runs_under_a_lowered_capacity": self.report.figures["runs_under_a_lowered_capacity"],
            "runs_held_by_a_lowered_capacity": self.report.figures["runs_held_by_a_lowered_capacity"],
            "available_seats_hint_off_by": self.report.hint_drifts.get(self.concert_schedule, 0),
            "seconds": round(self.seconds, 1),
        }


def payments_available(server: Any) -> bool:
    """True once issue 4's routes are served (404 NOT_FOUND "No route" before)."""
    response = requests.post(f"{server.url}/payments", json={}, timeout=30)
    return response.status_code != 404


def operator_plan(capacity: int) -> dict[int, dict[str, Any]]:
    """Before which admission runs the operator changes the queue: pause for two runs, resume at a capacity of 1
    (below what a busy sale has live: runs admit nobody until the live tokens are under it), then raise it back."""
    return {
        3: {"paused": True},
        5: {"paused": False, "capacity": 1},
        9: {"capacity": capacity},
    }


def _change_queue(server: Any, concert_id: str, body: dict[str, Any]) -> None:
    response = requests.patch(
        f"{server.url}/admin/concerts/{concert_id}/queue",
        json=body,
        headers={"Authorization": f"Bearer {server.token('sale-ops', admin=True)}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def run_sale(  # noqa: PLR0915 - the sale's threads share its state
    server: Any, scale: Scale, *, capacity: int | None = None, prefix: str = "buyer", operate: bool = False
) -> SaleResult:
    """`operate`: an operator pauses, resumes and resizes the queue mid-sale (operator_plan); the audit checks every
    run against the pause and the capacity in force at it, and every token's entry against the pauses."""
    payments = payments_available(server)
    # Without payments nobody leaves: then everyone must fit at once.
    capacity = capacity if (capacity and payments) else scale.buyers
    # Two days ahead: cancellations stay open (the cut-off is 24 h before the date by default).
    concert = create_concert(server, seats=scale.seats, capacity=capacity, price=PRICE, first_in_days=2)
    concert_id, schedule_id = concert["concertId"], concert["schedules"][0]["scheduleId"]
    client, table = ddb_client(server), server.table_name("TicketlineTable")
    tally = Tally()
    result = SaleResult(tally, AuditReport(), concert_id, schedule_id, capacity, 0.0, payments)
    started = time.monotonic()
    deadline = started + SALE_DEADLINE_SECONDS
    done = threading.Event()

    plan = operator_plan(capacity) if operate else {}
    bound = capacity

    def scheduler() -> None:
        nonlocal bound
        while not done.wait(ADMIT_EVERY_SECONDS):
            if change := plan.get(result.admit_runs):
                _change_queue(server, concert_id, change)
                result.operator_changes.append(change)
            started = time.time()
            try:
                server.run_schedule("Admit")
            except requests.RequestException as error:  # a faulty run: the next one repairs (checked below)
                result.events[f"admit_failed {type(error).__name__}"] += 1
                continue
            state = admissions(client, table)[concert_id]
            result.admit_runs += 1
            result.max_live_active = max(result.max_live_active, state.live_active)
            result.runs.append(AdmissionRunRecord(concert_id, started, bound, state.admit_bound, state.live_active))
            bound = state.admit_bound

    attempts_each = scale.hold_attempts // scale.buyers * 2  # losers try more; the total is capped below
    result.events["attempt_cap"] = scale.hold_attempts

    def buyer(n: int) -> None:
        rng = random.Random(n)
        user = UserClient(server, f"{prefix}-{concert_id[:6]}-{n}", tally)
        try:
            _buy(user, rng, result, concert_id, schedule_id, scale.seats, attempts_each, deadline)
        finally:
            user.close()

    admitting = threading.Thread(target=scheduler, daemon=True)
    admitting.start()
    try:
        with ThreadPoolExecutor(scale.threads) as pool:
            for future in [pool.submit(buyer, n) for n in range(scale.buyers)]:
                future.result()
    finally:
        done.set()
        admitting.join(timeout=60)
    result.seconds = time.monotonic() - started
    server.run_schedule("Admit")
    final = admissions(client, table)[concert_id]
    if final.entitled_waiting:
        result.entitled_left_waiting.append(f"{final.entitled_waiting} WAIT tokens under the bound")
    _audit(server, result, f"{prefix}-{concert_id[:6]}-")
    return result


def _audit(server: Any, result: SaleResult, users: str) -> None:
    client, table = ddb_client(server), server.table_name("TicketlineTable")
    items = _settled_items(client, table, result.concert_schedule)
    max_holds = int(server.parameters.get("MaxHoldsPerSchedule", 4))
    max_tickets = int(server.parameters.get("MaxTicketsPerUser", 8))
    result.report = audit_items(items, max_holds=max_holds, max_tickets=max_tickets)
    audit_operator_controls(
        items,
        result.runs,
        ttl_seconds=int(server.parameters["ActiveTokenTtlSeconds"]),
        cache_seconds=float(server.parameters.get("QueueStateCacheSeconds", 1)),
        report=result.report,
    )
    _count_own(result, items, users)


def _settled_items(client: Any, table: str, schedule_id: str) -> list[dict[str, Any]]:
    """The table once the stream consumer has caught up with the last hold (a second or two behind)."""
    settle_hint(client, table, schedule_id)
    return scan_table(client, table)


def _count_own(result: SaleResult, items: list[dict[str, Any]], users: str) -> None:
    """This sale's reservations and its buyers' money (the table is shared with other tests)."""
    for item in items:
        if item.get("SK") == "RESERVATION" and item.get("concertId") == result.concert_id:
            result.own[f"reservations_{str(item['status']).lower()}"] += 1
        elif str(item.get("PK", "")).startswith(f"WALLET#{users}") and entry_type(item) in (
            "CHARGE",
            "PAYMENT",
            "REFUND",
        ):
            result.own[f"ledger_{entry_type(item).lower()}s"] += entry_amount(item)
            result.own[f"ledger_{entry_type(item).lower()}_entries"] += 1
        elif str(item.get("PK", "")).startswith(f"WALLET#{users}") and wallet_owner(item) and "balance" in item:
            result.own["balances"] += int(item["balance"])


def _buy(  # noqa: PLR0917
    user: UserClient,
    rng: random.Random,
    result: SaleResult,
    concert_id: str,
    schedule_id: str,
    seats: int,
    attempts: int,
    deadline: float,
) -> None:
    joined = user.join(concert_id)
    if joined is None:
        return
    status = joined["status"]
    while status == "WAIT" and time.monotonic() < deadline:
        time.sleep(min(0.3, rng.uniform(0.1, 0.3)))
        response = user.position(concert_id)
        if response is None or response.status_code != 200:
            return
        status = response.json()["status"]
    if status != "ACTIVE":
        return
    if result.payments_enabled:
        _charge(user, rng, result, PRICE + rng.choice((0, 0, 5_000)))
    reservation_id = None
    for _ in range(attempts):
        free = user.seats(concert_id, schedule_id)
        seat = rng.choice(free) if free and rng.random() < 0.7 else rng.randint(1, seats)
        with result.lock:
            if result.hold_attempts >= result.events["attempt_cap"]:
                break
            result.hold_attempts += 1
        response = user.hold(schedule_id, seat)
        if response is not None and response.status_code == 201:
            reservation_id = response.json()["reservationId"]
            with result.lock:
                if reservation_id in result.holds_won:
                    result.events["hold_answered_twice"] += 1
                result.holds_won.add(reservation_id)
            break
    if reservation_id is None or not result.payments_enabled:
        return
    if rng.random() < RELEASE_RATE:
        _release(user, rng, result, reservation_id)
    elif _pay(user, rng, result, reservation_id) and rng.random() < CANCEL_RATE:
        _cancel(user, rng, result, reservation_id)


def _send_maybe_twice(rng: random.Random, result: SaleResult, send: Any) -> list[requests.Response]:
    """Send once, or twice with the same key (at once, from two threads, or one after the other)."""
    if rng.random() >= DUPLICATE_RATE:
        response = send()
        return [response] if response is not None else []
    with result.lock:
        result.events["duplicate"] += 1
    if rng.random() < 0.5:
        with ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(lambda _: send(), range(2)))
    else:
        responses = [send(), send()]
    return [r for r in responses if r is not None]


def _charge(user: UserClient, rng: random.Random, result: SaleResult, amount: int) -> None:
    key = new_key()
    for response in _send_maybe_twice(rng, result, lambda: user.charge(amount, key)):
        if response.status_code in (200, 201):
            with result.lock:
                result.charges[key] = amount
                result.charge_ids.setdefault(key, set()).add(str(response.json().get("chargeId")))


def _pay(user: UserClient, rng: random.Random, result: SaleResult, reservation_id: str) -> bool:
    key = new_key()
    paid = False
    for response in _send_maybe_twice(rng, result, lambda: user.pay(reservation_id, key)):
        if response.status_code == 201:
            paid = True
            with result.lock:
                result.payments.setdefault(key, set()).add(str(response.json().get("paymentId")))
                result.paid_reservations.add(reservation_id)
        elif response.status_code == 409:
            with result.lock:
                result.events[f"pay_409 {response.json()['error']['code']}"] += 1
    return paid


def _release(user: UserClient, rng: random.Random, result: SaleResult, reservation_id: str) -> None:
    """Give the hold back, sometimes twice (the second answers the same 200)."""
    for _ in range(1 + (rng.random() < DUPLICATE_RATE)):
        response = user.release(reservation_id)
        if response is not None and response.status_code == 200:
            with result.lock:
                result.released.add(reservation_id)
                result.events[f"release_status {response.json()['status']}"] += 1


def _cancel(user: UserClient, rng: random.Random, result: SaleResult, reservation_id: str) -> None:
    key = new_key()
    for response in _send_maybe_twice(rng, result, lambda: user.cancel(reservation_id, key)):
        if response.status_code == 200:
            with result.lock:
                result.cancelled.setdefault(reservation_id, set()).add(int(response.json()["refund"]))
