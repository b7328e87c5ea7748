"""Cancelling a PAID ticket: the price back to the wallet, the reservation CANCELLED and the seat on sale again,
in one transaction (repositories/cancellations.py), idempotent per user + Idempotency-Key.

The flow, 2 DynamoDB requests: one BatchGetItem (reservation, wallet, this call's idempotency record: 404,
403, 409 not PAID, 409 past the cut-off), then the transaction, whose conditions are the truth (the cut-off is
one of them) and which writes the idempotency record. The refund id is the record's, derived from (user, key):
a second run of the same request finds the record (or, once it expired, the reservation CANCELLED by this
very refund) and answers as the first did; another key finds it CANCELLED and is 409. A refund is paid in
full, past the balance ceiling too (the ceiling limits charges only).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.db import backoff
from ticketline.errors import CancellationClosed, Forbidden, NotFound, ReservationNotReleasable, Throttled
from ticketline.idempotency import IdempotentOperation
from ticketline.models.reservations import CancellationOut, Reservation, ReservationStatus
from ticketline.models.wallet import EntryType, LedgerEntry, Wallet
from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.cancellations import CancellationRepository, Cancelling, CancelOutcome

MAX_ATTEMPTS = 10
HOUR = 3600
# Past its expiry a replay is answered from the reservation, which names the refund that cancelled it.
CANCEL = IdempotentOperation("reservations.cancel", "ref", CancellationOut)


class CancellationService:
    def __init__(
        self,
        repository: CancellationRepository | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or CancellationRepository(self.settings.table_name)
        self._sleep = sleep

    @tracer.capture_method
    def cancel(self, user_id: str, key: str, reservation_id: str) -> CancellationOut:
        record = CANCEL.record(user_id, key, {"reservationId": reservation_id})
        refund_id = record.record_id
        cancelling = self.repository.context(reservation_id, user_id, refund_id)
        if cancelling.record is not None:
            return CANCEL.replay(record, cancelling.record)
        wallet: Wallet | None = cancelling.wallet
        cutoff_seconds = self.settings.cancellation_cutoff_hours * HOUR
        for attempt in range(MAX_ATTEMPTS):
            reservation, replay = self._cancellable(cancelling, reservation_id, user_id, refund_id, cutoff_seconds)
            if replay:
                return self._replayed(reservation, cancelling)
            wallet = wallet or self.repository.wallet(user_id)
            entry = LedgerEntry(
                user_id=user_id,
                seq=wallet.version + 1,
                entry_id=refund_id,
                type=EntryType.REFUND,
                amount=reservation.price,
                balance_after=wallet.balance + reservation.price,
                at=int(clock.now()),
                reservation_ids=(reservation_id,),
            )
            answer = _answer(reservation_id, entry.amount, entry.balance_after)
            result = self.repository.cancel(
                reservation, wallet, entry, cutoff_seconds, CANCEL.put(self.repository.table, record, answer, entry.at)
            )
            if result.outcome is CancelOutcome.CANCELLED:
                metrics.add_metric(name="TicketsCancelled", unit="Count", value=1)
                metrics.add_metric(name="Refunds", unit="None", value=entry.amount)
                logger.info("ticket cancelled", extra={"reservationId": reservation_id, "refund": entry.amount})
                return answer
            if result.outcome is CancelOutcome.DUPLICATE:
                logger.info("cancellation replayed from its record", extra={"reservationId": reservation_id})
                return CANCEL.replay_refused(self.repository.table, record, result.record)
            if result.outcome is CancelOutcome.CHANGED and result.cancelling is not None:
                cancelling = result.cancelling  # answered by _cancellable at the top
            elif result.outcome is CancelOutcome.STALE:
                wallet = result.wallet
                backoff(0, self._sleep)
            else:
                wallet = None
                backoff(attempt, self._sleep)
        logger.warning("cancellation gave up after retries", extra={"reservationId": reservation_id})
        raise Throttled(retry_after_seconds=1, message="Cancellation is busy; retry with the same Idempotency-Key.")

    def _cancellable(
        self, cancelling: Cancelling, reservation_id: str, user_id: str, refund_id: str, cutoff_seconds: int
    ) -> tuple[Reservation, bool]:
        """The reservation to cancel, and whether this very refund cancelled it already (a replay)."""
        reservation = cancelling.reservation
        if reservation is None:
            raise NotFound(f"Reservation {reservation_id} does not exist.")
        if reservation.user_id != user_id:
            raise Forbidden("This reservation belongs to someone else.")
        if cancelling.refund_id == refund_id:
            return reservation, True
        status = reservation.effective_status(clock.now())
        if status is not ReservationStatus.PAID:
            raise ReservationNotReleasable(f"The reservation is {status.value}: only a PAID ticket can be cancelled.")
        if reservation.starts_at <= clock.to_iso(clock.now() + cutoff_seconds):
            raise CancellationClosed(
                f"Tickets can be cancelled until {self.settings.cancellation_cutoff_hours} h before the date starts."
            )
        return reservation, False

    def _replayed(self, reservation: Reservation, cancelling: Cancelling) -> CancellationOut:
        """Cancelled by this very request before, its record expired since: the first answer again, from its
        ledger entry."""
        user_id = cancelling.wallet.user_id
        entry = self.repository.entry(user_id, cancelling.refund_seq) if cancelling.refund_seq else None
        balance = entry.balance_after if entry else self.repository.wallet(user_id).balance
        return _answer(reservation.reservation_id, reservation.price, balance)


def _answer(reservation_id: str, refund: int, balance: int) -> CancellationOut:
    return CancellationOut(
        reservation_id=reservation_id, status=ReservationStatus.CANCELLED, refund=refund, balance=balance
    )
