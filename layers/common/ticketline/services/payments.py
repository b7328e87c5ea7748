"""Paying holds from the wallet: 1..10 of them in one atomic step, once each, idempotent per user + Idempotency-Key.

The flow, 2 DynamoDB requests when all goes well:
1. one BatchGetItem: the reservations, the caller's wallet and this call's idempotency record (a record: the
   first answer again, or 409 with another body; 404 unknown, 403 someone else's, 409 paid, 400 when they are
   of several concerts);
2. one TransactWriteItems (repositories/payments.py), whose conditions are the truth: the queue token (not
   read before: its refusal says 401 / 403 / 410), the balance, the ticket limit, each hold, and the
   idempotency record; each cancellation reason maps to the API's error, the first in the contract's order
   when several apply; a wallet that moved is retried at once from what the failure returned,
   `TransactionConflict` with jittered backoff, both bounded; a failed condition is never retried as is. The
   paid seats leave the caller's per-date hold limits in the same transaction.

The payment id is the record's id, derived from (user, key): a second run of the same request finds the
record (or, once it expired, the reservations PAID by this very payment) and answers as the first did, so no
key can pay twice, and no second key can pay a paid reservation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.db import backoff
from ticketline.errors import (
    DomainError,
    Forbidden,
    InsufficientBalance,
    NotFound,
    QueueTokenExpired,
    QueueTokenInvalid,
    QueueTokenNotActive,
    ReservationExpired,
    ReservationNotPayable,
    ScheduleClosed,
    Throttled,
    TicketLimitReached,
    ValidationFailed,
)
from ticketline.idempotency import IdempotentOperation, Record
from ticketline.models.reservations import Reservation
from ticketline.models.wallet import EntryType, LedgerEntry, PaymentIn, PaymentOut, Wallet
from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.payments import PaidBy, PaymentContext, PaymentOutcome, PaymentRepository, refusal

MAX_ATTEMPTS = 10
# Past its expiry a replay is answered from the reservations, which name the payment that paid them.
PAY = IdempotentOperation("payments.pay", "pay", PaymentOut)

_REFUSALS: dict[PaymentOutcome, type[DomainError]] = {
    PaymentOutcome.NOT_OWNER: Forbidden,
    PaymentOutcome.ALREADY_PAID: ReservationNotPayable,
    PaymentOutcome.LAPSED: ReservationExpired,
    PaymentOutcome.CLOSED: ScheduleClosed,
    PaymentOutcome.TOKEN_INVALID: QueueTokenInvalid,
    PaymentOutcome.TOKEN_WAITING: QueueTokenNotActive,
    PaymentOutcome.TOKEN_EXPIRED: QueueTokenExpired,
    PaymentOutcome.TICKET_LIMIT: TicketLimitReached,
    PaymentOutcome.INSUFFICIENT_BALANCE: InsufficientBalance,
}


class PaymentService:
    def __init__(
        self,
        repository: PaymentRepository | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or PaymentRepository(self.settings.table_name)
        self._sleep = sleep

    @tracer.capture_method
    def pay(self, user_id: str, key: str, request: PaymentIn, presented: str | None) -> PaymentOut:
        reservation_ids = request.paid
        # Either body form names the same request ({"reservationId": x} and {"reservationIds": [x]}).
        record = PAY.record(user_id, key, {"reservationIds": reservation_ids})
        context = self.repository.context(reservation_ids, user_id, record.record_id)
        if context.record is not None:
            return PAY.replay(record, context.record)
        reservations = self._payable(context, reservation_ids, user_id, record.record_id)
        if isinstance(reservations, PaidBy):
            return self._replayed(reservation_ids, context, reservations)
        if not presented:
            raise QueueTokenInvalid()
        return self._commit(reservations, context, record, presented)

    def _commit(
        self, reservations: list[Reservation], context: PaymentContext, record: Record, token: str
    ) -> PaymentOut:
        user_id = reservations[0].user_id
        reservation_ids = [reservation.reservation_id for reservation in reservations]
        total = sum(reservation.price for reservation in reservations)
        wallet: Wallet | None = context.wallet
        with_holds_items = True
        for attempt in range(MAX_ATTEMPTS):
            wallet = wallet or self.repository.wallet(user_id)
            now = int(clock.now())
            _refuse_first(reservations, user_id, record.record_id, now)
            if wallet.balance < total:  # the fast answer, after the token's refusals (the contract's order)
                token_refused = self.repository.token_refusal(reservations[0].concert_id, user_id, token, now)
                if token_refused is not None:
                    raise _REFUSALS[token_refused.outcome]()
                raise InsufficientBalance(f"The seats cost {total}; your balance is {wallet.balance}.")
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=record.record_id,
                type=EntryType.PAYMENT,
                amount=total,
                balance_after=wallet.balance - total,
                at=now,
                reservation_ids=tuple(reservation_ids),
            )
            answer = _answer(entry.entry_id, reservation_ids, entry.amount, entry.balance_after)
            result = self.repository.pay(
                reservations,
                wallet,
                entry,
                token,
                self.settings.max_tickets_per_user,
                record=PAY.put(self.repository.table, record, answer, now),
                with_holds_items=with_holds_items,
            )
            if result.outcome is PaymentOutcome.PAID:
                self._paid(entry)
                return answer
            if result.outcome is PaymentOutcome.DUPLICATE:
                logger.info("payment replayed from its record", extra={"paymentId": entry.entry_id})
                return PAY.replay_refused(self.repository.table, record, result.record)
            if result.outcome is PaymentOutcome.PAID_BY_THIS_PAYMENT:  # its record expired since
                return self._replayed(reservation_ids, context, result.paid_by or PaidBy(entry.entry_id, None))
            if result.outcome is PaymentOutcome.STALE:
                wallet = result.wallet  # None: re-read at the top
                backoff(0, self._sleep)
            elif result.outcome is PaymentOutcome.NO_HOLDS_ITEM:
                with_holds_items = False  # the holds lapsed from that item: nothing there to give back
            elif result.outcome is PaymentOutcome.CONFLICT:
                metrics.add_metric(name="PaymentConflicts", unit="Count", value=1)
                wallet = None
                backoff(attempt, self._sleep)
            else:
                metrics.add_metric(name="PaymentsRefused", unit="Count", value=1)
                raise _REFUSALS[result.outcome]()
        logger.warning("payment gave up after retries", extra={"reservationIds": reservation_ids})
        raise Throttled(retry_after_seconds=1, message="Payment is busy; retry with the same Idempotency-Key.")

    def _payable(
        self, context: PaymentContext, reservation_ids: list[str], user_id: str, payment_id: str
    ) -> list[Reservation] | PaidBy:
        """The reservations to pay, in the request's order; or, when this payment paid them already, by what."""
        missing = [rid for rid in reservation_ids if rid not in context.found]
        if missing:
            raise NotFound(f"Reservation {missing[0]} does not exist.")
        paying = [context.found[rid] for rid in reservation_ids]
        if any(p.reservation.user_id != user_id for p in paying):
            raise Forbidden("This reservation belongs to someone else.")
        if any(p.paid_by.payment_id == payment_id for p in paying):
            return next(p.paid_by for p in paying if p.paid_by.payment_id == payment_id)
        if len({p.reservation.concert_id for p in paying}) > 1:
            raise ValidationFailed.field("reservationIds", "must all be reservations of one concert")
        if len(paying) > self.settings.max_tickets_per_user:
            most = self.settings.max_tickets_per_user
            raise TicketLimitReached(f"One buyer owns at most {most} tickets of a concert.")
        reservations = [p.reservation for p in paying]
        _refuse_first(reservations, user_id, payment_id, int(clock.now()))
        return reservations

    def _paid(self, entry: LedgerEntry) -> None:
        metrics.add_metric(name="Sales", unit="Count", value=len(entry.reservation_ids))
        metrics.add_metric(name="Revenue", unit="None", value=entry.amount)
        logger.info(
            "reservations paid",
            extra={"reservationIds": list(entry.reservation_ids), "paymentId": entry.entry_id, "amount": entry.amount},
        )

    def _replayed(self, reservation_ids: list[str], context: PaymentContext, paid_by: PaidBy) -> PaymentOut:
        """Paid by this very payment before, its record expired since: the first answer again, from its ledger
        entry (a payment record outlives no reservation)."""
        user_id = context.wallet.user_id
        entry = self.repository.entry(user_id, paid_by.seq) if paid_by.seq else None
        balance = entry.balance_after if entry else self.repository.wallet(user_id).balance
        amount = entry.amount if entry else sum(context.found[rid].reservation.price for rid in reservation_ids)
        logger.info("payment replayed from the reservations", extra={"reservationIds": reservation_ids})
        return _answer(paid_by.payment_id or "", reservation_ids, amount, balance)


def _refuse_first(reservations: list[Reservation], user_id: str, payment_id: str, now: int) -> None:
    """The fast answer before the write, in the contract's order: 403, 409 paid, 410 lapsed, 409 closed."""
    outcomes = [refusal(reservation, PaidBy(None, None), user_id, payment_id, now) for reservation in reservations]
    refused = sorted((o for o in outcomes if o is not PaymentOutcome.PAID), key=list(PaymentOutcome).index)
    if refused:
        metrics.add_metric(name="PaymentsRefused", unit="Count", value=1)
        raise _REFUSALS[refused[0]]()


def _answer(payment_id: str, reservation_ids: list[str], amount: int, balance: int) -> PaymentOut:
    return PaymentOut(
        payment_id=payment_id,
        reservation_ids=reservation_ids,
        reservation_id=reservation_ids[0] if len(reservation_ids) == 1 else None,
        amount=amount,
        balance=balance,
    )
