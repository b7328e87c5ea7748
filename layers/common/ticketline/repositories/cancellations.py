"""A cancellation: one TransactWriteItems of five items, all private to this buyer and this seat.

    0 wallet       WALLET#<uid>/BALANCE           balance + price, version + 1   if version = seen (no ceiling: a
                                                  refund is always paid back in full)
    1 ledger       WALLET#<uid>/LEDGER#<seq>      REFUND (amount, balanceAfter, reservationIds)         if new
    2 reservation  RESERVATION#<rid>/RESERVATION  PAID -> CANCELLED (refundId, refundSeq, cancelledAt)
                                                  if userId = caller AND status = PAID AND startsAt > now + cut-off
    3 seat         SCHEDULE#<sid>/SEAT#00042      SOLD -> FREE (on sale again)   if SOLD AND reservationId = rid
    4 tickets      TICKETS#<cid>#<uid>/TICKETS    DELETE the reservation id (the ticket limit gets its place back)

CANCELLED is final and only this transaction writes it, from PAID: the reservation is the once-per-ticket
guard of the REFUND entry, and it records which refund moved it, so a replay tells "cancelled by me" apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import Item, dynamodb, from_raw, get_many, to_raw, values
from ticketline.models.catalog import SeatStatus
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import LedgerEntry, Wallet
from ticketline.repositories.catalog import seat_key
from ticketline.repositories.reservations import reservation_from_item, reservation_key, tickets_key
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

_WALLET, _LEDGER, _RESERVATION, _SEAT, _TICKETS = range(5)


@dataclass(frozen=True, slots=True)
class Cancelling:
    """The reservation as the cancellation read it, with the refund that cancelled it, if any."""

    reservation: Reservation | None
    refund_id: str | None
    refund_seq: int | None
    wallet: Wallet


class CancelOutcome(Enum):
    CANCELLED = "cancelled"
    CHANGED = "changed"  # the reservation is not as we read it: see CancelResult.cancelling
    STALE = "stale"  # the wallet moved since we read it: see CancelResult.wallet
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class CancelResult:
    outcome: CancelOutcome
    cancelling: Cancelling | None = None  # CHANGED
    wallet: Wallet | None = None  # STALE (None: re-read it)


class CancellationRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self.wallets = WalletRepository(self.table)

    def context(self, reservation_id: str, user_id: str) -> Cancelling:
        """The reservation and the caller's wallet in one strongly consistent BatchGetItem."""
        found = get_many(self.table, [reservation_key(reservation_id), wallet_key(user_id)], consistent=True)
        reservation = next((item for item in found if item["SK"] == "RESERVATION"), None)
        wallet = wallet_from_item(user_id, next((item for item in found if item["SK"] == "BALANCE"), None))
        return _cancelling(reservation, wallet)

    def cancel(self, reservation: Reservation, wallet: Wallet, entry: LedgerEntry, cutoff_seconds: int) -> CancelResult:
        now = entry.at
        items: list[Any] = [
            {"Update": self.wallets.balance_update(wallet, entry)},
            {"Put": self.wallets.entry_put(entry)},
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(reservation_key(reservation.reservation_id)),
                    "UpdateExpression": (
                        "SET #status = :cancelled, refundId = :fid, refundSeq = :seq, cancelledAt = :now"
                    ),
                    "ConditionExpression": "userId = :uid AND #status = :paid AND startsAt > :cutoff",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values(
                        cancelled=ReservationStatus.CANCELLED.value,
                        paid=ReservationStatus.PAID.value,
                        fid=entry.entry_id,
                        seq=entry.seq,
                        now=now,
                        uid=entry.user_id,
                        cutoff=clock.to_iso(now + cutoff_seconds),
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(seat_key(reservation.schedule_id, reservation.seat_number)),
                    # `cancellations`: the seat's count of them, which the operator's sales figures heal from.
                    "UpdateExpression": "SET #status = :free ADD cancellations :one "
                    "REMOVE reservationId, holdExpiresAt",
                    "ConditionExpression": "#status = :sold AND reservationId = :rid",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values(
                        free=SeatStatus.FREE.value, sold=SeatStatus.SOLD.value, rid=reservation.reservation_id, one=1
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(tickets_key(reservation.concert_id, entry.user_id)),
                    "UpdateExpression": "DELETE tickets :ticket",
                    "ExpressionAttributeValues": values(ticket={reservation.reservation_id}),
                }
            },
        ]
        try:
            dynamodb().transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None or len(reasons) != len(items):
                raise
            return _outcome(reasons, wallet)
        return CancelResult(CancelOutcome.CANCELLED)


def _outcome(reasons: list[Mapping[str, Any]], wallet: Wallet) -> CancelResult:
    codes = reason_codes(reasons)
    if codes[_RESERVATION] == CONDITION_FAILED:
        return CancelResult(CancelOutcome.CHANGED, cancelling=_cancelling(_old(reasons[_RESERVATION]), wallet))
    if TRANSACTION_CONFLICT in codes:
        return CancelResult(CancelOutcome.CONFLICT)
    if codes[_WALLET] == CONDITION_FAILED:
        seen = old_wallet(wallet.user_id, reasons[_WALLET])
        return CancelResult(CancelOutcome.STALE, wallet=seen if seen and seen.version else None)
    if codes[_LEDGER] == CONDITION_FAILED:
        return CancelResult(CancelOutcome.STALE)
    # The seat of a PAID reservation is SOLD to it (the payment made it so; only this transaction frees it).
    raise RuntimeError(f"cancellation refused for reasons no rule explains: {codes}")


def _old(reason: Mapping[str, Any]) -> Item | None:
    raw = reason.get("Item")
    return from_raw(raw) if raw else None


def _cancelling(item: Item | None, wallet: Wallet) -> Cancelling:
    if item is None:
        return Cancelling(None, None, None, wallet)
    refund_id, refund_seq = item.get("refundId"), item.get("refundSeq")
    return Cancelling(
        reservation=reservation_from_item(item),
        refund_id=str(refund_id) if refund_id else None,
        refund_seq=int(refund_seq) if refund_seq is not None else None,
        wallet=wallet,
    )
