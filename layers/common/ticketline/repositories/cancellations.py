"""A cancellation: one TransactWriteItems of six items, all private to this buyer and this seat.

    0 wallet       WALLET#<uid>/BALANCE           balance + price, version + 1   if version = seen (no ceiling: a
                                                  refund is always paid back in full)
    1 ledger       WALLET#<uid>/LEDGER#<seq>      REFUND (amount, balanceAfter, reservationIds)         if new
    2 reservation  RESERVATION#<rid>/RESERVATION  PAID -> CANCELLED (refundId, refundSeq, cancelledAt)
                                                  if userId = caller AND status = PAID AND startsAt > now + cut-off
    3 seat         SCHEDULE#<sid>/SEAT#00042      SOLD -> FREE (on sale again)   if SOLD AND reservationId = rid
    4 tickets      TICKETS#<cid>#<uid>/TICKETS    DELETE the reservation id (the ticket limit gets its place back)
    5 record       IDEMPOTENCY#<refundId>         body hash + answer (ticketline/idempotency.py)        if new

CANCELLED is final and only this transaction writes it, from PAID: the reservation is the once-per-ticket
guard of the REFUND entry, and it records which refund moved it, so a replay tells "cancelled by me" apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import Cancelled, Item, get_many, to_raw, transact, values
from ticketline.idempotency import record_key
from ticketline.models.catalog import SeatStatus
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import LedgerEntry, Wallet
from ticketline.repositories.catalog import seat_key
from ticketline.repositories.reservations import reservation_from_item, reservation_key, tickets_key
from ticketline.repositories.wallet import WalletRepository, old_wallet, wallet_from_item, wallet_key

_WALLET, _LEDGER, _RESERVATION, _SEAT, _TICKETS, _RECORD = range(6)


@dataclass(frozen=True, slots=True)
class Cancelling:
    """The reservation as the cancellation read it, with the refund that cancelled it, if any."""

    reservation: Reservation | None
    refund_id: str | None
    refund_seq: int | None
    wallet: Wallet
    record: Item | None = None  # the idempotency record of this user + key, if a cancellation committed with it


class CancelOutcome(Enum):
    CANCELLED = "cancelled"
    CHANGED = "changed"  # the reservation is not as we read it: see CancelResult.cancelling
    STALE = "stale"  # the wallet moved since we read it: see CancelResult.wallet
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"  # this key's idempotency record exists: see CancelResult.record


@dataclass(frozen=True, slots=True)
class CancelResult:
    outcome: CancelOutcome
    cancelling: Cancelling | None = None  # CHANGED
    wallet: Wallet | None = None  # STALE (None: re-read it)
    record: Item | None = None  # DUPLICATE: the first call's record, as the refusal returned it


class CancellationRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self.wallets = WalletRepository(self.table)

    def context(self, reservation_id: str, user_id: str, record_id: str) -> Cancelling:
        """The reservation, the caller's wallet and this call's idempotency record in one strongly consistent
        BatchGetItem."""
        keys = [reservation_key(reservation_id), wallet_key(user_id), record_key(record_id)]
        found = {str(item["SK"]): item for item in get_many(self.table, keys, consistent=True)}
        return _cancelling(
            found.get("RESERVATION"), wallet_from_item(user_id, found.get("BALANCE")), found.get("IDEMPOTENCY")
        )

    def wallet(self, user_id: str) -> Wallet:
        return self.wallets.get(user_id)

    def entry(self, user_id: str, seq: int) -> LedgerEntry | None:
        return self.wallets.entry(user_id, seq)

    def cancel(
        self, reservation: Reservation, wallet: Wallet, entry: LedgerEntry, cutoff_seconds: int, record: dict[str, Any]
    ) -> CancelResult:
        """The cancellation's one transaction. `record`: the idempotency record's Put (ticketline/idempotency.py)."""
        now = entry.at
        items: list[Any] = [
            self.wallets.balance_update(wallet, entry),
            self.wallets.entry_put(entry),
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
            record,
        ]
        refused = transact(items)
        if refused is None:
            return CancelResult(CancelOutcome.CANCELLED)
        return _outcome(refused, wallet)


def _outcome(refused: Cancelled, wallet: Wallet) -> CancelResult:
    if refused[_RECORD].condition_failed:
        return CancelResult(CancelOutcome.DUPLICATE, record=refused[_RECORD].item)
    if refused[_RESERVATION].condition_failed:
        return CancelResult(CancelOutcome.CHANGED, cancelling=_cancelling(refused[_RESERVATION].item, wallet))
    if refused.conflict:
        return CancelResult(CancelOutcome.CONFLICT)
    if refused[_WALLET].condition_failed:
        seen = old_wallet(wallet.user_id, refused[_WALLET])
        return CancelResult(CancelOutcome.STALE, wallet=seen if seen and seen.version else None)
    if refused[_LEDGER].condition_failed:
        return CancelResult(CancelOutcome.STALE)
    # The seat of a PAID reservation is SOLD to it (the payment made it so; only this transaction frees it).
    raise refused.error  # no rule explains it: as DynamoDB said it


def _cancelling(item: Item | None, wallet: Wallet, record: Item | None = None) -> Cancelling:
    if item is None:
        return Cancelling(None, None, None, wallet, record)
    refund_id, refund_seq = item.get("refundId"), item.get("refundSeq")
    return Cancelling(
        reservation=reservation_from_item(item),
        refund_id=str(refund_id) if refund_id else None,
        refund_seq=int(refund_seq) if refund_seq is not None else None,
        wallet=wallet,
        record=record,
    )
