"""Paying a hold from the wallet: one atomic step, once per reservation, idempotent per user + Idempotency-Key.

The flow (6 DynamoDB requests when all goes well, 2 of them the Powertools record):
1. one BatchGetItem: the reservation and the caller's wallet (404 unknown, 403 someone else's, 409 paid);
2. the queue token of the reservation's concert (401 / 403 / 410);
3. one TransactWriteItems (repositories/payments.py), whose conditions are the truth: each cancellation
   reason maps to the API's error; a wallet that moved is retried at once from what the failure returned,
   `TransactionConflict` with jittered backoff, both bounded; a failed condition is never retried as is;
4. after the commit, best effort: the paid seat leaves the caller's per-date hold limit.

The payment id is derived from (user, key): a second run of the same request (its answer lost, or the
Powertools record gone after a crash) finds the reservation PAID by this very payment and answers as the
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
    Throttled,
)
from ticketline.idempotency import Answer, IdempotentOperation, Request
from ticketline.models.reservations import Reservation, ReservationStatus
from ticketline.models.wallet import EntryType, LedgerEntry, PaymentIn, PaymentOut, Wallet
from ticketline.observability import logger, metrics
from ticketline.repositories.payments import PaidBy, PaymentOutcome, PaymentRepository
from ticketline.services.queue import QueueService
from ticketline.services.wallet import backoff, derived_id

MAX_ATTEMPTS = 10

_REFUSALS: dict[PaymentOutcome, type[DomainError]] = {
    PaymentOutcome.ALREADY_PAID: ReservationNotPayable,
    PaymentOutcome.SEAT_NOT_HELD: ReservationNotPayable,
    PaymentOutcome.NOT_OWNER: Forbidden,
    PaymentOutcome.LAPSED: ReservationExpired,
    PaymentOutcome.TOKEN_INVALID: QueueTokenInvalid,
    PaymentOutcome.TOKEN_WAITING: QueueTokenNotActive,
    PaymentOutcome.TOKEN_EXPIRED: QueueTokenExpired,
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
        self.idempotency = IdempotentOperation("payments.pay", validate="reservationId", settings=self.settings)
        self._sleep = sleep

    def pay(
        self, user_id: str, key: str, request: PaymentIn, presented: str | None, context: LambdaContext | None = None
    ) -> PaymentOut:
        data: Request = {"userId": user_id, "key": key, "reservationId": request.reservation_id}
        return PaymentOut.model_validate(self.idempotency.run(partial(self._pay, presented=presented), data, context))

    def _pay(self, request: Request, presented: str | None) -> Answer:
        user_id, reservation_id = str(request["userId"]), str(request["reservationId"])
        payment_id = derived_id("pay", user_id, str(request["key"]))
        context = self.repository.context(reservation_id, user_id)
        reservation = context.reservation
        if reservation is None:
            raise NotFound(f"Reservation {reservation_id} does not exist.")
        if reservation.user_id != user_id:
            raise Forbidden("This reservation belongs to someone else.")
        if reservation.status is ReservationStatus.PAID:
            if context.paid_by.payment_id == payment_id:
                return self._replayed(reservation, context.paid_by)
            raise ReservationNotPayable("The reservation is already paid.")
        self.queue.require_active(reservation.concert_id, user_id, presented)
        wallet: Wallet | None = context.wallet
        for attempt in range(MAX_ATTEMPTS):
            wallet = wallet or self.repository.wallets.get(user_id)
            now = int(clock.now())
            if reservation.effective_status(now) is not ReservationStatus.HELD:
                raise ReservationExpired()
            if wallet.balance < reservation.price:
                raise InsufficientBalance(f"The seat costs {reservation.price}; your balance is {wallet.balance}.")
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=payment_id,
                type=EntryType.PAYMENT,
                amount=reservation.price,
                balance_after=wallet.balance - reservation.price,
                at=now,
                reservation_id=reservation_id,
            )
            result = self.repository.pay(reservation, wallet, entry, presented or "", now)
            if result.outcome is PaymentOutcome.PAID:
                return self._paid(reservation, entry)
            if result.outcome is PaymentOutcome.PAID_BY_THIS_PAYMENT:
                return self._replayed(reservation, result.paid_by or PaidBy(payment_id, None))
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
        logger.warning("payment gave up after retries", extra={"reservationId": reservation_id})
        raise Throttled(retry_after_seconds=1, message="Payment is busy; retry with the same Idempotency-Key.")

    def _paid(self, reservation: Reservation, entry: LedgerEntry) -> Answer:
        metrics.add_metric(name="Sales", unit="Count", value=1)
        metrics.add_metric(name="Revenue", unit="None", value=entry.amount)
        logger.info(
            "reservation paid",
            extra={"reservationId": reservation.reservation_id, "paymentId": entry.entry_id, "amount": entry.amount},
        )
        self.repository.release_hold(reservation)
        return _answer(entry.entry_id, reservation, entry.balance_after)

    def _replayed(self, reservation: Reservation, paid_by: PaidBy) -> Answer:
        """Paid by this very payment before: the first answer again, from its ledger entry."""
        entry = self.repository.wallets.entry(reservation.user_id, paid_by.seq) if paid_by.seq else None
        balance = entry.balance_after if entry else self.repository.wallets.get(reservation.user_id).balance
        logger.info("payment replayed from the reservation", extra={"reservationId": reservation.reservation_id})
        return _answer(paid_by.payment_id or "", reservation, balance)


def _answer(payment_id: str, reservation: Reservation, balance: int) -> Answer:
    return PaymentOut(
        payment_id=payment_id, reservation_id=reservation.reservation_id, amount=reservation.price, balance=balance
    ).model_dump(mode="json", by_alias=True)
