"""Concert creation (admin) and what an ACTIVE buyer may browse: future dates with free seats, free seats."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from ticketline import clock
from ticketline.config import Settings, get_settings
from ticketline.db import Item
from ticketline.errors import NotFound, QueueTokenInvalid
from ticketline.models.catalog import (
    ConcertIn,
    ConcertOut,
    ScheduleCreatedOut,
    ScheduleOut,
    SchedulesOut,
    SeatOut,
    SeatsOut,
)
from ticketline.observability import logger, metrics
from ticketline.repositories.catalog import CatalogRepository
from ticketline.repositories.queue import QueueRepository
from ticketline.services.queue import QueueService


def new_id() -> str:
    """Ids we mint: 32 hex characters (uuid4), within models.queue.ID_PATTERN."""
    return uuid.uuid4().hex


class CatalogService:
    def __init__(
        self,
        repository: CatalogRepository | None = None,
        queue: QueueService | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.repository = repository or CatalogRepository(self.settings.table_name)
        self.queue = queue or QueueService(settings=self.settings)

    # ---- admin ----
    def create_concert(self, request: ConcertIn) -> ConcertOut:
        """Seats and schedule METAs first (batched, unreachable until published), then one transaction
        publishes the concert: its schedule entries, its META and its queue. Until that transaction commits
        nobody can join the queue (404), so nobody can list or hold anything of a half-written concert; if
        it never commits the written seats stay orphaned and unreachable (docs/CATALOG.md)."""
        now = int(clock.now())
        concert_id = new_id()
        capacity = request.queue_capacity or self.settings.default_queue_capacity
        shards = request.queue_shards or self.settings.queue_counter_shards
        created: list[ScheduleCreatedOut] = []
        hidden: list[Item] = []  # schedule METAs (seats are streamed)
        entries: list[Item] = []
        for schedule in request.schedules:
            schedule_id = new_id()
            starts_at = clock.to_iso(int(schedule.starts_at.timestamp()))
            meta, entry = self.repository.schedule_items(concert_id, schedule_id, starts_at, len(schedule.seats))
            hidden.append(meta)
            entries.append(entry)
            created.append(
                ScheduleCreatedOut(schedule_id=schedule_id, starts_at=starts_at, seat_count=len(schedule.seats))
            )
        requests = self.repository.batch_put(self._seat_items(request, created, hidden))
        queue_items = QueueRepository(self.settings.table_name).new_queue_items(concert_id, capacity, shards, now)
        concert = self.repository.concert_item(
            concert_id, title=request.title, capacity=capacity, shards=shards, schedules=len(created), now=now
        )
        self.repository.publish([*entries, concert, *queue_items])
        seats = sum(s.seat_count for s in created)
        metrics.add_metric(name="ConcertsCreated", unit="Count", value=1)
        logger.info(
            "concert created",
            extra={"concertId": concert_id, "schedules": len(created), "seats": seats, "batchRequests": requests},
        )
        return ConcertOut(
            concert_id=concert_id,
            title=request.title,
            queue_capacity=capacity,
            queue_shards=shards,
            schedules=created,
        )

    def _seat_items(self, request: ConcertIn, created: list[ScheduleCreatedOut], metas: list[Item]) -> Iterator[Item]:
        yield from metas
        for schedule, out in zip(request.schedules, created, strict=True):
            for seat in schedule.seats:
                yield self.repository.seat_item(out.schedule_id, seat.number, seat.price, out.starts_at)

    # ---- buyers (ACTIVE token of this concert) ----
    def schedules(self, concert_id: str, user_id: str, presented: str | None) -> SchedulesOut:
        """Future dates with at least one free seat: the token read plus one Query of the concert's partition.

        An ACTIVE token of this concert exists only for a published concert, so there is no 404 after it.
        """
        self._require_active(concert_id, user_id, presented)
        now = int(clock.now())
        entries = self.repository.future_schedules(concert_id, after=clock.to_iso(now))
        return SchedulesOut(
            concert_id=concert_id,
            schedules=[
                ScheduleOut(
                    schedule_id=str(e["scheduleId"]),
                    starts_at=str(e["startsAt"]),
                    available_seats=int(e["availableSeats"]),
                )
                for e in entries
                if int(e.get("availableSeats", 0)) > 0
            ],
        )

    def seats(self, concert_id: str, schedule_id: str, user_id: str, presented: str | None) -> SeatsOut:
        """Free seats by number: the token read plus one (paginated) Query of the schedule's partition."""
        self._require_active(concert_id, user_id, presented)
        schedule, free = self.repository.schedule_and_free_seats(schedule_id, int(clock.now()))
        if schedule is None or schedule.concert_id != concert_id:
            raise NotFound(f"Concert {concert_id} has no schedule {schedule_id}.")
        return SeatsOut(
            schedule_id=schedule_id,
            seats=[SeatOut(number=seat.number, price=seat.price) for seat in sorted(free, key=lambda s: s.number)],
        )

    # ---- the availableSeats hint (stream consumer) ----
    def recount_available(self, schedule_ids: Iterable[str]) -> int:
        """Recount the FREE seats of each date and store it as its availableSeats hint; returns the dates stored.

        A recount, not an ADD of deltas: running it again (a retried stream batch) stores the same number, and
        whatever happened before (a lost write, a crash) is corrected by the next change on the date.
        """
        stored = 0
        for schedule_id in sorted(set(schedule_ids)):
            schedule = self.repository.schedule(schedule_id)
            if schedule is None:  # no such date: nothing to store
                continue
            counted_at_ms = int(clock.now() * 1000)  # before the read: a later recount saw at least as much
            free = self.repository.count_free_seats(schedule_id)
            stored += self.repository.set_available(schedule, free, counted_at_ms)
        return stored

    def _require_active(self, concert_id: str, user_id: str, presented: str | None) -> None:
        if not presented:  # no read for a request that cannot pass
            raise QueueTokenInvalid()
        self.queue.require_active(concert_id, user_id, presented)
