"""The DynamoDB vocabulary without DynamoDB (issue 16): how a cancelled transaction is decoded into per-item
reasons and then into each operation's outcome, and what an idempotency record holds. Pure: no moto."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.transactions import cancellation
from ticketline.db import Cancelled, cancelled, conditional_write, from_raw, refusal, to_raw
from ticketline.errors import IdempotencyKeyReused
from ticketline.models.catalog import SeatStatus
from ticketline.models.reservations import CancellationOut
from ticketline.models.wallet import ChargeOut, EntryType, LedgerEntry, PaymentOut, Wallet
from ticketline.repositories import cancellations, payments
from ticketline.repositories.catalog import seat_key
from ticketline.repositories.reservations import HoldOutcome, hold_outcome
from ticketline.services.cancellations import CANCEL
from ticketline.services.payments import PAY
from ticketline.services.wallet import CHARGE

NONE, FAILED, CONFLICT = "None", "ConditionalCheckFailed", "TransactionConflict"


def decoded(*codes: str, items: dict[int, dict[str, Any]] | None = None) -> Cancelled:
    refused = cancelled(cancellation(*codes, items=items), len(codes))
    assert refused is not None
    return refused


# ---- the one decoder ----
def test_a_cancellation_is_decoded_item_by_item_with_what_each_refusal_saw():
    refused = decoded(NONE, FAILED, CONFLICT, items={1: {"PK": "A", "n": 1}})
    assert [reason.code for reason in refused.reasons] == [NONE, FAILED, CONFLICT]
    assert refused[1].condition_failed and refused[1].item == {"PK": "A", "n": 1} and refused[0].item is None
    assert refused.conflict and [r.code for r in refused.failed(range(3))] == [FAILED]


def test_only_a_cancellation_with_one_reason_per_item_is_decoded():
    assert cancelled(cancellation(FAILED, NONE), 3) is None  # not the transaction we sent: re-raise
    assert cancelled(cancellation(FAILED, CONFLICT)) is not None  # any length, for a caller that does not know it
    assert cancelled(cancellation()) is None  # no reasons: nothing to decode
    other = ClientError({"Error": {"Code": "ValidationException"}}, "TransactWriteItems")
    assert cancelled(other, 1) is None


def test_a_cancellation_refused_only_by_conditions_is_an_answer_and_a_throttled_item_is_not():
    assert decoded(FAILED, NONE).only(FAILED)
    assert not decoded(FAILED, CONFLICT).only(FAILED) and decoded(FAILED, CONFLICT).only(FAILED, CONFLICT)
    assert not decoded(FAILED, "ThrottlingError").only(FAILED, CONFLICT)


def test_a_failed_condition_on_a_single_write_is_an_answer_and_anything_else_raises():
    def refuse(code: str) -> Any:
        raise ClientError({"Error": {"Code": code}}, "UpdateItem")

    assert conditional_write(lambda: None) is True
    assert conditional_write(lambda: refuse("ConditionalCheckFailedException")) is False
    with pytest.raises(ClientError):
        conditional_write(lambda: refuse("ProvisionedThroughputExceededException"))


def test_a_single_write_refusal_carries_the_item_its_condition_saw():
    def refuse(item: dict[str, Any] | None) -> Any:
        response: Any = {"Error": {"Code": "ConditionalCheckFailedException"}}
        if item is not None:
            response["Item"] = to_raw(item)
        raise ClientError(response, "UpdateItem")

    assert refusal(lambda: None) is None
    seen = refusal(lambda: refuse({"PK": "A", "figuresSequence": "7"}))
    assert seen is not None and seen.condition_failed and seen.item == {"PK": "A", "figuresSequence": "7"}
    missing = refusal(lambda: refuse(None))
    assert missing is not None and missing.item is None  # the item does not exist


# ---- holds: seat, reservation, the user's holds, tickets ----
def test_a_hold_refusal_maps_to_its_outcome():
    seat = {**seat_key("s1", 7), "number": 7, "price": 5, "status": "SOLD"}
    taken = hold_outcome(decoded(FAILED, NONE, NONE, NONE, items={0: seat}))
    assert taken is not None and taken.outcome is HoldOutcome.SEAT_CHANGED
    assert taken.seat is not None and taken.seat.status is SeatStatus.SOLD and taken.seat.number == 7
    # the seat's verdict wins over the holds item's and over a conflict
    both = hold_outcome(decoded(FAILED, CONFLICT, FAILED, NONE, items={0: seat}))
    assert both is not None and both.outcome is HoldOutcome.SEAT_CHANGED
    assert getattr(hold_outcome(decoded(NONE, CONFLICT, NONE, NONE)), "outcome", None) is HoldOutcome.CONFLICT
    assert getattr(hold_outcome(decoded(NONE, NONE, FAILED, NONE)), "outcome", None) is HoldOutcome.HOLDS_CHANGED
    assert getattr(hold_outcome(decoded(NONE, NONE, NONE, FAILED)), "outcome", None) is HoldOutcome.TICKET_LIMIT
    assert hold_outcome(decoded("ThrottlingError", NONE, NONE, NONE)) is None
    assert hold_outcome(decoded(NONE, FAILED, NONE, NONE)) is None  # an id collision: re-raise


# ---- payments: wallet, ledger, token, tickets, record, (reservation, seat)..., holds items ----
WALLET = Wallet(user_id="alice", balance=1000, version=3)
ENTRY = LedgerEntry("alice", 4, "pay_1", EntryType.PAYMENT, 2000, -1000, 100, ("r1",))
TOKEN = {"PK": "QTOKEN#c#alice", "SK": "QTOKEN", "token": "t", "status": "WAIT"}
RECORD = {"PK": "IDEMPOTENCY#pay_1", "SK": "IDEMPOTENCY", "fingerprint": "f", "answer": {}}


def payment(*codes: str, items: dict[int, dict[str, Any]] | None = None) -> payments.PaymentOutcome:
    return payments._outcome(decoded(*codes, items=items), 1, WALLET, ENTRY, "t").outcome


def test_a_payment_cancelled_on_its_record_is_a_duplicate_whatever_else_failed():
    refused = decoded(FAILED, NONE, FAILED, NONE, FAILED, FAILED, FAILED, NONE, items={4: RECORD})
    result = payments._outcome(refused, 1, WALLET, ENTRY, "t")
    assert result.outcome is payments.PaymentOutcome.DUPLICATE and result.record == RECORD


def test_a_payment_refusal_is_the_first_in_the_contracts_order():
    wallet_seen = {"PK": "WALLET#alice", "SK": "BALANCE", "balance": 1000, "version": 3}
    # a waiting token outranks a short balance
    assert payment(FAILED, NONE, FAILED, NONE, NONE, NONE, NONE, NONE, items={0: wallet_seen, 2: TOKEN}) is (
        payments.PaymentOutcome.TOKEN_WAITING
    )
    assert payment(FAILED, NONE, NONE, NONE, NONE, NONE, NONE, NONE, items={0: wallet_seen}) is (
        payments.PaymentOutcome.INSUFFICIENT_BALANCE
    )
    # a seat taken over while our reservation's condition held: its hold lapsed (410), not "not payable"
    assert payment(NONE, NONE, NONE, NONE, NONE, NONE, FAILED, NONE) is payments.PaymentOutcome.LAPSED
    assert payment(NONE, NONE, NONE, FAILED, NONE, NONE, NONE, NONE) is payments.PaymentOutcome.TICKET_LIMIT
    assert payment(NONE, CONFLICT, FAILED, NONE, NONE, NONE, NONE, NONE) is payments.PaymentOutcome.CONFLICT


def test_a_wallet_that_does_not_exist_is_a_short_balance_not_a_stale_read():
    empty = Wallet(user_id="alice", balance=0, version=0)
    refused = decoded(FAILED, NONE, NONE, NONE, NONE, NONE, NONE, NONE)  # no ALL_OLD: there is no item
    result = payments._outcome(refused, 1, empty, ENTRY, "t")
    assert result.outcome is payments.PaymentOutcome.INSUFFICIENT_BALANCE


def test_a_moved_wallet_is_retried_from_what_the_refusal_saw():
    moved = {"PK": "WALLET#alice", "SK": "BALANCE", "balance": 9000, "version": 5}
    result = payments._outcome(
        decoded(FAILED, NONE, NONE, NONE, NONE, NONE, NONE, NONE, items={0: moved}), 1, WALLET, ENTRY, "t"
    )
    assert result.outcome is payments.PaymentOutcome.STALE and result.wallet == Wallet("alice", 9000, 5)


def test_a_missing_holds_item_is_paid_without_it_and_an_unexplained_reason_is_raised_as_it_came():
    assert payment(NONE, NONE, NONE, NONE, NONE, NONE, NONE, FAILED) is payments.PaymentOutcome.NO_HOLDS_ITEM
    throttled = decoded(NONE, NONE, NONE, NONE, NONE, "ThrottlingError", NONE, NONE)
    with pytest.raises(ClientError):
        payments._outcome(throttled, 1, WALLET, ENTRY, "t")


# ---- cancellations: wallet, ledger, reservation, seat, tickets, record ----
def test_a_cancellation_cancelled_on_its_record_is_a_duplicate():
    result = cancellations._outcome(decoded(NONE, NONE, FAILED, NONE, NONE, FAILED, items={5: RECORD}), WALLET)
    assert result.outcome is cancellations.CancelOutcome.DUPLICATE and result.record == RECORD
    changed = cancellations._outcome(decoded(NONE, CONFLICT, FAILED, NONE, NONE, NONE), WALLET)
    assert changed.outcome is cancellations.CancelOutcome.CHANGED and changed.cancelling is not None


# ---- the idempotency record ----
def test_a_record_remembers_the_bodys_hash_and_the_answer_and_refuses_another_body():
    answer = PaymentOut(payment_id="pay_1", reservation_ids=["r1"], reservation_id="r1", amount=5, balance=0)
    record = PAY.record("alice", "k", {"reservationIds": ["r1"]})
    assert record == PAY.record("alice", "k", {"reservationIds": ["r1"]})
    assert record.record_id != PAY.record("bob", "k", {"reservationIds": ["r1"]}).record_id  # keys are per user
    put = PAY.put("T", record, answer, now=100)["Put"]
    stored = from_raw(put["Item"])
    assert put["ConditionExpression"] == "attribute_not_exists(PK)"
    assert stored["ttl"] == 100 + 24 * 3600 and stored["fingerprint"] == record.fingerprint
    assert PAY.replay(record, stored) == answer
    with pytest.raises(IdempotencyKeyReused):
        PAY.replay(PAY.record("alice", "k", {"reservationIds": ["r2"]}), stored)


def test_a_charge_record_never_expires_and_every_operation_has_its_own_ids():
    stored = from_raw(
        CHARGE.put("T", CHARGE.record("a", "k", {"amount": 5}), ChargeOut(balance=5, charge_id="ch_1"), 1)["Put"][
            "Item"
        ]
    )
    assert "ttl" not in stored
    ids = {op.record("a", "k", {}).record_id.split("_")[0] for op in (CHARGE, PAY, CANCEL)}
    assert ids == {"ch", "pay", "ref"}
    assert CANCEL.answer is CancellationOut
