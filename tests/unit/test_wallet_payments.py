"""Wallet and payments on moto: charges, balance, history and its cursor, payments and each refusal, idempotent
replays (with and without the idempotency record), lost answers, conflicts, and the handlers' HTTP mapping."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import load_event
from tests.support.transactions import cancellation
from ticketline import clock as ticketline_clock
from ticketline.config import Settings, get_settings
from ticketline.db import dynamodb, from_raw, to_raw
from ticketline.errors import (
    BalanceLimitExceeded,
    Forbidden,
    IdempotencyKeyReused,
    InsufficientBalance,
    NotFound,
    QueueTokenExpired,
    QueueTokenInvalid,
    QueueTokenNotActive,
    ReservationExpired,
    ReservationNotPayable,
    Throttled,
    ValidationFailed,
)
from ticketline.models.catalog import ConcertIn
from ticketline.models.reservations import HoldIn, ReservationOut
from ticketline.models.wallet import ChargeIn, ChargeOut, PaymentIn, PaymentOut, Wallet
from ticketline.repositories.catalog import seat_key
from ticketline.repositories.payments import PaymentOutcome, PaymentRepository
from ticketline.repositories.queue import token_key
from ticketline.repositories.reservations import ReservationRepository, holds_key, reservation_key
from ticketline.repositories.wallet import WalletRepository, wallet_key
from ticketline.services.catalog import CatalogService
from ticketline.services.payments import MAX_ATTEMPTS as PAY_ATTEMPTS
from ticketline.services.payments import PAY, PaymentService
from ticketline.services.queue import QueueService
from ticketline.services.reservations import ReservationService
from ticketline.services.wallet import CHARGE, MAX_BALANCE, WalletService, decode_cursor, encode_cursor
from ticketline.services.wallet import MAX_ATTEMPTS as CHARGE_ATTEMPTS

pytestmark = [
    pytest.mark.usefixtures("aws"),
    # Services called without a Lambda context (the handlers pass theirs): Powertools says so.
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time"),
]


def no_sleep(_: float) -> None:
    return None


# ---- helpers ----
def settings(**changes: Any) -> Settings:
    return get_settings().model_copy(update=changes)


def wallet_service() -> WalletService:
    return WalletService(sleep=no_sleep)


def payment_service(**changes: Any) -> PaymentService:
    return PaymentService(settings=settings(**changes), sleep=no_sleep)


def charge(user: str, amount: int, key: str | None = None, service: WalletService | None = None) -> Any:
    return (service or wallet_service()).charge(user, key or f"{user}-{amount}", ChargeIn(amount=amount))


class Sale:
    """One concert with one date of `seats` seats (seat n costs 1000 * n) and a queue that admits everyone."""

    def __init__(self, seats: int = 10, **changes: Any) -> None:
        self.settings = settings(**changes)
        now = ticketline_clock.now()
        body = {
            "title": "Night",
            "queueCapacity": 1000,
            "schedules": [
                {
                    "startsAt": ticketline_clock.to_iso(now + 86_400),
                    "seats": [{"number": n, "price": 1000 * n} for n in range(1, seats + 1)],
                }
            ],
        }
        concert = CatalogService().create_concert(ConcertIn.model_validate(body))
        self.concert_id = concert.concert_id
        self.schedule_id = concert.schedules[0].schedule_id
        self.queue = QueueService(settings=self.settings)
        self.reservations = ReservationService(settings=self.settings, queue=self.queue, sleep=no_sleep)

    def token(self, user: str) -> str:
        issued, _ = self.queue.issue(self.concert_id, user)
        assert issued.status == "ACTIVE"
        return issued.token

    def hold(self, user: str, seat: int) -> tuple[ReservationOut, str]:
        token = self.token(user)
        held = self.reservations.hold(HoldIn(schedule_id=self.schedule_id, seat_number=seat), user, token)
        return held, token


def item(key: dict[str, Any]) -> dict[str, Any] | None:
    raw = dynamodb().get_item(TableName=get_settings().table_name, Key=to_raw(key), ConsistentRead=True)
    return from_raw(raw["Item"]) if "Item" in raw else None


def ledger(user: str) -> list[dict[str, Any]]:
    raw = dynamodb().query(
        TableName=get_settings().table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :ledger)",
        ExpressionAttributeValues=to_raw({":pk": f"WALLET#{user}", ":ledger": "LEDGER#"}),
    )
    return [from_raw(r) for r in raw["Items"]]


def balance_of(user: str) -> int:
    return WalletRepository().get(user).balance


def ledger_sum(user: str) -> int:
    return sum(e["amount"] if e["type"] == "CHARGE" else -e["amount"] for e in ledger(user))


def expire_idempotency_records() -> None:
    """As if every idempotency record with a TTL had expired (DynamoDB deletes such items after `ttl`)."""
    table = get_settings().table_name
    for item in map(from_raw, dynamodb().scan(TableName=table)["Items"]):
        if str(item["PK"]).startswith("IDEMPOTENCY#") and "ttl" in item:
            dynamodb().delete_item(TableName=table, Key=to_raw({"PK": item["PK"], "SK": item["SK"]}))


def idempotency_records() -> list[dict[str, Any]]:
    table = get_settings().table_name
    return [i for i in map(from_raw, dynamodb().scan(TableName=table)["Items"]) if i["PK"].startswith("IDEMPOTENCY#")]


@pytest.fixture
def transact(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list[dict[str, Any]]]]:
    """Script TransactWriteItems: transact(conflicts=2) cancels the next two with TransactionConflict;
    transact(resend=True) commits the next one, then sends it again (botocore's retry after a lost answer)."""
    client = dynamodb()
    real = client.transact_write_items
    plan: dict[str, Any] = {"conflicts": 0, "resend": False}
    calls: list[dict[str, Any]] = []

    def scripted(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if plan["conflicts"] > 0:
            plan["conflicts"] -= 1
            raise cancellation(*["None"] * (len(kwargs["TransactItems"]) - 1), "TransactionConflict")
        if plan["resend"]:
            plan["resend"] = False
            real(**kwargs)
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", scripted)

    def configure(conflicts: int = 0, resend: bool = False) -> list[dict[str, Any]]:
        plan.update(conflicts=conflicts, resend=resend)
        return calls

    yield configure


# ---- wallet ----
def test_a_new_user_has_nothing(clock):
    service = wallet_service()
    assert service.balance("nobody").balance == 0
    history = service.history("nobody", 20, None)
    assert history.items == [] and history.next_cursor is None


def test_a_charge_moves_the_balance_and_writes_one_ledger_entry(clock):
    first = charge("alice", 5000, "k1")
    second = charge("alice", 700, "k2")
    assert (first.balance, second.balance) == (5000, 5700)
    assert first.charge_id != second.charge_id
    assert balance_of("alice") == 5700
    entries = ledger("alice")
    assert [(e["type"], e["amount"], e["balanceAfter"], e["seq"]) for e in entries] == [
        ("CHARGE", 5000, 5000, 1),
        ("CHARGE", 700, 5700, 2),
    ]
    assert item(wallet_key("alice"))["version"] == 2


@pytest.mark.parametrize("amount", [0, -1, 10_000_001, 10**30, 1.5, 1000.0, "1000", True, None])
def test_invalid_amounts_are_refused(amount):
    with pytest.raises(ValidationError):
        ChargeIn.model_validate({"amount": amount})


def test_the_amount_bounds_are_inclusive(clock):
    assert charge("alice", 1, "low").balance == 1
    assert charge("alice", 10_000_000, "high").balance == 10_000_001


def test_a_replay_with_the_same_key_charges_once_and_answers_the_same(clock):
    service = wallet_service()
    first = charge("alice", 5000, "same", service)
    assert charge("alice", 5000, "same", service) == first
    assert balance_of("alice") == 5000 and len(ledger("alice")) == 1
    with pytest.raises(IdempotencyKeyReused):
        charge("alice", 6000, "same", service)
    assert balance_of("alice") == 5000


def test_a_balance_never_passes_its_maximum_and_a_refused_charge_moves_nothing(clock):
    for number in range(10):
        charge("alice", 10_000_000, f"top-up-{number}")
    assert balance_of("alice") == MAX_BALANCE == 100_000_000

    with pytest.raises(BalanceLimitExceeded) as refused:
        charge("alice", 1, "one-more")

    assert refused.value.status == 409 and refused.value.details[0]["field"] == "amount"
    assert balance_of("alice") == MAX_BALANCE and len(ledger("alice")) == 10


def test_the_maximum_is_in_the_charge_write_not_only_in_the_check_before_it(clock, monkeypatch):
    charge("alice", 10_000_000, "first")
    for number in range(9):
        charge("alice", 10_000_000, f"more-{number}")
    service = wallet_service()
    real_get = service.repository.get
    reads = iter([Wallet(user_id="alice", balance=0, version=real_get("alice").version)])  # a read that lies
    monkeypatch.setattr(service.repository, "get", lambda user: next(reads, None) or real_get(user))

    with pytest.raises(BalanceLimitExceeded):
        charge("alice", 5, "past-the-top", service)  # the write refuses; the re-read then answers 409

    assert balance_of("alice") == MAX_BALANCE and len(ledger("alice")) == 10


def test_keys_belong_to_their_user(clock):
    assert charge("alice", 5000, "shared").balance == 5000
    assert charge("bob", 3000, "shared").balance == 3000
    assert (balance_of("alice"), balance_of("bob")) == (5000, 3000)


def test_a_charge_record_never_expires_so_its_key_replays_long_after(clock):
    first = charge("alice", 5000, "once")
    [record] = idempotency_records()
    assert "ttl" not in record  # nothing else remembers that this charge id committed
    expire_idempotency_records()
    clock.advance(400 * 86_400)
    assert charge("alice", 5000, "once") == first
    with pytest.raises(IdempotencyKeyReused):
        charge("alice", 9000, "once")
    assert balance_of("alice") == 5000 and len(ledger("alice")) == 1


def test_a_charge_made_before_the_records_is_replayed_from_its_old_guard(clock):
    charge_id = CHARGE.record("alice", "old", {"amount": 5000}).record_id
    guard = {"PK": "WALLET#alice", "SK": f"CHARGE#{charge_id}", "amount": 5000, "seq": 1, "balanceAfter": 5000, "at": 1}
    dynamodb().put_item(TableName=get_settings().table_name, Item=to_raw(guard))
    assert charge("alice", 5000, "old") == ChargeOut(balance=5000, charge_id=charge_id)
    with pytest.raises(IdempotencyKeyReused):
        charge("alice", 6000, "old")
    assert balance_of("alice") == 0 and not idempotency_records()  # nothing charged again, nothing written


def test_a_lost_answer_resent_by_botocore_charges_once(clock, transact):
    calls = transact(resend=True)
    result = charge("alice", 5000, "lost")
    assert result.balance == 5000 and len(calls) == 1
    assert balance_of("alice") == 5000 and len(ledger("alice")) == 1


def test_a_stale_wallet_read_is_retried_and_balance_after_stays_exact(clock, monkeypatch):
    charge("alice", 1000, "a")
    repository = WalletRepository()
    real_read = repository.with_record
    sneaked = []

    def stale_read(user_id: str, record_id: str) -> Any:
        seen = real_read(user_id, record_id)
        if not sneaked:  # another charge commits between our read and our transaction
            sneaked.append(charge("alice", 10, "sneak"))
        return seen

    monkeypatch.setattr(repository, "with_record", stale_read)
    service = WalletService(repository=repository, sleep=no_sleep)
    assert service.charge("alice", "b", ChargeIn(amount=100)).balance == 1110
    assert [e["balanceAfter"] for e in ledger("alice")] == [1000, 1010, 1110]


def test_transaction_conflicts_are_retried_then_given_up(clock, transact):
    transact(conflicts=2)
    assert charge("alice", 5000, "c1").balance == 5000
    calls = transact(conflicts=CHARGE_ATTEMPTS)
    before = len(calls)
    with pytest.raises(Throttled):
        charge("alice", 5000, "c2")
    assert len(calls) - before == CHARGE_ATTEMPTS
    assert balance_of("alice") == 5000
    assert charge("alice", 5000, "c2").balance == 10_000  # the failed key was not remembered: a retry works


@pytest.mark.parametrize(("duplicate_amount", "answer"), [(5000, "the first answer"), (7000, "409")])
def test_a_duplicate_that_commits_while_we_are_in_flight_decides_our_answer(
    clock, monkeypatch, duplicate_amount, answer
):
    """No in-flight state: a call with our key that commits between our read and our transaction cancels ours on
    the idempotency record, and its record answers us (the same body) or refuses us (another body)."""
    service = wallet_service()
    real_charge = service.repository.charge
    duplicates: list[ChargeOut] = []

    def charge_after_a_duplicate(*args: Any, **named: Any) -> Any:
        if not duplicates:
            duplicates.append(charge("alice", duplicate_amount, "busy"))
        return real_charge(*args, **named)

    monkeypatch.setattr(service.repository, "charge", charge_after_a_duplicate)
    if answer == "409":
        with pytest.raises(IdempotencyKeyReused):
            service.charge("alice", "busy", ChargeIn(amount=5000))
    else:
        assert service.charge("alice", "busy", ChargeIn(amount=5000)) == duplicates[0]
    assert balance_of("alice") == duplicate_amount and len(ledger("alice")) == 1


def test_history_is_newest_first_in_pages(clock):
    service = wallet_service()
    for n in range(1, 26):
        charge("alice", n, f"h{n}", service)
        clock.advance(1)
    pages, cursor = [], None
    while True:
        page = service.history("alice", 10, cursor)
        pages.append([entry.amount for entry in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [list(range(25, 15, -1)), list(range(15, 5, -1)), list(range(5, 0, -1))]
    exact = service.history("alice", 25, None)
    assert len(exact.items) == 25 and exact.next_cursor is None  # no empty last page
    newest = exact.items[0]
    assert (newest.type, newest.balance_after, newest.reservation_id) == ("CHARGE", sum(range(1, 26)), None)
    assert "reservationId" not in newest.model_dump(by_alias=True)


@pytest.mark.parametrize(
    "cursor", ["", "xx", "!!!!", encode_cursor(5) + "A", "TDA", "TC0x", "eyJQSyI6IldBTExFVCNib2IifQ"]
)
def test_a_tampered_cursor_is_400(clock, cursor):
    with pytest.raises(ValidationFailed):
        wallet_service().history("alice", 10, cursor)
    assert decode_cursor(encode_cursor(42)) == 42


def test_a_cursor_only_ever_pages_the_callers_own_ledger(clock):
    for n in range(1, 6):
        charge("alice", n, f"a{n}")
    charge("bob", 777, "b1")
    alices_cursor = wallet_service().history("alice", 2, None).next_cursor
    bobs = wallet_service().history("bob", 10, alices_cursor)
    assert [entry.amount for entry in bobs.items] == [777]


# ---- payments ----
def test_paying_a_hold_is_one_atomic_step(clock):
    sale = Sale()
    held, token = sale.hold("alice", 3)
    charge("alice", 10_000, "top-up")
    paid = payment_service().pay("alice", "p1", PaymentIn(reservation_id=held.reservation_id), token)
    assert (paid.reservation_id, paid.amount, paid.balance) == (held.reservation_id, 3000, 7000)
    reservation = item(reservation_key(held.reservation_id))
    assert reservation["status"] == "PAID" and reservation["paymentId"] == paid.payment_id
    assert "GSI2PK" not in reservation and "GSI2SK" not in reservation
    seat = item(seat_key(sale.schedule_id, 3))
    assert seat["status"] == "SOLD" and seat["reservationId"] == held.reservation_id
    assert item(token_key(sale.concert_id, "alice"))["status"] == "EXPIRED"
    assert held.reservation_id not in item(holds_key(sale.schedule_id, "alice"))["holds"]
    payment = ledger("alice")[-1]
    assert (payment["type"], payment["amount"], payment["balanceAfter"], payment["reservationId"]) == (
        "PAYMENT",
        3000,
        7000,
        held.reservation_id,
    )
    assert payment["id"] == paid.payment_id
    assert balance_of("alice") == 7000 == ledger_sum("alice")
    history = wallet_service().history("alice", 10, None).items
    assert [(h.type, h.reservation_id) for h in history] == [("PAYMENT", held.reservation_id), ("CHARGE", None)]


def snapshot(sale: Sale, reservation_id: str, user: str) -> tuple[Any, ...]:
    reservation = item(reservation_key(reservation_id))
    return (
        item(wallet_key(user)),
        len(ledger(user)),
        reservation["status"],
        item(seat_key(sale.schedule_id, reservation["seatNumber"]))["status"],
        item(token_key(sale.concert_id, user))["status"],
    )


def test_a_short_balance_is_402_and_nothing_moves(clock):
    sale = Sale()
    held, token = sale.hold("alice", 5)
    charge("alice", 4999, "short")
    before = snapshot(sale, held.reservation_id, "alice")
    with pytest.raises(InsufficientBalance):
        payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)
    assert snapshot(sale, held.reservation_id, "alice") == before
    assert before[2:] == ("HELD", "HELD", "ACTIVE")
    charge("alice", 1, "top-up")  # the failed key was not remembered: the same key now pays
    assert payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token).balance == 0


def test_the_balance_condition_in_the_transaction_maps_to_402(clock, monkeypatch):
    sale = Sale()
    held, token = sale.hold("alice", 5)
    charge("alice", 1000, "little")
    repository = PaymentRepository()
    real_context = repository.context

    def optimistic_context(rid: str, uid: str, record_id: str) -> Any:  # our read says rich, the item says otherwise
        context = real_context(rid, uid, record_id)
        return replace(context, wallet=replace(context.wallet, balance=10**6))

    monkeypatch.setattr(repository, "context", optimistic_context)
    service = PaymentService(repository=repository, sleep=no_sleep)
    with pytest.raises(InsufficientBalance):
        service.pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)
    assert balance_of("alice") == 1000 and item(reservation_key(held.reservation_id))["status"] == "HELD"


def test_a_lapsed_hold_is_410(clock):
    sale = Sale(seat_hold_ttl_seconds=10)
    held, token = sale.hold("alice", 1)
    charge("alice", 10_000, "top-up")
    clock.advance(10)
    with pytest.raises(ReservationExpired):
        payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)
    assert balance_of("alice") == 10_000


def test_the_transaction_itself_refuses_a_lapsed_hold_a_foreign_token_and_a_stale_wallet(clock):
    sale = Sale()
    held, token = sale.hold("alice", 2)
    charge("alice", 10_000, "top-up")
    repository = PaymentRepository()
    context = repository.context([held.reservation_id], "alice", "pay_x")
    reservation, wallet = context.found[held.reservation_id].reservation, context.wallet
    service = payment_service()

    def entry(seq: int, balance: int, at: int) -> Any:
        from ticketline.models.wallet import EntryType, LedgerEntry

        return LedgerEntry("alice", seq, "pay_x", EntryType.PAYMENT, 2000, balance - 2000, at, (held.reservation_id,))

    def pay(wallet: Any, entry: Any, token: str) -> PaymentOutcome:
        record = PAY.record("alice", "x", {"reservationIds": [held.reservation_id]})
        answer = PaymentOut(payment_id="pay_x", reservation_ids=[held.reservation_id], amount=2000, balance=8000)
        put = PAY.put(repository.table, record, answer, entry.at)
        return repository.pay([reservation], wallet, entry, token, max_tickets=8, record=put).outcome

    now = int(clock.current)
    later = reservation.hold_expires_at
    assert pay(wallet, entry(2, 10_000, later), token) is PaymentOutcome.LAPSED
    assert pay(wallet, entry(2, 10_000, now), "forged") is PaymentOutcome.TOKEN_INVALID
    stale = replace(wallet, version=7)
    assert pay(stale, entry(8, 10_000, now), token) is PaymentOutcome.STALE
    assert snapshot(sale, held.reservation_id, "alice")[2:] == ("HELD", "HELD", "ACTIVE")
    assert service.pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token).balance == 8000


def test_unknown_and_foreign_reservations_are_404_and_403(clock):
    sale = Sale()
    held, _ = sale.hold("alice", 1)
    mallory = sale.token("mallory")
    charge("mallory", 10_000, "m")
    service = payment_service()
    with pytest.raises(NotFound):
        service.pay("mallory", "p1", PaymentIn(reservation_id="nope"), mallory)
    with pytest.raises(Forbidden):
        service.pay("mallory", "p2", PaymentIn(reservation_id=held.reservation_id), mallory)
    assert item(reservation_key(held.reservation_id))["status"] == "HELD" and balance_of("mallory") == 10_000


def test_the_queue_token_must_be_the_callers_active_one(clock):
    sale = Sale(active_token_ttl_seconds=5)
    held, token = sale.hold("alice", 1)
    charge("alice", 10_000, "top-up")
    service = payment_service(active_token_ttl_seconds=5)
    request = PaymentIn(reservation_id=held.reservation_id)
    for presented in (None, "", "forged", sale.token("bob")):
        with pytest.raises(QueueTokenInvalid):
            service.pay("alice", "p", request, presented)
    clock.advance(5)
    with pytest.raises(QueueTokenExpired):
        service.pay("alice", "p", request, token)
    assert balance_of("alice") == 10_000


def test_a_waiting_token_cannot_pay(clock):
    sale = Sale()
    held, _ = sale.hold("alice", 1)
    charge("alice", 10_000, "top-up")
    # alice's token back to WAIT (as if she had re-joined behind the bound)
    dynamodb().update_item(
        TableName=get_settings().table_name,
        Key=to_raw(token_key(sale.concert_id, "alice")),
        UpdateExpression="SET #s = :wait",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_raw({":wait": "WAIT"}),
    )
    token = item(token_key(sale.concert_id, "alice"))["token"]
    with pytest.raises(QueueTokenNotActive):
        payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)


def test_paid_once_replays_with_the_same_key_and_refuses_another(clock):
    sale = Sale()
    held, token = sale.hold("alice", 4)
    charge("alice", 10_000, "top-up")
    service = payment_service()
    request = PaymentIn(reservation_id=held.reservation_id)
    first = service.pay("alice", "p1", request, token)
    assert service.pay("alice", "p1", request, token) == first  # the idempotency record
    with pytest.raises(IdempotencyKeyReused):
        service.pay("alice", "p1", PaymentIn(reservation_id="other"), token)
    expire_idempotency_records()
    charge("alice", 500, "later")
    assert service.pay("alice", "p1", request, None) == first  # the reservation remembers who paid it
    with pytest.raises(ReservationNotPayable):
        service.pay("alice", "p2", request, token)
    assert balance_of("alice") == 6500 == ledger_sum("alice")
    assert [e["type"] for e in ledger("alice")].count("PAYMENT") == 1


def test_a_lost_payment_answer_resent_by_botocore_pays_once(clock, transact):
    sale = Sale()
    held, token = sale.hold("alice", 2)
    charge("alice", 10_000, "top-up")
    transact(resend=True)
    paid = payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)
    assert paid.balance == 8000 and balance_of("alice") == 8000 == ledger_sum("alice")


def test_payment_conflicts_are_retried_then_given_up(clock, transact):
    sale = Sale()
    first, token = sale.hold("alice", 1)
    charge("alice", 10_000, "top-up")
    transact(conflicts=3)
    assert payment_service().pay("alice", "p1", PaymentIn(reservation_id=first.reservation_id), token).balance == 9000
    second, token = sale.hold("alice", 2)
    transact(conflicts=PAY_ATTEMPTS)
    with pytest.raises(Throttled):
        payment_service().pay("alice", "p2", PaymentIn(reservation_id=second.reservation_id), token)
    assert balance_of("alice") == 9000 and item(reservation_key(second.reservation_id))["status"] == "HELD"


def test_a_charge_racing_a_payment_leaves_an_exact_ledger(clock, monkeypatch):
    sale = Sale()
    held, token = sale.hold("alice", 3)
    charge("alice", 5000, "a")
    repository = PaymentRepository()
    real_context = repository.context

    def context_then_a_charge(rid: str, uid: str, record_id: str) -> Any:
        context = real_context(rid, uid, record_id)
        charge("alice", 100, "racing")
        return context

    monkeypatch.setattr(repository, "context", context_then_a_charge)
    paid = PaymentService(repository=repository, sleep=no_sleep).pay(
        "alice", "p", PaymentIn(reservation_id=held.reservation_id), token
    )
    assert paid.balance == 2100
    assert [(e["type"], e["balanceAfter"]) for e in ledger("alice")] == [
        ("CHARGE", 5000),
        ("CHARGE", 5100),
        ("PAYMENT", 2100),
    ]


def test_the_scheduler_leaves_a_paid_reservation_alone(clock):
    sale = Sale(seat_hold_ttl_seconds=10)
    held, token = sale.hold("alice", 1)
    charge("alice", 10_000, "top-up")
    payment_service().pay("alice", "p", PaymentIn(reservation_id=held.reservation_id), token)
    clock.advance(60)
    assert sale.reservations.lapse_due().lapsed == 0
    assert item(seat_key(sale.schedule_id, 1))["status"] == "SOLD"
    assert ReservationRepository().get(held.reservation_id).status == "PAID"


# ---- the handlers ----
def call(invoke, function: str, event_file: str, user: str = "alice", **changes: Any) -> tuple[int, Any]:
    event = load_event(event_file, **changes)
    event["requestContext"]["authorizer"]["claims"]["sub"] = user
    response = invoke(function, event)
    return response["statusCode"], json.loads(response["body"])


def headers(event_file: str, **values: str | None) -> dict[str, Any]:
    event = load_event(event_file)
    for name, value in values.items():
        header = name.replace("_", "-")
        event["headers"].pop(header, None)
        event["multiValueHeaders"].pop(header, None)
        if value is not None:
            event["headers"][header] = value
            event["multiValueHeaders"][header] = [value]
    return {"headers": event["headers"], "multiValueHeaders": event["multiValueHeaders"]}


def test_the_wallet_routes_through_the_handler(invoke, clock):
    assert call(invoke, "wallet", "wallet_balance.json") == (200, {"balance": 0})
    status, body = call(invoke, "wallet", "wallet_charge.json")
    assert status == 200 and body["balance"] == 50_000 and body["chargeId"]
    assert call(invoke, "wallet", "wallet_charge.json") == (200, body)
    status, reused = call(invoke, "wallet", "wallet_charge.json", body='{"amount": 7}')
    assert (status, reused["error"]["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert call(invoke, "wallet", "wallet_balance.json", user="bob") == (200, {"balance": 0})
    status, history = call(invoke, "wallet", "wallet_history.json")
    assert status == 200 and [i["amount"] for i in history["items"]] == [50_000] and history["nextCursor"] is None
    assert "reservationId" not in history["items"][0]


def test_a_refused_charge_is_not_remembered_so_its_key_can_be_retried(invoke, clock):
    for number in range(10):
        charge("alice", 10_000_000, f"top-up-{number}")

    refused = [call(invoke, "wallet", "wallet_charge.json") for _ in range(2)]  # the same key twice

    # Powertools deleted its in-progress record when the call failed (the role's DeleteItem on the idempotency
    # table): the retry is judged again, not refused as IDEMPOTENCY_IN_PROGRESS.
    assert [(status, body["error"]["code"]) for status, body in refused] == [(409, "BALANCE_LIMIT_EXCEEDED")] * 2
    assert balance_of("alice") == MAX_BALANCE


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"body": '{"amount": 0}'}, "amount"),
        ({"body": '{"amount": 10000001}'}, "amount"),
        ({"body": '{"amount": 100.5}'}, "amount"),
        ({"body": '{"amount": "100"}'}, "amount"),
        ({"body": '{"amount": true}'}, "amount"),
        ({"body": '{"amount": 100, "userId": "bob"}'}, "userId"),
        ({"body": "{"}, "body"),
        (headers("wallet_charge.json", Idempotency_Key=None), "Idempotency-Key"),
        (headers("wallet_charge.json", Idempotency_Key=""), "Idempotency-Key"),
        (headers("wallet_charge.json", Idempotency_Key="k" * 65), "Idempotency-Key"),
    ],
)
def test_bad_charges_are_400_with_the_field(invoke, clock, changes, field):
    status, body = call(invoke, "wallet", "wallet_charge.json", **changes)
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR", body
    assert field in [d["field"] for d in body["error"]["details"]], body
    assert call(invoke, "wallet", "wallet_balance.json") == (200, {"balance": 0})


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"cursor": "bm9wZQ"}, {"cursor": "x" * 65}]
)
def test_bad_history_queries_are_400(invoke, clock, query):
    status, body = call(
        invoke,
        "wallet",
        "wallet_history.json",
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()},
    )
    assert status == 400 and body["error"]["code"] == "VALIDATION_ERROR", body


def test_a_key_of_64_characters_is_fine(invoke, clock):
    status, _ = call(invoke, "wallet", "wallet_charge.json", **headers("wallet_charge.json", Idempotency_Key="k" * 64))
    assert status == 200


def test_the_payment_route_through_the_handler(invoke, clock):
    sale = Sale()
    held, token = sale.hold("alice", 2)
    body = json.dumps({"reservationId": held.reservation_id})
    with_token = headers("pay.json", X_Queue_Token=token)
    status, short = call(invoke, "pay", "pay.json", body=body, **with_token)
    assert (status, short["error"]["code"]) == (402, "INSUFFICIENT_BALANCE")
    call(invoke, "wallet", "wallet_charge.json")
    status, paid = call(invoke, "pay", "pay.json", body=body, **with_token)
    assert status == 201 and paid["amount"] == 2000 and paid["balance"] == 48_000 and paid["paymentId"]
    assert call(invoke, "pay", "pay.json", body=body, **with_token) == (201, paid)  # the record, 1 read
    expire_idempotency_records()
    assert call(invoke, "pay", "pay.json", body=body, **with_token) == (201, paid)  # the reservation, its entry
    status, again = call(invoke, "pay", "pay.json", body=body, **headers("pay.json", Idempotency_Key="other"))
    assert (status, again["error"]["code"]) == (409, "RESERVATION_NOT_PAYABLE")
    status, missing = call(invoke, "pay", "pay.json", body=body, **headers("pay.json", Idempotency_Key=None))
    assert status == 400 and missing["error"]["details"][0]["field"] == "Idempotency-Key"
    status, forged = call(invoke, "pay", "pay.json", body='{"reservationId": "r", "amount": 1}')
    assert status == 400 and forged["error"]["details"][0]["field"] == "amount"
