"""Paying holds from the wallet: 1..10 of them in one atomic step, once each, idempotent per user + Idempotency-Key.

The flow (6 DynamoDB requests when all goes well, 2 of them the Powertools record, + 1 per further date):
1. one BatchGetItem: the reservations and the caller's wallet (404 unknown, 403 someone else's, 409 paid,
   400 when they are of several concerts);
2. the queue token of their concert (401 / 403 / 410);
3. one TransactWriteItems (repositories/payments.py), whose conditions are the truth: each cancellation
   reason maps to the API's error, the first in the contract's order when several apply; a wallet that
   moved is retried at once from what the failure returned, `TransactionConflict` with jittered backoff,
   both bounded; a failed condition is never retried as is;
4. after the commit, best effort: the paid seats leave the caller's per-date hold limits (one write a date).

The payment id is derived from (user, key): a second run of the same request (its answer lost, or the
Powertools record gone after a crash) finds the reservations PAID by this very payment and answers as the
first did, so no key can pay twice, and no second key can pay a paid reservation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline import clock
from ticketline.config import Settings, get_settings
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
from ticketline.idempotency import Answer, IdempotentOperation, Request
from ticketline.models.reservations import Reservation
from ticketline.models.wallet import EntryType, LedgerEntry, PaymentIn, PaymentOut, Wallet
from ticketline.observability import logger, metrics
from ticketline.repositories.payments import PaidBy, PaymentContext, PaymentOutcome, PaymentRepository, refusal
from ticketline.services.queue import QueueService
from ticketline.services.wallet import backoff, derived_id

MAX_ATTEMPTS = 10

_REFUSALS: dict[PaymentOutcome, type[DomainError]] = {
    PaymentOutcome.NOT_OWNER: Forbidden,
    PaymentOutcome.ALREADY_PAID: ReservationNotPayable,
    PaymentOutcome.LAPSED: ReservationExpired,
    PaymentOutcome.CLOSED: ScheduleClosed,
    PaymentOutcome.TOKEN_INVALID: QueueTokenInvalid,
    PaymentOutcome.TOKEN_WAITING: QueueTokenNotActive,
    PaymentOutcome.TOKEN_EXPIRED: QueueTokenExpired,
    PaymentOutcome.SEAT_NOT_HELD: ReservationNotPayable,
    PaymentOutcome.TICKET_LIMIT: TicketLimitReached,
    PaymentOutcome.INSUFFICIENT_BALANCE: InsufficientBalance,
}


class PaymentService:
    def __init__(
        self,
        repository: PaymentRepository | None = None,
        queue: QueueService | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or PaymentRepository(self.settings.table_name)
        self.queue = queue or QueueService(settings=self.settings)
        self.idempotency = IdempotentOperation(
            "payments.pay", validate="reservationId || reservationIds", settings=self.settings
        )
        self._sleep = sleep

    def pay(
        self, user_id: str, key: str, request: PaymentIn, presented: str | None, context: LambdaContext | None = None
    ) -> PaymentOut:
        # Either body form names the same request ({"reservationId": x} and {"reservationIds": [x]}), and one
        # hold is recorded as before several were payable: a retry of a request made before then still matches.
        paid = request.paid
        data: Request = {"userId": user_id, "key": key} | (
            {"reservationId": paid[0]} if len(paid) == 1 else {"reservationIds": paid}
        )
        return PaymentOut.model_validate(self.idempotency.run(partial(self._pay, presented=presented), data, context))

    def _pay(self, request: Request, presented: str | None) -> Answer:
        user_id = str(request["userId"])
        reservation_ids = [str(rid) for rid in request.get("reservationIds") or [request["reservationId"]]]
        payment_id = derived_id("pay", user_id, str(request["key"]))
        context = self.repository.context(reservation_ids, user_id)
        reservations = self._payable(context, reservation_ids, user_id, payment_id)
        if isinstance(reservations, PaidBy):
            return self._replayed(reservation_ids, context, reservations)
        self.queue.require_active(reservations[0].concert_id, user_id, presented)
        total = sum(reservation.price for reservation in reservations)
        wallet: Wallet | None = context.wallet
        for attempt in range(MAX_ATTEMPTS):
            wallet = wallet or self.repository.wallets.get(user_id)
            now = int(clock.now())
            _refuse_first(reservations, user_id, payment_id, now)
            if wallet.balance < total:
                raise InsufficientBalance(f"The seats cost {total}; your balance is {wallet.balance}.")
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=payment_id,
                type=EntryType.PAYMENT,
                amount=total,
                balance_after=wallet.balance - total,
                at=now,
                reservation_ids=tuple(reservation_ids),
            )
            result = self.repository.pay(
                reservations, wallet, entry, presented or "", self.settings.max_tickets_per_user
            )
            if result.outcome is PaymentOutcome.PAID:
                return self._paid(reservations, entry)
            if result.outcome is PaymentOutcome.PAID_BY_THIS_PAYMENT:
                return self._replayed(reservation_ids, context, result.paid_by or PaidBy(payment_id, None))
            if result.outcome is PaymentOutcome.STALE:
                wallet = result.wallet  # None: re-read at the top
                backoff(0, self._sleep)
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

    def _paid(self, reservations: list[Reservation], entry: LedgerEntry) -> Answer:
        metrics.add_metric(name="Sales", unit="Count", value=len(reservations))
        metrics.add_metric(name="Revenue", unit="None", value=entry.amount)
        logger.info(
            "reservations paid",
            extra={"reservationIds": list(entry.reservation_ids), "paymentId": entry.entry_id, "amount": entry.amount},
        )
        self.repository.release_holds(reservations)
        return _answer(entry.entry_id, list(entry.reservation_ids), entry.amount, entry.balance_after)

    def _replayed(self, reservation_ids: list[str], context: PaymentContext, paid_by: PaidBy) -> Answer:
        """Paid by this very payment before: the first answer again, from its ledger entry."""
        user_id = context.wallet.user_id
        entry = self.repository.wallets.entry(user_id, paid_by.seq) if paid_by.seq else None
        balance = entry.balance_after if entry else self.repository.wallets.get(user_id).balance
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


def _answer(payment_id: str, reservation_ids: list[str], amount: int, balance: int) -> Answer:
    return PaymentOut(
        payment_id=payment_id,
        reservation_ids=reservation_ids,
        reservation_id=reservation_ids[0] if len(reservation_ids) == 1 else None,
        amount=amount,
        balance=balance,
    ).model_dump(mode="json", by_alias=True)
