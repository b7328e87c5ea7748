"""Seat holds: exactly one winner per seat, a per-user limit per date, lazy expiry, and the scheduler's tidy-up.

A hold is one TransactWriteItems (seat, reservation, the user's holds on that date). Its outcome decides:
- the seat was not as we read it: taken (409 SEAT_UNAVAILABLE, never retried), or our read was stale and the
  seat is still free (retry with what the failure returned: at most a couple of times, the seat only moves
  forward);
- the user's holds moved (a concurrent hold of theirs): re-read them and check the limit again;
- TransactionConflict: another transaction held an item; retry with bounded, jittered backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.errors import (
    Forbidden,
    HoldLimitReached,
    NotFound,
    QueueTokenInvalid,
    SeatUnavailable,
    Throttled,
)
from ticketline.models.catalog import Seat, SeatStatus
from ticketline.models.reservations import HoldIn, Reservation, ReservationOut, ReservationStatus
from ticketline.observability import logger, metrics
from ticketline.repositories.reservations import (
    HOLD_BUCKETS,
    HoldOutcome,
    LapseOutcome,
    ReservationRepository,
)
from ticketline.services.catalog import new_id
from ticketline.services.queue import QueueService

MAX_HOLD_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.5
LAPSE_BATCH = 100  # reservations per GSI2 page
LAPSE_MAX_PER_BUCKET = 500  # per run: a backlog drains over several runs, each run stays short
LAPSE_CONFLICT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class LapseSummary:
    lapsed: int = 0  # reservations marked EXPIRED
    released: int = 0  # of which the seat went back to FREE (the others had been taken over)


class ReservationService:
    def __init__(
        self,
        repository: ReservationRepository | None = None,
        queue: QueueService | None = None,
        settings: Settings | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or ReservationRepository(self.settings.table_name)
        self.queue = queue or QueueService(settings=self.settings)
        self._sleep = sleep

    # ---- request path ----
    def hold(self, request: HoldIn, user_id: str, presented: str | None) -> ReservationOut:
        """3 requests: BatchGetItem, the token's GetItem, TransactWriteItems (the only write)."""
        if not presented:
            raise QueueTokenInvalid()
        context = self.repository.hold_context(request.schedule_id, request.seat_number, user_id)
        if context.schedule is None:
            raise NotFound(f"Schedule {request.schedule_id} does not exist.")
        schedule = context.schedule
        self.queue.require_active(schedule.concert_id, user_id, presented)
        if context.seat is None:
            raise NotFound(f"Schedule {request.schedule_id} has no seat {request.seat_number}.")
        seat, holds = context.seat, context.holds
        reservation_id = new_id()
        for attempt in range(MAX_HOLD_ATTEMPTS):
            now = int(clock.now())
            if not seat.is_free(now):  # held (live) or sold: nothing was written, nothing to retry
                metrics.add_metric(name="HoldsRefused", unit="Count", value=1)
                raise SeatUnavailable()
            live = holds.live(now)
            if len(live) >= self.settings.max_holds_per_schedule:
                metrics.add_metric(name="HoldLimitReached", unit="Count", value=1)
                raise HoldLimitReached(
                    f"You already hold {len(live)} seats on this date (at most "
                    f"{self.settings.max_holds_per_schedule}); pay or let one lapse first."
                )
            reservation = Reservation(
                reservation_id=reservation_id,
                user_id=user_id,
                concert_id=schedule.concert_id,
                schedule_id=schedule.schedule_id,
                starts_at=schedule.starts_at,
                seat_number=seat.number,
                price=seat.price,
                status=ReservationStatus.HELD,
                hold_expires_at=now + self.settings.seat_hold_ttl_seconds,
                created_at=now,
            )
            # Lapsed entries are pruned as we go: the item only ever lists this user's live holds.
            result = self.repository.try_hold(
                reservation, seat, live | {reservation_id: reservation.hold_expires_at}, holds.version
            )
            if result.outcome is HoldOutcome.HELD or _ours(result.seat, reservation_id):
                self._after_hold(reservation, took_free_seat=seat.status is SeatStatus.FREE)
                return reservation.view(now)
            if result.outcome is HoldOutcome.SEAT_CHANGED:
                if result.seat is None:
                    raise NotFound(f"Schedule {request.schedule_id} has no seat {request.seat_number}.")
                seat = result.seat  # taken -> 409 at the top of the loop; still free (stale read) -> retry
            elif result.outcome is HoldOutcome.HOLDS_CHANGED:
                holds = self.repository.user_holds(schedule.schedule_id, user_id)
            else:  # CONFLICT
                metrics.add_metric(name="HoldConflicts", unit="Count", value=1)
                self._backoff(attempt)
        logger.warning("hold gave up after retries", extra={"scheduleId": schedule.schedule_id})
        raise Throttled(retry_after_seconds=1, message="The seat is in high demand; retry in a moment.")

    def get(self, reservation_id: str, user_id: str) -> ReservationOut:
        """One GetItem."""
        reservation = self.repository.get(reservation_id, consistent=True)  # read-your-hold right after the POST
        if reservation is None:
            raise NotFound(f"Reservation {reservation_id} does not exist.")
        if reservation.user_id != user_id:
            raise Forbidden("This reservation belongs to someone else.")
        return reservation.view(clock.now())

    def _after_hold(self, reservation: Reservation, took_free_seat: bool) -> None:
        metrics.add_metric(name="SeatsHeld", unit="Count", value=1)
        if not took_free_seat:
            metrics.add_metric(name="LapsedHoldsTakenOver", unit="Count", value=1)
        logger.info(
            "seat held",
            extra={
                "reservationId": reservation.reservation_id,
                "scheduleId": reservation.schedule_id,
                "seatNumber": reservation.seat_number,
            },
        )

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))

    # ---- scheduler ----
    def lapse_due(self) -> LapseSummary:
        """Mark lapsed holds EXPIRED (and free their seats unless taken over), in bounded batches per bucket."""
        now = int(clock.now())
        lapsed = released = 0
        for bucket in range(HOLD_BUCKETS):
            for reservation in self.repository.due(bucket, now, LAPSE_MAX_PER_BUCKET, LAPSE_BATCH):
                outcome = self._lapse(reservation, now)
                lapsed += outcome in (LapseOutcome.RELEASED, LapseOutcome.EXPIRED_ONLY)
                released += outcome is LapseOutcome.RELEASED
        if lapsed:
            metrics.add_metric(name="HoldsLapsed", unit="Count", value=lapsed)
            metrics.add_metric(name="SeatsReleased", unit="Count", value=released)
        return LapseSummary(lapsed=lapsed, released=released)

    def _lapse(self, reservation: Reservation, now: int) -> LapseOutcome:
        for attempt in range(LAPSE_CONFLICT_RETRIES):
            outcome = self.repository.lapse(reservation, now)
            if outcome is not LapseOutcome.CONFLICT:
                return outcome
            self._backoff(attempt)
        return LapseOutcome.CONFLICT  # the next run picks it up again


def _ours(seat: Seat | None, reservation_id: str) -> bool:
    """Our own transaction committed but its answer was lost, and botocore's resend found the seat taken: by us."""
    return seat is not None and seat.reservation_id == reservation_id
