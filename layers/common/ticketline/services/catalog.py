"""Concert creation (admin) and what an ACTIVE buyer may browse: future dates with free seats, free seats."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ticketline import clock, cursors
from ticketline.config import Settings, get_settings
from ticketline.db import Item
from ticketline.errors import (
    IdempotencyKeyReused,
    NotFound,
    QueueTokenInvalid,
    ServiceUnavailable,
    ValidationFailed,
)
from ticketline.models.catalog import (
    MAX_SEAT_PAGE,
    ConcertDetailOut,
    ConcertIn,
    ConcertOut,
    ConcertScheduleOut,
    ConcertsOut,
    ConcertSummaryOut,
    DateFigures,
    FiguresChange,
    SaleStatus,
    ScheduleCreatedOut,
    ScheduleOut,
    SchedulesOut,
    SeatChange,
    SeatOut,
    SeatPage,
    SeatRangeMessage,
    SeatsOut,
    is_sold_out,
)
from ticketline.observability import logger, metrics
from ticketline.repositories.catalog import CatalogRepository, schedule_ref, sellable_until
from ticketline.repositories.publishing import SeatRangeQueue, progress_item
from ticketline.repositories.queue import QueueRepository, optional_int
from ticketline.services.queue import QueueService

# The periodic recount leaves alone a date the stream recounted more recently than this: the stream keeps busy
# dates fresh, the recount heals the quiet ones (docs/CATALOG.md).
RECOUNT_MIN_AGE_SECONDS = 240
# A concert of more seats is published in the background (202 PUBLISHING): DynamoDB Local writes ~1,000 seats a second
# and one date's partition takes ~1,000 writes a second on AWS, so 10,000 seats stay well inside API Gateway's 29 s
# (docs/BENCHMARKS.md, "Stadium").
SYNC_SEAT_LIMIT = 10_000
# Seats per queue message: 40 BatchWriteItem requests, about a second of one date's partition on AWS.
RANGE_SEATS = 1_000
# A seat page's cursor: the last seat number shown.
_SEAT_CURSOR = re.compile(r"^seat:([0-9]{1,6})$")
# A listing cursor: base64url of "<lastStartsAt epoch>:<concertId>" (the last concert shown); nothing else is one.
_CURSOR_BODY = re.compile(r"^([0-9]{1,12}):([A-Za-z0-9_-]{1,64})$")


def encode_cursor(deadline: int, concert_id: str) -> str:
    return base64.urlsafe_b64encode(f"{deadline}:{concert_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The (lastStartsAt, concertId) a listing cursor continues after; anything we did not mint is a 400."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        text = ""
    match = _CURSOR_BODY.match(text)
    if match is None or encode_cursor(int(match.group(1)), match.group(2)) != cursor:
        raise ValidationFailed.field("cursor", "is not a cursor this API returned")
    return int(match.group(1)), match.group(2)


@dataclass(frozen=True, slots=True)
class RecountSummary:
    concerts: int = 0
    dates: int = 0
    listed: int = 0


def new_id() -> str:
    """Ids we mint: 32 hex characters (uuid4), within models.ID_PATTERN."""
    return uuid.uuid4().hex


# Concert ids derived from (operator, Idempotency-Key): a retry finds the concert its first try created.
_CONCERT_IDS = uuid.UUID("6f1c2b0e-5d4a-4c83-9f7e-2a9d8b6c1e30")


def concert_id_for(owner: str, key: str) -> str:
    """32 hex characters (uuid5 of the operator's sub and the key), within models.ID_PATTERN. The sub and the
    key are joined by a newline, which neither may contain, so no two pairs give one name."""
    return uuid.uuid5(_CONCERT_IDS, f"{owner}\n{key}").hex


def planned_schedules(request: ConcertIn, concert_id: str) -> list[ScheduleCreatedOut]:
    """Each date's id (uuid5 of the concert id and its place in the request: a retry writes the same items), start
    and seat count, in the request's order."""
    namespace = uuid.UUID(concert_id)
    return [
        ScheduleCreatedOut(
            schedule_id=uuid.uuid5(namespace, str(index)).hex,
            starts_at=clock.to_iso(int(schedule.starts_at.timestamp())),
            seat_count=schedule.seat_count,
        )
        for index, schedule in enumerate(request.schedules)
    ]


def seat_ranges(request: ConcertIn, created: list[ScheduleCreatedOut], concert_id: str) -> list[SeatRangeMessage]:
    """Every date's seats as ranges of at most RANGE_SEATS seats of one price and section, by date and number."""
    return [
        SeatRangeMessage(
            concert_id=concert_id,
            schedule_id=out.schedule_id,
            starts_at=out.starts_at,
            first=first,
            last=min(first + RANGE_SEATS - 1, run.last),
            price=run.price,
            section=run.section,
        )
        for schedule, out in zip(request.schedules, created, strict=True)
        for run in schedule.runs()
        for first in range(run.first, run.last + 1, RANGE_SEATS)
    ]


def request_fingerprint(request: ConcertIn) -> str:
    """SHA-256 of the validated request in one spelling: a retry matches whatever its JSON's spacing or key order."""
    return hashlib.sha256(request.model_dump_json(by_alias=True).encode()).hexdigest()


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
    def create_concert(self, request: ConcertIn, owner: str = "operator", key: str | None = None) -> ConcertOut:
        """Create the concert once per (operator, Idempotency-Key): its id is derived from them, its META carries a
        hash of the request, and the transaction that publishes it refuses to overwrite. A retry (the key again,
        the same body) answers the concert as created; another body with the key is 409 IDEMPOTENCY_KEY_REUSED.
        No key (tools and tests that never retry): a fresh one.

        Seats and schedule METAs first (batched, unreachable until published), then one transaction publishes the
        concert: its schedule entries, its META and its queue. Until that transaction commits nobody can join the
        queue (404), so nobody can list or hold anything of a half-written concert (docs/CATALOG.md)."""
        concert_id = concert_id_for(owner, key or new_id())
        fingerprint = request_fingerprint(request)
        stored = self.repository.concert_meta(concert_id)  # the fast answer to a retry; the put's condition decides
        if stored is not None:
            return self._as_created(request, stored, fingerprint)
        now = int(clock.now())
        sales_open_at = int(request.sales_open_at.timestamp()) if request.sales_open_at else now
        capacity = request.queue_capacity or self.settings.default_queue_capacity
        shards = request.queue_shards or self.settings.queue_counter_shards
        created = planned_schedules(request, concert_id)
        in_background = sum(s.seat_count for s in created) > SYNC_SEAT_LIMIT
        status = SaleStatus.PUBLISHING if in_background else SaleStatus.ON_SALE
        hidden: list[Item] = []  # schedule METAs (seats are streamed)
        entries: list[Item] = []
        for out in created:
            meta, entry = self.repository.schedule_items(concert_id, out.schedule_id, out.starts_at, out.seat_count)
            hidden.append(meta)
            entries.append(entry)
        concert = self.repository.concert_item(
            concert_id,
            title=request.title,
            capacity=capacity,
            shards=shards,
            sales_open_at=sales_open_at,
            starts=[schedule.starts_at for schedule in created],
            now=now,
            owner=owner,
            fingerprint=fingerprint,
            status=status,
        )
        ranges = seat_ranges(request, created, concert_id)
        if in_background:
            # The dates and the concert (not listed, no queue) with the count of ranges to write; the publisher
            # writes the seats and opens the sale when the count reaches 0 (services/publishing.py).
            requests = self.repository.batch_put(hidden)
            published = self.repository.publish([*entries, concert, progress_item(concert_id, len(ranges))])
        else:
            requests = self.repository.batch_put(self._seat_items(ranges, hidden))
            queue_items = QueueRepository(self.settings.table_name).new_queue_items(
                concert_id, capacity, shards, now, sales_open_at=sales_open_at, sellable_until=concert["sellableUntil"]
            )
            published = self.repository.publish([*entries, concert, *queue_items])
        if not published:
            # A concurrent retry with the same key published it first (or was publishing it): answer as it did.
            stored = self.repository.concert_meta(concert_id)
            if stored is None:  # both conflicted and neither committed: the client's retry will
                raise ServiceUnavailable(
                    retry_after_seconds=1, message="The concert could not be published; retry with the same key."
                )
            return self._as_created(request, stored, fingerprint)
        if in_background:
            requests += SeatRangeQueue(self.settings).send(ranges)
        seats = sum(s.seat_count for s in created)
        metrics.add_metric(name="ConcertsCreated", unit="Count", value=1)
        logger.info(
            "concert created",
            extra={
                "concertId": concert_id,
                "schedules": len(created),
                "seats": seats,
                "status": status.value,
                "ranges": len(ranges) if in_background else 0,
                "requests": requests,
            },
        )
        return ConcertOut(
            concert_id=concert_id,
            title=request.title,
            status=status,
            queue_capacity=capacity,
            queue_shards=shards,
            sales_open_at=clock.to_iso(sales_open_at),
            schedules=created,
        )

    def _as_created(self, request: ConcertIn, stored: Item, fingerprint: str) -> ConcertOut:
        """The answer to a retry: the concert the first request created, if the key came with the same body. One
        still PUBLISHING has its ranges sent again, in case the first request died before sending them all (copies
        within SQS's deduplication window are dropped, later ones skip the ranges already written)."""
        if stored.get("requestHash") != fingerprint:
            raise IdempotencyKeyReused()
        concert_id = str(stored["concertId"])
        status = SaleStatus(str(stored.get("status", SaleStatus.ON_SALE.value)))
        created = planned_schedules(request, concert_id)
        if status is SaleStatus.PUBLISHING:
            SeatRangeQueue(self.settings).send(seat_ranges(request, created, concert_id))
        return ConcertOut(
            concert_id=concert_id,
            title=str(stored["title"]),
            status=status,
            queue_capacity=int(stored["queueCapacity"]),
            queue_shards=int(stored["queueShards"]),
            sales_open_at=_sales_open_at(stored),
            schedules=created,
        )

    def _seat_items(self, ranges: list[SeatRangeMessage], metas: list[Item]) -> Iterator[Item]:
        yield from metas
        for seat_range in ranges:
            yield from self.repository.range_items(seat_range)

    # ---- discovery (public) ----
    def concerts(self, limit: int, cursor: str | None) -> ConcertsOut:
        """Concerts whose last date has not started, by that date: one Query of the listing (GSI2)."""
        after = decode_cursor(cursor) if cursor is not None else None
        now = int(clock.now())
        items, more = self.repository.listed_concerts(now, limit, after)
        return ConcertsOut(
            items=[
                ConcertSummaryOut(
                    concert_id=str(item["concertId"]),
                    title=str(item["title"]),
                    sales_open_at=_sales_open_at(item),
                    first_starts_at=str(item["firstStartsAt"]),
                    last_starts_at=str(item["lastStartsAt"]),
                    sold_out=is_sold_out(optional_int(item.get("sellableUntil")), now),
                )
                for item in items
            ],
            next_cursor=encode_cursor(int(items[-1]["GSI2SK"]), str(items[-1]["concertId"])) if more else None,
        )

    def concert(self, concert_id: str) -> ConcertDetailOut:
        """The concert and its dates that have not started: one Query of its partition; 404 when unknown."""
        meta, entries = self.repository.concert_with_schedules(concert_id)
        if meta is None:
            raise NotFound(f"Concert {concert_id} does not exist.")
        now = int(clock.now())
        return ConcertDetailOut(
            concert_id=concert_id,
            title=str(meta["title"]),
            sales_open_at=_sales_open_at(meta),
            sold_out=is_sold_out(optional_int(meta.get("sellableUntil")), now),
            schedules=[
                ConcertScheduleOut(schedule_id=str(e["scheduleId"]), starts_at=str(e["startsAt"]))
                for e in entries
                if clock.from_iso(str(e["startsAt"])) > now  # the same rule as GET schedules and sold-out
            ],
        )

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

    def seats(
        self,
        concert_id: str,
        schedule_id: str,
        user_id: str,
        presented: str | None,
        *,
        limit: int = MAX_SEAT_PAGE,
        section: str | None = None,
        cursor: str | None = None,
    ) -> SeatsOut:
        """A page of free seats by number: the token read plus one (paginated) Query of the schedule's partition
        (and, after the first page, the schedule's META: the Query starts past it)."""
        after = int(cursors.decode(cursor, _SEAT_CURSOR).group(1)) if cursor is not None else None
        self._require_active(concert_id, user_id, presented)
        page = SeatPage(limit=limit, after=after, section=section)
        schedule, free, more = self.repository.free_seats_page(schedule_id, int(clock.now()), page)
        if after is not None:
            schedule = self.repository.schedule(schedule_id)
        if schedule is None or schedule.concert_id != concert_id:
            raise NotFound(f"Concert {concert_id} has no schedule {schedule_id}.")
        return SeatsOut(
            schedule_id=schedule_id,
            seats=[SeatOut(number=seat.number, price=seat.price, section=seat.section) for seat in free],
            next_cursor=cursors.encode(f"seat:{free[-1].number}") if more else None,
        )

    # ---- the stream-fed figures (stream consumer, periodic recount) ----
    def recount_dates(self, entries: Iterable[Item]) -> None:
        """Recount each date's figures from its seats (entries as read from their concert's partition, their
        `figuresSequence` with them) and store them: a recount, not an ADD of changes, so whatever a lost or failed
        stream batch left wrong is corrected; a change the stream adds meanwhile wins (repositories.catalog
        set_figures)."""
        for entry in entries:
            schedule = schedule_ref(entry)
            counted_at_ms = int(clock.now() * 1000)  # before the read: a later recount saw at least as much
            counted = self.repository.count_figures(schedule.schedule_id)
            sequence = entry.get("figuresSequence")
            self.repository.set_figures(schedule, counted, str(sequence) if sequence else None, counted_at_ms)

    def add_changes(self, schedule_id: str, changes: list[SeatChange]) -> str | None:
        """Add one date's seat changes from a stream batch to its figures (seats by status, money taken, tickets
        cancelled): the date's META read and one UpdateItem, O(changes), never a recount of its seats. Records added
        already (the batch delivered again) are left out. Returns the date's concert (None: no such date)."""
        schedule = self.repository.schedule(schedule_id)
        if schedule is None:
            return None
        pending = sorted(changes, key=lambda change: change.sequence)
        while pending:
            figures = sum((change.figures for change in pending), DateFigures())
            batch = FiguresChange(figures, pending[0].sequence, pending[-1].sequence)
            stored = self.repository.add_figures(schedule, batch, int(clock.now() * 1000))
            if stored is None:
                break
            pending = [change for change in pending if change.sequence > stored]
        return schedule.concert_id

    def recount_sold_out(self, concert_id: str) -> bool:
        """Store the concert's sold-out figure from its dates' counts: one Query of its partition and one
        transaction (META and queue state). True when stored; False when a later count is stored already."""
        counted_at_ms = int(clock.now() * 1000)
        meta, entries = self.repository.concert_with_schedules(concert_id, consistent=True)
        return self._store_sold_out(concert_id, meta, entries, counted_at_ms)

    def _store_sold_out(self, concert_id: str, meta: Item | None, entries: list[Item], counted_at_ms: int) -> bool:
        if meta is None:
            return False
        until = sellable_until(entries)
        stored = self.repository.set_sellable_until(concert_id, until, counted_at_ms)
        if stored and is_sold_out(until, clock.now()):
            logger.info("concert sold out", extra={"concertId": concert_id})
        return stored

    def recount_live(self) -> RecountSummary:
        """The periodic recount (scheduler task `recount`): heals the dates' figures (seats by status, money taken,
        tickets cancelled) a lost or failed stream batch left wrong, and lists concerts created before discovery
        existed. Bounded: the concerts whose last date has not started, and of those only the dates that have not
        started and whose figures neither the stream nor a recount changed in the last few minutes.
        """
        listed = self._backfill_listing()
        now = clock.now()
        summary = RecountSummary(listed=listed)
        for concert_id in QueueRepository(self.settings.table_name).concerts_ending_after(int(now)):
            counted_at_ms = int(clock.now() * 1000)
            meta, entries = self.repository.concert_with_schedules(concert_id, consistent=True)
            stale = [
                e
                for e in entries
                if clock.from_iso(str(e["startsAt"])) > now
                and int(e.get("availableCountedAt", 0)) <= (now - RECOUNT_MIN_AGE_SECONDS) * 1000
            ]
            if stale:
                self.recount_dates(stale)
                self.recount_sold_out(concert_id)
            else:  # every date counted lately: their figures as just read decide
                self._store_sold_out(concert_id, meta, entries, counted_at_ms)
            summary = RecountSummary(summary.concerts + 1, summary.dates + len(stale), summary.listed)
        if summary.dates:
            metrics.add_metric(name="DatesRecounted", unit="Count", value=summary.dates)
        return summary

    def _backfill_listing(self) -> int:
        """Concerts created before discovery: list them (idempotent; each registry entry is marked once done). The
        first pass that finds none left marks the backfill done, and later runs skip it for one GetItem."""
        queues = QueueRepository(self.settings.table_name)
        if queues.backfill_done():
            return 0
        listed = pending = 0
        for concert_id in queues.unlisted_concert_ids():
            pending += 1
            meta, entries = self.repository.concert_with_schedules(concert_id, consistent=True)
            if meta is not None and entries:
                listed += self.repository.list_concert(concert_id, [str(e["startsAt"]) for e in entries])
                self.recount_dates(entries)
                self.recount_sold_out(concert_id)
            queues.mark_listed(concert_id)
        if not pending:  # a second pass, so an entry written by an older version during the first one is not lost
            queues.mark_backfill_done(int(clock.now()))
        if listed:
            logger.info("concerts listed for discovery (backfill)", extra={"concerts": listed})
        return listed

    def _require_active(self, concert_id: str, user_id: str, presented: str | None) -> None:
        if not presented:  # no read for a request that cannot pass
            raise QueueTokenInvalid()
        self.queue.require_active(concert_id, user_id, presented)


def _sales_open_at(item: Item) -> str:
    """salesOpenAt, or the concert's creation for one created before sales had an opening time (it opened then)."""
    return clock.to_iso(int(item["salesOpenAt"] if "salesOpenAt" in item else item["createdAt"]))
