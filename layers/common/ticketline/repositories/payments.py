"""The payment: one TransactWriteItems for 1..10 holds of one concert, all private to this buyer and these seats.

    0 wallet       WALLET#<uid>/BALANCE           balance - total, version + 1   if version = seen AND balance >= total
    1 ledger       WALLET#<uid>/LEDGER#<seq>      PAYMENT (amount, balanceAfter, reservationIds)        if new
    2 queue token  QTOKEN#<cid>#<uid>/QTOKEN      ACTIVE -> EXPIRED              if the one shown, ACTIVE, not past
    3 tickets      TICKETS#<cid>#<uid>/TICKETS    ADD the reservation ids        if it keeps <= MaxTicketsPerUser
    4 record       IDEMPOTENCY#<paymentId>        body hash + answer (ticketline/idempotency.py)        if new
    then for each reservation (2 items each):
      reservation  RESERVATION#<rid>/RESERVATION  HELD -> PAID (paymentId, paymentSeq, paidAt), leaves GSI2
                                                  if userId = caller AND status = HELD AND holdExpiresAt > now
                                                  AND startsAt > now (the date has not started)
      seat         SCHEDULE#<sid>/SEAT#00042      HELD -> SOLD                   if HELD AND reservationId = rid
    then for each date: the user's holds   HOLDS#<sid>#<uid>/HOLDS   the paid holds out of the per-date limit
                                                  if the item exists (else the payment is retried without it)
(10 holds of 10 dates are 35 items, well inside the 100-item limit.)

The queue token is not read before: its condition is the truth, and its ALL_OLD tells 401 / 403 / 410 apart.
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
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import Cancelled, Item, Reason, get_many, to_raw, transact, values
from ticketline.idempotency import record_key
from ticketline.models.catalog import SeatStatus
from ticketline.models.queue import TokenStatus
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import LedgerEntry, Wallet
from ticketline.repositories.queue import QueueRepository, token_key
from ticketline.repositories.reservations import (
    ReservationRepository,
    reservation_from_item,
    reservation_key,
    tickets_key,
)
from ticketline.repositories.wallet import WalletRepository, wallet_from_item, wallet_key

_WALLET, _LEDGER, _TOKEN, _TICKETS, _RECORD = range(5)
_FIRST_RESERVATION = 5  # then reservation, seat, reservation, seat..., then the holds item of each date


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
    record: Item | None  # the idempotency record of this user + key, if a payment committed with it


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
    TICKET_LIMIT = "ticket-limit"
    INSUFFICIENT_BALANCE = "insufficient-balance"
    STALE = "stale"  # the wallet moved since we read it: see PaymentResult.wallet
    CONFLICT = "conflict"  # TransactionConflict: retry later
    DUPLICATE = "duplicate"  # this key's idempotency record exists: see PaymentResult.record
    NO_HOLDS_ITEM = "no-holds-item"  # a date's holds item is gone: pay without touching it


_PRECEDENCE = list(PaymentOutcome)


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: PaymentOutcome
    wallet: Wallet | None = None  # STALE: the wallet as the failure saw it (None: re-read it)
    paid_by: PaidBy | None = None  # PAID_BY_THIS_PAYMENT
    record: Item | None = None  # DUPLICATE: the first call's record, as the refusal returned it


class PaymentRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name
        self.wallets = WalletRepository(self.table)
        self.reservations = ReservationRepository(self.table)
        self.queue = QueueRepository(self.table)

    def context(self, reservation_ids: Sequence[str], user_id: str, record_id: str) -> PaymentContext:
        """The reservations, the caller's wallet and this call's idempotency record in one strongly consistent
        BatchGetItem (at most 12 keys)."""
        keys = [reservation_key(rid) for rid in reservation_ids] + [wallet_key(user_id), record_key(record_id)]
        found = get_many(self.table, keys, consistent=True)
        by_kind: dict[str, list[Item]] = defaultdict(list)
        for item in found:
            by_kind[str(item["SK"])].append(item)
        return PaymentContext(
            found={
                str(item["reservationId"]): Paying(reservation_from_item(item), paid_by(item))
                for item in by_kind["RESERVATION"]
            },
            wallet=wallet_from_item(user_id, next(iter(by_kind["BALANCE"]), None)),
            record=next(iter(by_kind["IDEMPOTENCY"]), None),
        )

    def wallet(self, user_id: str) -> Wallet:
        return self.wallets.get(user_id)

    def token_refusal(self, concert_id: str, user_id: str, token: str, now: int) -> PaymentResult | None:
        """What the payment's condition on the queue token would answer, read (one GetItem): for refusals that
        rank after the token's and are known before the write (a short balance)."""
        found = get_many(self.table, [token_key(concert_id, user_id)], consistent=True)
        old = found[0] if found else None
        usable = (
            old is not None
            and old.get("token") == token
            and old.get("status") == TokenStatus.ACTIVE.value
            and int(old.get("activeUntil") or 0) > now
        )
        return None if usable else _token_outcome(old, token)

    def entry(self, user_id: str, seq: int) -> LedgerEntry | None:
        return self.wallets.entry(user_id, seq)

    def pay(
        self,
        reservations: Sequence[Reservation],
        wallet: Wallet,
        entry: LedgerEntry,
        token: str,
        max_tickets: int,
        *,
        record: dict[str, Any],
        with_holds_items: bool = True,
    ) -> PaymentResult:
        """The payment's one transaction. `record`: the idempotency record's Put (ticketline/idempotency.py)."""
        concert_id = reservations[0].concert_id
        items: list[Any] = [
            self.wallets.balance_update(wallet, entry, at_least=entry.amount),
            self.wallets.entry_put(entry),
            {"Update": self.queue.expire_update(concert_id, entry.user_id, token, entry.at, used=True)},
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
            record,
        ]
        for reservation in reservations:
            items += [
                {"Update": self._paid_update(reservation, entry)},
                {"Update": self.reservations.held_seat_update(reservation, SeatStatus.SOLD)},
            ]
        if with_holds_items:
            # The paid seats stop counting against the per-date hold limits in the same step.
            by_date: dict[str, list[str]] = defaultdict(list)
            for reservation in reservations:
                by_date[reservation.schedule_id].append(reservation.reservation_id)
            items += [
                {"Update": self.reservations.release_hold_update(schedule_id, entry.user_id, reservation_ids)}
                for schedule_id, reservation_ids in by_date.items()
            ]
        refused = transact(items)
        if refused is None:
            return PaymentResult(PaymentOutcome.PAID)
        return _outcome(refused, len(reservations), wallet, entry, token)

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


def _outcome(refused: Cancelled, paid: int, wallet: Wallet, entry: LedgerEntry, token: str) -> PaymentResult:
    """What a cancelled payment means: this key's record first (a duplicate committed), else of every item's
    refusal the one the API answers first."""
    if refused[_RECORD].condition_failed:
        return PaymentResult(PaymentOutcome.DUPLICATE, record=refused[_RECORD].item)
    if refused.conflict:
        return PaymentResult(PaymentOutcome.CONFLICT)
    end_of_pairs = _FIRST_RESERVATION + 2 * paid
    refusals = [
        _reservation_outcome(reason.item, entry)
        for reason in refused.failed(range(_FIRST_RESERVATION, end_of_pairs, 2))
    ]
    if refused[_TOKEN].condition_failed:
        refusals.append(_token_outcome(refused[_TOKEN].item, token))
    if refused.failed(range(_FIRST_RESERVATION + 1, end_of_pairs, 2)):
        # The seat left a reservation whose own condition held: only a take-over after the hold lapsed moves it
        # (the other buyer's clock a second past ours), every other move changes the reservation too.
        refusals.append(PaymentResult(PaymentOutcome.LAPSED))
    if refused[_TICKETS].condition_failed:
        refusals.append(PaymentResult(PaymentOutcome.TICKET_LIMIT))
    if refused[_WALLET].condition_failed:
        refusals.append(_wallet_outcome(refused[_WALLET], wallet, entry))
    if refused[_LEDGER].condition_failed:
        refusals.append(PaymentResult(PaymentOutcome.STALE))
    if refusals:
        return min(refusals, key=lambda result: _PRECEDENCE.index(result.outcome))
    if refused.failed(range(end_of_pairs, len(refused.reasons))):
        return PaymentResult(PaymentOutcome.NO_HOLDS_ITEM)
    raise refused.error  # no rule explains it: as DynamoDB said it


def _wallet_outcome(reason: Reason, wallet: Wallet, entry: LedgerEntry) -> PaymentResult:
    # No item returned: the wallet does not exist, so the balance is 0 (a condition on a missing item fails).
    seen = wallet_from_item(wallet.user_id, reason.item)
    if seen.version == wallet.version and seen.balance < entry.amount:
        return PaymentResult(PaymentOutcome.INSUFFICIENT_BALANCE)
    return PaymentResult(PaymentOutcome.STALE, wallet=seen if seen.version else None)


def _token_outcome(old: Item | None, token: str) -> PaymentResult:
    old = old or {}
    if old.get("token") != token:
        return PaymentResult(PaymentOutcome.TOKEN_INVALID)
    if old.get("status") == TokenStatus.WAIT.value:
        return PaymentResult(PaymentOutcome.TOKEN_WAITING)
    return PaymentResult(PaymentOutcome.TOKEN_EXPIRED)


def _reservation_outcome(item: Item | None, entry: LedgerEntry) -> PaymentResult:
    if item is None:
        return PaymentResult(PaymentOutcome.ALREADY_PAID)  # gone: nothing payable here
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
