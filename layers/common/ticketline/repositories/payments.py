"""The payment: one TransactWriteItems of five items, all private to this buyer and this seat.

    0 wallet       WALLET#<uid>/BALANCE           balance - price, version + 1   if version = seen AND balance >= price
    1 reservation  RESERVATION#<rid>/RESERVATION  HELD -> PAID (paymentId, paymentSeq, paidAt), leaves GSI2
                                                  if userId = caller AND status = HELD AND holdExpiresAt > now
    2 seat         SCHEDULE#<sid>/SEAT#00042      HELD -> SOLD                   if HELD AND reservationId = rid
    3 ledger       WALLET#<uid>/LEDGER#<seq>      PAYMENT (amount, balanceAfter, reservationId)        if new
    4 queue token  QTOKEN#<cid>#<uid>/QTOKEN      ACTIVE -> EXPIRED              if the one shown, ACTIVE, not past

No per-concert or per-schedule item is in it (the availableSeats hint counted the seat at hold time), so
payments of different seats never conflict. The ledger entry exists once per reservation because it is
only ever written by the transaction that moves that reservation HELD -> PAID, which can happen once (PAID is
final; the lapse and the hold both condition on HELD / FREE): the reservation item is the guard, and it
records which payment (paymentId, paymentSeq) paid it, so a replay can tell "paid by me" from "paid".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ticketline.config import get_settings
from ticketline.db import Item, dynamodb, from_raw, get_many, to_raw, values
from ticketline.models.catalog import SeatStatus
from ticketline.models.queue import TokenStatus
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import LedgerEntry, Wallet
from ticketline.observability import logger
from ticketline.repositories.queue import QueueRepository, is_condition_failure
from ticketline.repositories.reservations import ReservationRepository, reservation_from_item, reservation_key
from ticketline.repositories.wallet import (
    CONDITION_FAILED,
    TRANSACTION_CONFLICT,
    WalletRepository,
    cancellation_reasons,
    old_wallet,
    reason_codes,
    wallet_from_item,
    wallet_key,
)

_WALLET, _RESERVATION, _SEAT, _LEDGER, _TOKEN = range(5)


@dataclass(frozen=True, slots=True)
class PaidBy:
    """Which payment moved a PAID reservation (absent on reservations paid before these fields existed)."""

    payment_id: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class PaymentContext:
    reservation: Reservation | None
    paid_by: PaidBy
    wallet: Wallet


class PaymentOutcome(Enum):
    PAID = "paid"
    PAID_BY_THIS_PAYMENT = "paid-by-this-payment"  # our own commit (a lost answer resent, or a replay)
    ALREADY_PAID = "already-paid"  # by another payment
    NOT_OWNER = "not-owner"
    LAPSED = "lapsed"
    SEAT_NOT_HELD = "seat-not-held"
    TOKEN_INVALID = "token-invalid"
    TOKEN_WAITING = "token-waiting"
    TOKEN_EXPIRED = "token-expired"
    INSUFFICIENT_BALANCE = "insufficient-balance"
    STALE = "stale"  # the wallet moved since we read it: see PaymentResult.wallet
    CONFLICT = "conflict"  # TransactionConflict: retry later


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: PaymentOutcome
    wallet: Wallet | None = None  # STALE: the wallet as the failure saw it (None: re-read it)
    paid_by: PaidBy | None = None  # PAID_BY_THIS_PAYMENT


class PaymentRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self.wallets = WalletRepository(self.table)
        self.reservations = ReservationRepository(self.table)
        self.queue = QueueRepository(self.table)

    def context(self, reservation_id: str, user_id: str) -> PaymentContext:
        """The reservation and the caller's wallet in one strongly consistent BatchGetItem."""
        keys = [reservation_key(reservation_id), wallet_key(user_id)]
        found = {str(item["SK"]): item for item in get_many(self.table, keys, consistent=True)}
        reservation = found.get("RESERVATION")
        return PaymentContext(
            reservation=reservation_from_item(reservation) if reservation else None,
            paid_by=_paid_by(reservation),
            wallet=wallet_from_item(user_id, found.get("BALANCE")),
        )

    def pay(self, reservation: Reservation, wallet: Wallet, entry: LedgerEntry, token: str, now: int) -> PaymentResult:
        rid = reservation.reservation_id
        items: list[Any] = [
            {"Update": self.wallets.balance_update(wallet, entry, at_least=entry.amount)},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(reservation_key(rid)),
                    "UpdateExpression": (
                        "SET #status = :paid, paymentId = :pid, paymentSeq = :seq, paidAt = :now REMOVE GSI2PK, GSI2SK"
                    ),
                    "ConditionExpression": "userId = :uid AND #status = :held AND holdExpiresAt > :now",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values(
                        paid=ReservationStatus.PAID.value,
                        held=ReservationStatus.HELD.value,
                        pid=entry.entry_id,
                        seq=entry.seq,
                        uid=entry.user_id,
                        now=now,
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Update": self.reservations.held_seat_update(reservation, SeatStatus.SOLD)},
            {"Put": self.wallets.entry_put(entry)},
            {
                "Update": {
                    **self.queue.expire_update(reservation.concert_id, entry.user_id, token),
                    "ConditionExpression": "#status = :active AND #token = :token AND activeUntil > :now",
                    "ExpressionAttributeValues": values(
                        expired=TokenStatus.EXPIRED.value, active=TokenStatus.ACTIVE.value, token=token, now=now
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        try:
            dynamodb().transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None or len(reasons) != len(items):
                raise
            return _outcome(reasons, wallet, entry, token)
        return PaymentResult(PaymentOutcome.PAID)

    def release_hold(self, reservation: Reservation) -> None:
        """Best effort, after the commit: the paid seat stops counting against the per-date hold limit at once.

        If this is lost the place frees itself when the hold would have lapsed (holds are pruned by time).
        """
        try:
            dynamodb().update_item(
                **self.reservations.release_hold_update(
                    reservation.schedule_id, reservation.user_id, reservation.reservation_id
                )
            )
        except ClientError as error:
            if not is_condition_failure(error):
                logger.warning("paid hold not released from the per-date limit", extra={"error": str(error)})


def _outcome(  # noqa: PLR0911 - one return per cancellation reason
    reasons: list[Mapping[str, Any]], wallet: Wallet, entry: LedgerEntry, token: str
) -> PaymentResult:
    """What a cancelled payment means. The reservation's fate speaks first, then the token's, then the money's."""
    codes = reason_codes(reasons)
    if TRANSACTION_CONFLICT in codes:
        return PaymentResult(PaymentOutcome.CONFLICT)
    if codes[_RESERVATION] == CONDITION_FAILED:
        return _reservation_outcome(reasons[_RESERVATION].get("Item"), entry)
    if codes[_TOKEN] == CONDITION_FAILED:
        old = from_raw(reasons[_TOKEN].get("Item") or {})
        if old.get("token") != token:
            return PaymentResult(PaymentOutcome.TOKEN_INVALID)
        if old.get("status") == TokenStatus.WAIT.value:
            return PaymentResult(PaymentOutcome.TOKEN_WAITING)
        return PaymentResult(PaymentOutcome.TOKEN_EXPIRED)
    if codes[_SEAT] == CONDITION_FAILED:
        return PaymentResult(PaymentOutcome.SEAT_NOT_HELD)
    if codes[_WALLET] == CONDITION_FAILED:
        seen = old_wallet(wallet.user_id, reasons[_WALLET])
        if seen is not None and seen.version == wallet.version and seen.balance < entry.amount:
            return PaymentResult(PaymentOutcome.INSUFFICIENT_BALANCE)
        return PaymentResult(PaymentOutcome.STALE, wallet=seen if seen and seen.version else None)
    if codes[_LEDGER] == CONDITION_FAILED:
        return PaymentResult(PaymentOutcome.STALE)
    raise RuntimeError(f"payment cancelled for reasons no rule explains: {codes}")


def _reservation_outcome(raw: Any, entry: LedgerEntry) -> PaymentResult:
    if raw is None:
        return PaymentResult(PaymentOutcome.ALREADY_PAID)  # gone: nothing payable here
    item = from_raw(raw)
    paid_by = _paid_by(item)
    reservation = reservation_from_item(item)
    if reservation.user_id != entry.user_id:
        return PaymentResult(PaymentOutcome.NOT_OWNER)
    if reservation.status is ReservationStatus.PAID:
        if paid_by.payment_id == entry.entry_id:
            return PaymentResult(PaymentOutcome.PAID_BY_THIS_PAYMENT, paid_by=paid_by)
        return PaymentResult(PaymentOutcome.ALREADY_PAID)
    return PaymentResult(PaymentOutcome.LAPSED)  # EXPIRED, or HELD past holdExpiresAt


def _paid_by(item: Item | None) -> PaidBy:
    if item is None:
        return PaidBy(None, None)
    payment_id, seq = item.get("paymentId"), item.get("paymentSeq")
    return PaidBy(str(payment_id) if payment_id else None, int(seq) if seq is not None else None)
