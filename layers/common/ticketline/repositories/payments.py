"""The payment: one TransactWriteItems for 1..10 holds of one concert, all private to this buyer and these seats.

    0 wallet       WALLET#<uid>/BALANCE           balance - total, version + 1   if version = seen AND balance >= total
    1 ledger       WALLET#<uid>/LEDGER#<seq>      PAYMENT (amount, balanceAfter, reservationIds)        if new
    2 queue token  QTOKEN#<cid>#<uid>/QTOKEN      ACTIVE -> EXPIRED              if the one shown, ACTIVE, not past
    3 tickets      TICKETS#<cid>#<uid>/TICKETS    ADD the reservation ids        if it keeps <= MaxTicketsPerUser
    then for each reservation (2 items each, so 10 holds are 24 items, well inside the 100-item limit):
      reservation  RESERVATION#<rid>/RESERVATION  HELD -> PAID (paymentId, paymentSeq, paidAt), leaves GSI2
                                                  if userId = caller AND status = HELD AND holdExpiresAt > now
                                                  AND startsAt > now (the date has not started)
      seat         SCHEDULE#<sid>/SEAT#00042      HELD -> SOLD                   if HELD AND reservationId = rid

No per-concert or per-schedule item is in it (the availableSeats hint counted the seat at hold time), so
payments of different buyers never conflict. The ledger entry exists once per payment because it is only
ever written by the transaction that moves its reservations HELD -> PAID, which can happen once (PAID only
ever moves on to CANCELLED; the lapse, the release and the hold all condition on HELD / FREE): the
reservations are the guard, and each records which payment paid it, so a replay can tell "paid by me" from
"paid". The tickets item counts the user's PAID tickets of the concert (a cancellation takes its id out): the
ticket limit holds under concurrency because it is a condition of this write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import Item, dynamodb, from_raw, get_many, to_raw, values
from ticketline.models.catalog import SeatStatus
from ticketline.models.queue import TokenStatus
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import LedgerEntry, Wallet
from ticketline.observability import logger
from ticketline.repositories.queue import QueueRepository, is_condition_failure
from ticketline.repositories.reservations import (
    ReservationRepository,
    reservation_from_item,
    reservation_key,
    tickets_key,
)
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

_WALLET, _LEDGER, _TOKEN, _TICKETS = range(4)
_FIRST_RESERVATION = 4  # then reservation, seat, reservation, seat...


@dataclass(frozen=True, slots=True)
class PaidBy:
    """Which payment moved a PAID reservation (absent on reservations paid before these fields existed)."""

    payment_id: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class Paying:
    """A reservation as the payment read it."""

    reservation: Reservation
    paid_by: PaidBy


@dataclass(frozen=True, slots=True)
class PaymentContext:
    found: dict[str, Paying]  # reservationId -> what was read (unknown ids are missing)
    wallet: Wallet


class PaymentOutcome(Enum):
    PAID = "paid"
    PAID_BY_THIS_PAYMENT = "paid-by-this-payment"  # our own commit (a lost answer resent, or a replay)
    # Refusals, in the order the API answers them when several apply (API.md, Payments).
    NOT_OWNER = "not-owner"
    ALREADY_PAID = "already-paid"  # by another payment, or released / cancelled: not payable
    LAPSED = "lapsed"
    CLOSED = "closed"  # the date has started
    TOKEN_INVALID = "token-invalid"
    TOKEN_WAITING = "token-waiting"
    TOKEN_EXPIRED = "token-expired"
    SEAT_NOT_HELD = "seat-not-held"
    TICKET_LIMIT = "ticket-limit"
    INSUFFICIENT_BALANCE = "insufficient-balance"
    STALE = "stale"  # the wallet moved since we read it: see PaymentResult.wallet
    CONFLICT = "conflict"  # TransactionConflict: retry later


_PRECEDENCE = list(PaymentOutcome)


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

    def context(self, reservation_ids: Sequence[str], user_id: str) -> PaymentContext:
        """The reservations and the caller's wallet in one strongly consistent BatchGetItem (at most 11 keys)."""
        keys = [reservation_key(rid) for rid in reservation_ids] + [wallet_key(user_id)]
        found = get_many(self.table, keys, consistent=True)
        wallet = next((item for item in found if item["SK"] == "BALANCE"), None)
        return PaymentContext(
            found={
                str(item["reservationId"]): Paying(reservation_from_item(item), paid_by(item))
                for item in found
                if item["SK"] == "RESERVATION"
            },
            wallet=wallet_from_item(user_id, wallet),
        )

    def pay(
        self, reservations: Sequence[Reservation], wallet: Wallet, entry: LedgerEntry, token: str, max_tickets: int
    ) -> PaymentResult:
        now = entry.at
        concert_id = reservations[0].concert_id
        items: list[Any] = [
            {"Update": self.wallets.balance_update(wallet, entry, at_least=entry.amount)},
            {"Put": self.wallets.entry_put(entry)},
            {
                "Update": {
                    **self.queue.expire_update(concert_id, entry.user_id, token),
                    "ConditionExpression": "#status = :active AND #token = :token AND activeUntil > :now",
                    "ExpressionAttributeValues": values(
                        expired=TokenStatus.EXPIRED.value, active=TokenStatus.ACTIVE.value, token=token, now=now
                    ),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": to_raw(tickets_key(concert_id, entry.user_id)),
                    "UpdateExpression": "ADD tickets :paid",
                    "ConditionExpression": "attribute_not_exists(tickets) OR size(tickets) <= :room",
                    "ExpressionAttributeValues": values(
                        paid={r.reservation_id for r in reservations}, room=max_tickets - len(reservations)
                    ),
                }
            },
        ]
        for reservation in reservations:
            items += [
                {"Update": self._paid_update(reservation, entry)},
                {"Update": self.reservations.held_seat_update(reservation, SeatStatus.SOLD)},
            ]
        try:
            dynamodb().transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = cancellation_reasons(error)
            if reasons is None or len(reasons) != len(items):
                raise
            return _outcome(reasons, wallet, entry, token)
        return PaymentResult(PaymentOutcome.PAID)

    def _paid_update(self, reservation: Reservation, entry: LedgerEntry) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": to_raw(reservation_key(reservation.reservation_id)),
            "UpdateExpression": (
                "SET #status = :paid, paymentId = :pid, paymentSeq = :seq, paidAt = :now REMOVE GSI2PK, GSI2SK"
            ),
            # startsAt is the date's, copied at hold time; reservations older than that field cannot tell.
            "ConditionExpression": "userId = :uid AND #status = :held AND holdExpiresAt > :now "
            "AND (attribute_not_exists(startsAt) OR startsAt > :today)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": values(
                paid=ReservationStatus.PAID.value,
                held=ReservationStatus.HELD.value,
                pid=entry.entry_id,
                seq=entry.seq,
                uid=entry.user_id,
                now=entry.at,
                today=clock.to_iso(entry.at),
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def release_holds(self, reservations: Sequence[Reservation]) -> None:
        """Best effort, after the commit: the paid seats stop counting against the per-date hold limit at once
        (one UpdateItem per date). If one is lost the place frees itself when the hold would have lapsed."""
        by_date: dict[str, list[str]] = defaultdict(list)
        for reservation in reservations:
            by_date[reservation.schedule_id].append(reservation.reservation_id)
        user_id = reservations[0].user_id
        for schedule_id, reservation_ids in by_date.items():
            try:
                dynamodb().update_item(**self.reservations.release_hold_update(schedule_id, user_id, reservation_ids))
            except ClientError as error:
                if not is_condition_failure(error):
                    logger.warning("paid hold not released from the per-date limit", extra={"error": str(error)})


def _outcome(reasons: list[Mapping[str, Any]], wallet: Wallet, entry: LedgerEntry, token: str) -> PaymentResult:
    """What a cancelled payment means: of every item's refusal, the one the API answers first."""
    codes = reason_codes(reasons)
    if TRANSACTION_CONFLICT in codes:
        return PaymentResult(PaymentOutcome.CONFLICT)
    refusals = [
        _reservation_outcome(reasons[index].get("Item"), entry)
        for index in range(_FIRST_RESERVATION, len(reasons), 2)
        if codes[index] == CONDITION_FAILED
    ]
    if codes[_TOKEN] == CONDITION_FAILED:
        refusals.append(_token_outcome(reasons[_TOKEN].get("Item"), token))
    if CONDITION_FAILED in codes[_FIRST_RESERVATION + 1 :: 2]:
        refusals.append(PaymentResult(PaymentOutcome.SEAT_NOT_HELD))
    if codes[_TICKETS] == CONDITION_FAILED:
        refusals.append(PaymentResult(PaymentOutcome.TICKET_LIMIT))
    if codes[_WALLET] == CONDITION_FAILED:
        seen = old_wallet(wallet.user_id, reasons[_WALLET])
        if seen is not None and seen.version == wallet.version and seen.balance < entry.amount:
            refusals.append(PaymentResult(PaymentOutcome.INSUFFICIENT_BALANCE))
        else:
            refusals.append(PaymentResult(PaymentOutcome.STALE, wallet=seen if seen and seen.version else None))
    if codes[_LEDGER] == CONDITION_FAILED:
        refusals.append(PaymentResult(PaymentOutcome.STALE))
    if not refusals:
        raise RuntimeError(f"payment cancelled for reasons no rule explains: {codes}")
    return min(refusals, key=lambda result: _PRECEDENCE.index(result.outcome))


def _token_outcome(raw: Any, token: str) -> PaymentResult:
    old = from_raw(raw or {})
    if old.get("token") != token:
        return PaymentResult(PaymentOutcome.TOKEN_INVALID)
    if old.get("status") == TokenStatus.WAIT.value:
        return PaymentResult(PaymentOutcome.TOKEN_WAITING)
    return PaymentResult(PaymentOutcome.TOKEN_EXPIRED)


def _reservation_outcome(raw: Any, entry: LedgerEntry) -> PaymentResult:
    if raw is None:
        return PaymentResult(PaymentOutcome.ALREADY_PAID)  # gone: nothing payable here
    item = from_raw(raw)
    outcome = refusal(reservation_from_item(item), paid_by(item), entry.user_id, entry.entry_id, entry.at)
    # Its condition failed although it looks payable: the only thing that moves on its own is the hold's time.
    return PaymentResult(PaymentOutcome.LAPSED if outcome is PaymentOutcome.PAID else outcome, paid_by=paid_by(item))


def refusal(reservation: Reservation, by: PaidBy, user_id: str, payment_id: str, now: int) -> PaymentOutcome:
    """Why `payment_id` of `user_id` cannot pay the reservation at `now` (PAID_BY_THIS_PAYMENT: it did already;
    PAID: nothing stands in the way)."""
    if reservation.user_id != user_id:
        return PaymentOutcome.NOT_OWNER
    if by.payment_id == payment_id:
        return PaymentOutcome.PAID_BY_THIS_PAYMENT  # even if cancelled since: the payment itself happened
    status = reservation.effective_status(now)
    if status in (ReservationStatus.PAID, ReservationStatus.RELEASED, ReservationStatus.CANCELLED):
        return PaymentOutcome.ALREADY_PAID
    if status is ReservationStatus.EXPIRED:
        return PaymentOutcome.LAPSED
    if reservation.starts_at and reservation.starts_at <= clock.to_iso(now):
        return PaymentOutcome.CLOSED
    return PaymentOutcome.PAID


def paid_by(item: Item | None) -> PaidBy:
    if item is None:
        return PaidBy(None, None)
    payment_id, seq = item.get("paymentId"), item.get("paymentSeq")
    return PaidBy(str(payment_id) if payment_id else None, int(seq) if seq is not None else None)
