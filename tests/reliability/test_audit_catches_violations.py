"""The audit is a real check: on a deliberately broken store it reports the violation (moto, in-process).

Each test builds a clean sale with the real services, shows the audit passes, then breaks one thing, either
by writing a corrupt item (a double sale, an unbalanced ledger, ...) or by running a repository whose
condition was dropped (a non-atomic store), and asserts the audit names the violation.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.audit import audit, audit_items, scan_table
from ticketline import clock as ticketline_clock
from ticketline.db import to_raw

pytestmark = pytest.mark.usefixtures("aws", "clock")

TABLE = "TicketlineTable"
DAY = 86_400


def _client() -> Any:
    return boto3.client("dynamodb")


def _put(item: dict[str, Any]) -> None:
    _client().put_item(TableName=TABLE, Item=to_raw(item))


def _sale(seats: int = 3, capacity: int = 10) -> tuple[Any, str]:
    from ticketline.models.catalog import ConcertIn
    from ticketline.services.catalog import CatalogService

    now = ticketline_clock.now()
    body = {
        "title": "Audit night",
        "queueCapacity": capacity,
        "schedules": [
            {
                "startsAt": ticketline_clock.to_iso(now + DAY),
                "seats": [{"number": n, "price": 5000} for n in range(1, seats + 1)],
            }
        ],
    }
    concert = CatalogService().create_concert(ConcertIn.model_validate(body))
    return concert, concert.schedules[0].schedule_id


def _hold(concert: Any, schedule_id: str, user: str, seat: int) -> Any:
    from ticketline.models.reservations import HoldIn
    from ticketline.services.queue import QueueService
    from ticketline.services.reservations import ReservationService

    issued, _ = QueueService().issue(concert.concert_id, user)
    return ReservationService().hold(
        HoldIn.model_validate({"scheduleId": schedule_id, "seatNumber": seat}), user, issued.token
    )


def _assert_reports(fragment: str) -> None:
    report = audit(_client(), TABLE, now=ticketline_clock.now())
    assert not report.ok
    assert any(fragment in violation for violation in report.violations), report.summary()


def test_a_clean_sale_passes(clock: Any) -> None:
    concert, schedule_id = _sale()
    _hold(concert, schedule_id, "alice", 1)
    _hold(concert, schedule_id, "bob", 2)
    report = audit(_client(), TABLE, now=clock())
    assert report.ok, report.summary()
    assert report.figures["seats_held"] == 2 and report.figures["reservations_held"] == 2


def test_a_hold_repository_without_its_seat_condition_double_books_and_the_audit_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A non-atomic store: two buyers who read the seat FREE at the same moment both "win" it."""
    from ticketline.models.catalog import SeatStatus
    from ticketline.repositories import reservations
    from ticketline.repositories.reservations import HoldContext, ReservationRepository

    concert, schedule_id = _sale()
    real_context = ReservationRepository.hold_context
    real_transact = reservations.transact

    def stale_context(self: Any, *args: Any) -> HoldContext:  # both read before either writes
        context = real_context(self, *args)
        assert context.seat is not None
        free = type(context.seat)(**{**_fields(context.seat), "status": SeatStatus.FREE, "reservation_id": None})
        return HoldContext(schedule=context.schedule, seat=free, holds=context.holds)

    def unconditional(items: list[Any]) -> Any:  # the bug: the seat's condition dropped
        for entry in items:
            for operation in entry.values():
                if str(operation.get("Key", {}).get("SK", {}).get("S", "")).startswith("SEAT#"):
                    operation.pop("ConditionExpression", None)
                    for name in [n for n in operation["ExpressionAttributeValues"] if n in (":free", ":seen", ":now")]:
                        del operation["ExpressionAttributeValues"][name]
                    operation.pop("ReturnValuesOnConditionCheckFailure", None)
        return real_transact(items)

    monkeypatch.setattr(ReservationRepository, "hold_context", stale_context)
    monkeypatch.setattr(reservations, "transact", unconditional)
    _hold(concert, schedule_id, "alice", 1)
    _hold(concert, schedule_id, "bob", 1)
    _assert_reports("held by two")


def test_a_double_sold_seat_is_reported() -> None:
    concert, schedule_id = _sale()
    first = _hold(concert, schedule_id, "alice", 1)
    items = scan_table(_client(), TABLE)
    reservation = next(i for i in items if i.get("reservationId") == first.reservation_id and i["SK"] == "RESERVATION")
    seat = next(i for i in items if i["PK"] == f"SCHEDULE#{schedule_id}" and i["SK"] == "SEAT#00001")
    _put({**seat, "status": "SOLD"})
    for rid, user in ((first.reservation_id, "alice"), ("forged-second-sale", "bob")):
        _put({**reservation, "PK": f"RESERVATION#{rid}", "reservationId": rid, "userId": user, "status": "PAID"})
        _put({"PK": f"WALLET#{user}", "SK": "LEDGER#c1", "type": "CHARGE", "amount": 5000})
        _put({"PK": f"WALLET#{user}", "SK": f"LEDGER#p-{rid}", "type": "PAYMENT", "amount": 5000, "reservationId": rid})
        _put({"PK": f"WALLET#{user}", "SK": "BALANCE", "balance": 0})
    _assert_reports("SOLD twice")


def test_an_unbalanced_ledger_and_a_negative_balance_are_reported() -> None:
    _put({"PK": "WALLET#carol", "SK": "BALANCE", "balance": 7000})
    _put({"PK": "WALLET#carol", "SK": "LEDGER#c1", "type": "CHARGE", "amount": 5000})
    _assert_reports("ledger sums to 5000")
    _assert_reports("money not conserved")
    _put({"PK": "WALLET#dave", "SK": "BALANCE", "balance": -100})
    _assert_reports("negative balance")


def test_a_sale_without_its_payment_entry_is_reported() -> None:
    concert, schedule_id = _sale()
    held = _hold(concert, schedule_id, "erin", 2)
    items = scan_table(_client(), TABLE)
    reservation = next(i for i in items if i.get("reservationId") == held.reservation_id and i["SK"] == "RESERVATION")
    seat = next(i for i in items if i["PK"] == f"SCHEDULE#{schedule_id}" and i["SK"] == "SEAT#00002")
    _put({**reservation, "status": "PAID"})
    _put({**seat, "status": "SOLD"})
    _assert_reports("payment entries")


def test_a_token_left_active_after_payment_is_reported() -> None:
    concert, schedule_id = _sale()
    held = _hold(concert, schedule_id, "frank", 3)
    items = scan_table(_client(), TABLE)
    reservation = next(i for i in items if i.get("reservationId") == held.reservation_id and i["SK"] == "RESERVATION")
    seat = next(i for i in items if i["PK"] == f"SCHEDULE#{schedule_id}" and i["SK"] == "SEAT#00003")
    _put({**reservation, "status": "PAID"})
    _put({**seat, "status": "SOLD"})
    _put({"PK": "WALLET#frank", "SK": "LEDGER#c", "type": "CHARGE", "amount": 5000})
    _put(
        {
            "PK": "WALLET#frank",
            "SK": "LEDGER#p",
            "type": "PAYMENT",
            "amount": 5000,
            "reservationId": held.reservation_id,
        }
    )
    _put({"PK": "WALLET#frank", "SK": "BALANCE", "balance": 0})
    _assert_reports("still ACTIVE after its owner paid")


def test_admission_beyond_capacity_is_reported(clock: Any) -> None:
    concert, _ = _sale(capacity=2)
    from ticketline.services.queue import QueueService

    for user in ("u1", "u2", "u3"):
        QueueService().issue(concert.concert_id, user)
    items = scan_table(_client(), TABLE)
    assert audit_items(items, now=clock()).ok
    waiting = next(i for i in items if i.get("status") == "WAIT")
    forced = {k: v for k, v in waiting.items() if k not in ("GSI1PK", "GSI1SK")}
    _put(
        forced
        | {
            "status": "ACTIVE",
            "activeUntil": int(clock()) + 300,
            "GSI2PK": f"ACTIVE#{concert.concert_id}",
            "GSI2SK": int(clock()) + 300,
        }
    )
    _assert_reports("live ACTIVE tokens, capacity 2")


def _fields(seat: Any) -> dict[str, Any]:
    return {name: getattr(seat, name) for name in seat.__slots__}


def test_a_cancelled_ticket_still_sold_or_refunded_twice_is_reported() -> None:
    concert, schedule_id = _sale()
    held = _hold(concert, schedule_id, "gina", 1)
    items = scan_table(_client(), TABLE)
    reservation = next(i for i in items if i.get("reservationId") == held.reservation_id and i["SK"] == "RESERVATION")
    seat = next(i for i in items if i["PK"] == f"SCHEDULE#{schedule_id}" and i["SK"] == "SEAT#00001")
    price, rid = int(reservation["price"]), held.reservation_id
    _put({**reservation, "status": "CANCELLED"})
    _put({**seat, "status": "SOLD"})
    _put({"PK": "WALLET#gina", "SK": "LEDGER#1", "type": "CHARGE", "amount": price})
    _put({"PK": "WALLET#gina", "SK": "LEDGER#2", "type": "PAYMENT", "amount": price, "reservationIds": [rid]})
    for seq in (3, 4):
        _put({"PK": "WALLET#gina", "SK": f"LEDGER#{seq}", "type": "REFUND", "amount": price, "reservationIds": [rid]})
    _put({"PK": "WALLET#gina", "SK": "BALANCE", "balance": 2 * price})
    _assert_reports("is CANCELLED but its seat is still SOLD")
    _assert_reports("not one of its price")


def test_a_released_hold_still_holding_its_seat_is_reported() -> None:
    concert, schedule_id = _sale()
    held = _hold(concert, schedule_id, "hank", 2)
    items = scan_table(_client(), TABLE)
    reservation = next(i for i in items if i.get("reservationId") == held.reservation_id and i["SK"] == "RESERVATION")
    _put({**reservation, "status": "RELEASED"})
    _assert_reports("is RELEASED but its seat is still HELD")


def test_tokens_admitted_before_a_capacity_was_lowered_pass_and_more_than_any_capacity_is_reported(
    clock: Any,
) -> None:
    from ticketline.models.queue import QueueControlIn
    from ticketline.services.operator import OperatorService
    from ticketline.services.queue import QueueService

    concert, _ = _sale(capacity=3)
    for user in ("u1", "u2", "u3", "u4"):
        QueueService().issue(concert.concert_id, user)
    OperatorService().change_queue(concert.concert_id, QueueControlIn(capacity=1), "ops")
    assert audit(_client(), TABLE, now=clock()).ok  # 3 live, capacity 1 now: admitted under 3, nobody cut short
    waiting = next(i for i in scan_table(_client(), TABLE) if i.get("status") == "WAIT")
    forced = {k: v for k, v in waiting.items() if k not in ("GSI1PK", "GSI1SK")}
    _put(forced | {"status": "ACTIVE", "activeUntil": int(clock()) + 300, "GSI2PK": f"ACTIVE#{concert.concert_id}"})
    _assert_reports("live ACTIVE tokens, capacity 3")


# ---- the operator's controls: a run admitting while paused or past a lowered capacity, a walk-in after a pause ----
def _controlled_sale(clock: Any) -> tuple[str, float, float]:
    """Capacity 3, lowered to 1 at t+10, paused at t+20, resumed at t+60 (the audit trail the real service writes)."""
    from ticketline.models.queue import QueueControlIn
    from ticketline.services.operator import OperatorService

    concert, _ = _sale(capacity=3)
    clock.advance(10)
    OperatorService().change_queue(concert.concert_id, QueueControlIn(capacity=1), "ops")
    clock.advance(10)
    paused_at = clock()
    OperatorService().change_queue(concert.concert_id, QueueControlIn(paused=True), "ops")
    clock.advance(40)
    OperatorService().change_queue(concert.concert_id, QueueControlIn(paused=False), "ops")
    return concert.concert_id, paused_at, clock()


def _check(items: list[Any], runs: list[Any]) -> Any:
    from tests.support.audit import audit_operator_controls

    return audit_operator_controls(items, runs, ttl_seconds=300, cache_seconds=1)


def test_admission_runs_are_checked_against_the_pause_and_the_capacity_in_force(clock: Any) -> None:
    from tests.support.audit import AdmissionRunRecord

    start = clock()
    cid, paused_at, resumed_at = _controlled_sale(clock)
    items = scan_table(_client(), TABLE)
    clean = [
        AdmissionRunRecord(cid, start + 5, 0, 3, 3),  # capacity 3 then: three in
        AdmissionRunRecord(cid, start + 12, 3, 3, 3),  # lowered to 1, three live: nobody enters, nobody is cut short
        AdmissionRunRecord(cid, paused_at + 1, 3, 3, 0),  # paused: the bound stays
        AdmissionRunRecord(cid, resumed_at + 1, 3, 4, 1),  # resumed, all left: one enters, the new capacity
    ]
    report = _check(items, clean)
    assert report.ok, report.summary()
    figures = report.figures
    assert (figures["runs_under_a_lowered_capacity"], figures["runs_held_by_a_lowered_capacity"]) == (3, 1)
    planted = [
        AdmissionRunRecord(cid, start + 12, 3, 4, 4),  # admitted while 3 were live under a capacity of 1
        AdmissionRunRecord(cid, paused_at + 1, 3, 5, 1),  # admitted while paused
    ]
    messages = _check(items, planted).violations
    assert any("past the capacity 1 in force" in m for m in messages), messages
    assert any("admitted while paused" in m for m in messages), messages


def test_a_walk_in_later_than_the_cache_time_after_a_pause_is_reported(clock: Any) -> None:
    from tests.support.audit import WALK_IN_MARGIN_SECONDS

    cid, paused_at, resumed_at = _controlled_sale(clock)
    items = scan_table(_client(), TABLE)

    def token(seq: int, entered: float) -> dict[str, Any]:
        return {"PK": f"QTOKEN#{cid}#u{seq}", "SK": "QTOKEN", "concertId": cid, "seq": seq, "status": "ACTIVE",
                "activeUntil": int(entered) + 300}  # fmt: skip

    in_time = [token(1, paused_at - 5), token(2, paused_at + 1), token(3, resumed_at + 1)]  # before, in the cache
    report = _check(items + in_time, [])
    assert report.ok, report.summary()
    late = token(4, paused_at + 1 + WALK_IN_MARGIN_SECONDS + 2)
    messages = _check([*items, *in_time, late], []).violations
    assert len(messages) == 1 and "token 4 entered" in messages[0], messages
