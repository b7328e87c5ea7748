"""The purchase on moto (single-threaded: the races are in tests/integration/test_purchase_races.py): several
holds in one payment and its refusal order, release, cancellation with a refund, "my tickets", the ticket limit
and closed dates."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.test_wallet_payments import (
    Sale,
    balance_of,
    charge,
    expire_idempotency_records,
    item,
    ledger,
    no_sleep,
    payment_service,
    settings,
)
from ticketline.errors import (
    CancellationClosed,
    Forbidden,
    IdempotencyKeyReused,
    InsufficientBalance,
    ReservationExpired,
    ReservationNotPayable,
    ReservationNotReleasable,
    ScheduleClosed,
    TicketLimitReached,
    ValidationFailed,
)
from ticketline.models.reservations import HoldIn, ReservationStatus
from ticketline.models.wallet import PaymentIn
from ticketline.repositories.catalog import seat_key
from ticketline.repositories.reservations import HoldOutcome, holds_key, reservation_key, tickets_key
from ticketline.repositories.wallet import wallet_key
from ticketline.services.cancellations import CancellationService
from ticketline.services.wallet import MAX_BALANCE

pytestmark = [
    pytest.mark.usefixtures("aws"),
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time"),
]
DAY = 86_400


def cancellation_service(**changes: Any) -> CancellationService:
    """Sale's date starts in a day: a cut-off of 1 h by default."""
    return CancellationService(settings=settings(**({"cancellation_cutoff_hours": 1} | changes)), sleep=no_sleep)


def pay_all(sale: Sale, user: str, seats: list[int], key: str = "p", **changes: Any) -> Any:
    token = sale.token(user)
    held = [sale.reservations.hold(HoldIn(schedule_id=sale.schedule_id, seat_number=n), user, token) for n in seats]
    request = PaymentIn(reservation_ids=[h.reservation_id for h in held])
    return payment_service(**changes).pay(user, key, request, token), held


# ---- one payment, several holds ----
def test_several_holds_are_paid_in_one_transaction_and_one_ledger_entry(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    paid, held = pay_all(sale, "alice", [1, 2, 3])
    rids = [h.reservation_id for h in held]
    assert (paid.reservation_ids, paid.reservation_id, paid.amount, paid.balance) == (rids, None, 6000, 4000)
    assert all(item(reservation_key(rid))["status"] == "PAID" for rid in rids)
    assert all(item(seat_key(sale.schedule_id, n))["status"] == "SOLD" for n in (1, 2, 3))
    payments = [e for e in ledger("alice") if e["type"] == "PAYMENT"]
    assert len(payments) == 1 and payments[0]["reservationIds"] == rids and payments[0]["amount"] == 6000
    assert item(tickets_key(sale.concert_id, "alice"))["tickets"] == set(rids)
    assert item(holds_key(sale.schedule_id, "alice"))["holds"] == {}


def test_a_retry_with_the_same_key_returns_the_first_answer_even_without_its_record(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    paid, held = pay_all(sale, "alice", [1, 2])
    request = PaymentIn(reservation_ids=[h.reservation_id for h in held])
    expire_idempotency_records()
    charge("alice", 1, "later")
    assert payment_service().pay("alice", "p", request, None) == paid
    with pytest.raises(ReservationNotPayable):
        payment_service().pay("alice", "other", request, sale.token("alice"))
    assert balance_of("alice") == 10_000 - 3000 + 1


def test_all_or_nothing_and_the_refusal_order(clock):
    sale = Sale()
    token = sale.token("alice")
    charge("alice", 1000, "top-up")  # short for any two seats: 402 comes last
    mine = [sale.reservations.hold(HoldIn(schedule_id=sale.schedule_id, seat_number=n), "alice", token) for n in (2, 3)]
    bobs, _ = sale.hold("bob", 4)
    service = payment_service()
    both = [mine[0].reservation_id, mine[1].reservation_id]
    with pytest.raises(Forbidden):  # 403 before 410 and 402
        clock.advance(301)
        service.pay("alice", "k1", PaymentIn(reservation_ids=[*both, bobs.reservation_id]), token)
    with pytest.raises(ReservationExpired):  # 410 before 402
        service.pay("alice", "k2", PaymentIn(reservation_ids=both), token)
    assert balance_of("alice") == 1000
    assert all(item(reservation_key(rid))["status"] == "HELD" for rid in both)


def test_a_payment_past_the_start_is_schedule_closed_before_the_balance(clock):
    sale = Sale(seat_hold_ttl_seconds=2 * DAY, active_token_ttl_seconds=2 * DAY)
    held, token = sale.hold("alice", 5)
    clock.advance(DAY)
    with pytest.raises(ScheduleClosed):  # the balance is 0: 402 would come after
        payment_service(seat_hold_ttl_seconds=2 * DAY).pay(
            "alice", "k", PaymentIn(reservation_id=held.reservation_id), token
        )
    # The token was taken before the start: once the last date has started the concert is off sale, so a new
    # join would be 410 SOLD_OUT before any hold.
    with pytest.raises(ScheduleClosed):
        sale.reservations.hold(HoldIn(schedule_id=sale.schedule_id, seat_number=6), "alice", token)


def test_short_balance_is_402_and_nothing_moves(clock):
    sale = Sale()
    charge("alice", 2999, "top-up")
    with pytest.raises(InsufficientBalance):
        pay_all(sale, "alice", [1, 2])
    assert item(seat_key(sale.schedule_id, 1))["status"] == "HELD" and balance_of("alice") == 2999


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reservationIds": []},
        {"reservationIds": ["a"] * 2},
        {"reservationIds": [f"r{i}" for i in range(11)]},
        {"reservationId": "a", "reservationIds": ["b"]},
    ],
)
def test_payment_bodies_name_one_to_ten_distinct_holds(body):
    with pytest.raises(ValidationError):
        PaymentIn.model_validate(body)


def test_holds_of_two_concerts_are_not_one_payment(clock):
    first, second = Sale(), Sale()
    charge("alice", 10_000, "top-up")
    a, token = first.hold("alice", 1)
    b, _ = second.hold("alice", 1)
    with pytest.raises(ValidationFailed):
        payment_service().pay("alice", "k", PaymentIn(reservation_ids=[a.reservation_id, b.reservation_id]), token)


# ---- the ticket limit ----
def test_the_ticket_limit_counts_paid_tickets_of_the_concert(clock):
    sale = Sale()
    charge("alice", 100_000, "top-up")
    pay_all(sale, "alice", [1, 2], key="p1", max_tickets_per_user=3)
    with pytest.raises(TicketLimitReached):
        pay_all(sale, "alice", [3, 4], key="p2", max_tickets_per_user=3)
    assert item(seat_key(sale.schedule_id, 3))["status"] == "HELD"  # held, not sold: all or nothing
    pay_all(sale, "alice", [5], key="p3", max_tickets_per_user=3)
    sale.reservations.settings = settings(max_tickets_per_user=3)
    with pytest.raises(TicketLimitReached):
        sale.hold("alice", 6)  # owns 3: no more holds either


# ---- release ----
def test_a_release_frees_the_seat_at_once_and_answers_the_same_again(clock):
    sale = Sale()
    held, _ = sale.hold("alice", 1)
    released = sale.reservations.release(held.reservation_id, "alice")
    assert released.status is ReservationStatus.RELEASED
    assert sale.reservations.release(held.reservation_id, "alice") == released
    seat = item(seat_key(sale.schedule_id, 1))
    assert seat["status"] == "FREE" and "reservationId" not in seat
    assert item(holds_key(sale.schedule_id, "alice"))["holds"] == {}
    assert sale.hold("bob", 1)[0].status is ReservationStatus.HELD


def test_only_a_live_hold_of_the_caller_is_released(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    _, (paid,) = pay_all(sale, "alice", [1])
    held, _ = sale.hold("alice", 2)
    with pytest.raises(Forbidden):
        sale.reservations.release(held.reservation_id, "bob")
    with pytest.raises(ReservationNotReleasable):
        sale.reservations.release(paid.reservation_id, "alice")
    clock.advance(301)
    with pytest.raises(ReservationNotReleasable):
        sale.reservations.release(held.reservation_id, "alice")


def test_a_released_hold_is_not_payable(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    held, token = sale.hold("alice", 1)
    sale.reservations.release(held.reservation_id, "alice")
    with pytest.raises(ReservationNotPayable):
        payment_service().pay("alice", "k", PaymentIn(reservation_id=held.reservation_id), token)
    assert balance_of("alice") == 10_000


# ---- cancellation ----
def test_a_cancellation_refunds_frees_the_seat_and_replays(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    _, (paid,) = pay_all(sale, "alice", [3], max_tickets_per_user=1)
    service = cancellation_service()
    cancelled = service.cancel("alice", "c1", paid.reservation_id)
    assert (cancelled.status, cancelled.refund, cancelled.balance) == (ReservationStatus.CANCELLED, 3000, 10_000)
    expire_idempotency_records()
    assert service.cancel("alice", "c1", paid.reservation_id) == cancelled
    with pytest.raises(ReservationNotReleasable):
        service.cancel("alice", "c2", paid.reservation_id)
    assert [e["type"] for e in ledger("alice")] == ["CHARGE", "PAYMENT", "REFUND"]
    assert item(seat_key(sale.schedule_id, 3))["status"] == "FREE"
    assert item(reservation_key(paid.reservation_id))["status"] == "CANCELLED"
    sale.reservations.settings = settings(max_tickets_per_user=1)
    assert sale.hold("alice", 3)[0].status is ReservationStatus.HELD  # the ticket limit got its place back


def test_a_refund_is_paid_past_the_balance_ceiling(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    _, (paid,) = pay_all(sale, "alice", [1])
    from ticketline.db import dynamodb, to_raw

    dynamodb().update_item(
        TableName="TicketlineTable",
        Key=to_raw(wallet_key("alice")),
        UpdateExpression="SET balance = :most",
        ExpressionAttributeValues=to_raw({":most": MAX_BALANCE}),
    )
    assert cancellation_service().cancel("alice", "c", paid.reservation_id).balance == MAX_BALANCE + 1000


def test_cancellation_closes_at_the_cut_off_and_needs_a_paid_ticket(clock):
    sale = Sale()  # starts in one day
    charge("alice", 10_000, "top-up")
    _, (paid,) = pay_all(sale, "alice", [1])
    held, _ = sale.hold("alice", 2)
    with pytest.raises(ReservationNotReleasable):
        cancellation_service().cancel("alice", "c0", held.reservation_id)
    with pytest.raises(Forbidden):
        cancellation_service().cancel("bob", "c1", paid.reservation_id)
    with pytest.raises(CancellationClosed):
        cancellation_service(cancellation_cutoff_hours=24).cancel("alice", "c2", paid.reservation_id)
    assert cancellation_service(cancellation_cutoff_hours=23).cancel("alice", "c3", paid.reservation_id).refund == 1000


# ---- my tickets ----
def test_my_reservations_newest_first_filtered_and_paged(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    made = []
    for seat in (1, 2, 3, 4):
        made.append(sale.hold("alice", seat)[0].reservation_id)
        clock.advance(1)
    sale.hold("bob", 5)
    sale.reservations.release(made[1], "alice")
    first = sale.reservations.mine("alice", 3, None, None)
    assert [r.reservation_id for r in first.items] == made[::-1][:3] and first.next_cursor
    rest = sale.reservations.mine("alice", 3, first.next_cursor, None)
    assert [r.reservation_id for r in rest.items] == [made[0]] and rest.next_cursor is None
    released = sale.reservations.mine("alice", 20, None, ReservationStatus.RELEASED)
    assert [r.reservation_id for r in released.items] == [made[1]]
    clock.advance(400)
    assert len(sale.reservations.mine("alice", 20, None, ReservationStatus.EXPIRED).items) == 3
    with pytest.raises(ValidationFailed):
        sale.reservations.mine("alice", 3, "bm90IG91cnM", None)


def test_a_hold_of_a_started_date_is_refused_and_the_seat_write_refuses_it_too(clock):
    sale = Sale()
    clock.advance(DAY - 1)
    held, _ = sale.hold("alice", 1)  # a second before the start
    bobs_token = sale.token("bob")  # after the start the concert is off sale: a join would be 410 SOLD_OUT
    assert item(seat_key(sale.schedule_id, 1))["startsAt"] == item(reservation_key(held.reservation_id))["startsAt"]
    clock.advance(1)
    with pytest.raises(ScheduleClosed):
        sale.reservations.hold(HoldIn(schedule_id=sale.schedule_id, seat_number=2), "bob", bobs_token)
    seat = sale.reservations.repository.hold_context(sale.schedule_id, 2, "bob").seat
    assert seat is not None
    reservation = sale.reservations.repository.get(held.reservation_id)
    assert reservation is not None
    outcome = sale.reservations.repository.try_hold(  # as if the service's check had passed: the write refuses
        replace(reservation, reservation_id="late", seat_number=2, user_id="bob", created_at=int(clock.current)),
        seat,
        {"late": int(clock.current) + 300},
        None,
        8,
    )
    assert outcome.outcome is HoldOutcome.SEAT_CHANGED
    assert item(seat_key(sale.schedule_id, 2))["status"] == "FREE"


def test_both_body_forms_of_one_hold_are_one_request_and_another_set_reuses_the_key(clock):
    sale = Sale()
    charge("alice", 10_000, "top-up")
    held, token = sale.hold("alice", 1)
    other, _ = sale.hold("alice", 2)
    service = payment_service()
    first = service.pay("alice", "k", PaymentIn(reservation_id=held.reservation_id), token)
    assert service.pay("alice", "k", PaymentIn(reservation_ids=[held.reservation_id]), token) == first
    with pytest.raises(IdempotencyKeyReused):
        service.pay("alice", "k", PaymentIn(reservation_ids=[held.reservation_id, other.reservation_id]), token)
    assert balance_of("alice") == 9000
