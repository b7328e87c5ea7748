"""Seat holds: exactly one winner per seat, a per-user limit per date, lazy expiry, and the scheduler's tidy-up.

A hold is one TransactWriteItems (seat, reservation, the user's holds on that date). Its outcome decides:
- the seat was not as we read it: taken (409 SEAT_UNAVAILABLE, never retried), or our read was stale and the
  seat is still free (retry with what the failure returned: at most a couple of times, the seat only moves
  forward);
- the user's holds moved (a concurrent hold of theirs): re-read them and check the limit again;
- TransactionConflict: another transaction held an item; retry with bounded, jittered backoff.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ticketline import clock, cursors
from ticketline.config import Settings, get_settings
from ticketline.db import backoff
from ticketline.errors import (
    Forbidden,
    HoldLimitReached,
    NotFound,
    QueueTokenInvalid,
    ReservationNotReleasable,
    ScheduleClosed,
    SeatUnavailable,
    Throttled,
    TicketLimitReached,
)
from ticketline.models.catalog import ScheduleRef, Seat, SeatStatus
from ticketline.models.reservations import (
    HoldIn,
    Reservation,
    ReservationOut,
    ReservationsOut,
    ReservationStatus,
    UserHolds,
)
from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.reservations import (
    HOLD_BUCKETS,
    HoldOutcome,
    LapseOutcome,
    ReleaseOutcome,
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
    @tracer.capture_method
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
            live = self._refuse_first(schedule, seat, holds, now)
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
                reservation,
                seat,
                live | {reservation_id: reservation.hold_expires_at},
                holds.version,
                self.settings.max_tickets_per_user,
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
            elif result.outcome is HoldOutcome.TICKET_LIMIT:
                raise TicketLimitReached(
                    f"You own {self.settings.max_tickets_per_user} tickets of this concert, the most allowed."
                )
            else:  # CONFLICT
                metrics.add_metric(name="HoldConflicts", unit="Count", value=1)
                self._backoff(attempt)
        logger.warning("hold gave up after retries", extra={"scheduleId": schedule.schedule_id})
        raise Throttled(retry_after_seconds=1, message="The seat is in high demand; retry in a moment.")

    def _refuse_first(self, schedule: ScheduleRef, seat: Seat, holds: UserHolds, now: int) -> dict[str, int]:
        """The fast answers before the write (nothing written, nothing to retry); the live holds otherwise."""
        if schedule.starts_at <= clock.to_iso(now):  # the same rule as the seat's condition, same `now`
            raise ScheduleClosed()
        if not seat.is_free(now):  # held (live) or sold
            metrics.add_metric(name="HoldsRefused", unit="Count", value=1)
            raise SeatUnavailable()
        live = holds.live(now)
        if len(live) >= self.settings.max_holds_per_schedule:
            metrics.add_metric(name="HoldLimitReached", unit="Count", value=1)
            raise HoldLimitReached(
                f"You already hold {len(live)} seats on this date (at most "
                f"{self.settings.max_holds_per_schedule}); pay or let one lapse first."
            )
        return live

    @tracer.capture_method
    def get(self, reservation_id: str, user_id: str) -> ReservationOut:
        """One GetItem."""
        reservation = self.repository.get(reservation_id, consistent=True)  # read-your-hold right after the POST
        if reservation is None:
            raise NotFound(f"Reservation {reservation_id} does not exist.")
        if reservation.user_id != user_id:
            raise Forbidden("This reservation belongs to someone else.")
        return reservation.view(clock.now())

    @tracer.capture_method
    def mine(self, user_id: str, limit: int, cursor: str | None, status: ReservationStatus | None) -> ReservationsOut:
        """The caller's reservations, newest first: one Query of the UserReservations index (a few when filtered).
        The index is eventually consistent: a reservation made a moment ago may show a moment later."""
        now = int(clock.now())
        found, resume = self.repository.of_user(user_id, limit, decode_position(cursor), status, now)
        return ReservationsOut(
            items=[reservation.view(now) for reservation in found],
            next_cursor=encode_position(resume) if resume else None,
        )

    @tracer.capture_method
    def release(self, reservation_id: str, user_id: str) -> ReservationOut:
        """A HELD seat given back at once: one GetItem and one transaction (the only write). Releasing again
        answers the same; PAID, EXPIRED or CANCELLED is 409 RESERVATION_NOT_RELEASABLE."""
        reservation = self.repository.get(reservation_id, consistent=True)
        with_holds_item = True
        for attempt in range(MAX_HOLD_ATTEMPTS):
            if reservation is None:
                raise NotFound(f"Reservation {reservation_id} does not exist.")
            if reservation.user_id != user_id:
                raise Forbidden("This reservation belongs to someone else.")
            now = int(clock.now())
            status = reservation.effective_status(now)
            if status is ReservationStatus.RELEASED:
                return reservation.view(now)
            if status is not ReservationStatus.HELD:
                raise ReservationNotReleasable(f"The reservation is {status.value}: only a HELD one can be released.")
            result = self.repository.release(reservation, now, with_holds_item=with_holds_item)
            if result.outcome is ReleaseOutcome.RELEASED:
                metrics.add_metric(name="HoldsReleased", unit="Count", value=1)
                logger.info("hold released", extra={"reservationId": reservation_id})
                return replace(reservation, status=ReservationStatus.RELEASED).view(now)
            if result.outcome is ReleaseOutcome.CHANGED:
                reservation = result.reservation  # paid, lapsed or released meanwhile: answered at the top
            elif result.outcome is ReleaseOutcome.NO_HOLDS_ITEM:
                with_holds_item = False
            else:
                self._backoff(attempt)
        raise Throttled(retry_after_seconds=1, message="The reservation is busy; retry in a moment.")

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
        backoff(attempt, self._sleep, base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS)

    # ---- scheduler ----
    @tracer.capture_method
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


_POSITION = re.compile(r"^R([0-9]{1,12})\.([A-Za-z0-9_-]{1,64})$")


def encode_position(position: tuple[int, str]) -> str:
    """An opaque cursor: where a listing goes on (createdAt, reservationId). It names no user: the index
    partition is always the caller's."""
    created_at, reservation_id = position
    return cursors.encode(f"R{created_at}.{reservation_id}")


def decode_position(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    match = cursors.decode(cursor, _POSITION)
    return int(match.group(1)), match.group(2)
