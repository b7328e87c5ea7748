"""Catalog items in the single table (see docs/DATA_MODEL.md, docs/CATALOG.md).

- concert META      PK=CONCERT#<cid>    SK=META                          title, queueCapacity, queueShards,
                                                                         salesOpenAt, first/lastStartsAt,
                                                                         sellableUntil; listed: GSI2PK=CONCERTS,
                                                                         GSI2SK=lastStartsAt (epoch seconds)
- schedule entry    PK=CONCERT#<cid>    SK=SCHEDULE#<startsAt>#<sid>     scheduleId, startsAt, seatCount,
                                                                         availableSeats, heldSeats, soldSeats,
                                                                         revenue, cancelledSeats (stream-fed
                                                                         figures, see CATALOG.md)
- schedule META     PK=SCHEDULE#<sid>   SK=META                          concertId, startsAt, seatCount
- seat              PK=SCHEDULE#<sid>   SK=SEAT#00042 (SEAT#:123456)     number, price, section?, status
                                                                         FREE|HELD|SOLD, startsAt (the date's),
                                                                         reservationId, holdExpiresAt (when HELD)

Listing a concert's dates is one Query of its partition; listing a date's seats is one Query of the
schedule's partition (META sorts just before the seats, so the same Query finds it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from ticketline import clock
from ticketline.config import get_settings
from ticketline.db import (
    Item,
    conditional_transaction,
    conditional_write,
    dynamodb,
    from_raw,
    new_items,
    refusal,
    to_raw,
    values,
)
from ticketline.errors import ServiceUnavailable
from ticketline.models.catalog import (
    DateFigures,
    FiguresChange,
    SaleStatus,
    ScheduleRef,
    Seat,
    SeatPage,
    SeatRangeMessage,
    SeatStatus,
)
from ticketline.observability import logger
from ticketline.repositories.queue import LISTING_PARTITION, state_key

BATCH_WRITE_LIMIT = 25  # DynamoDB's most items per BatchWriteItem
BATCH_WRITE_ATTEMPTS = 8
BATCH_WRITE_WORKERS = 8
TRANSACTION_LIMIT = 100  # DynamoDB's most items per TransactWriteItems
SCHEDULE_PREFIX = "SCHEDULE#"
SEAT_PREFIX = "SEAT#"
SIX_DIGITS = 100_000
# Sorts after every ISO date ("2...") and every id character: the upper bound of "SCHEDULE#<startsAt>#<sid>".
_AFTER_ALL = "~"


def concert_key(concert_id: str) -> Item:
    return {"PK": f"CONCERT#{concert_id}", "SK": "META"}


def concert_schedule_key(concert_id: str, starts_at: str, schedule_id: str) -> Item:
    """The schedule's entry in its concert's partition; carries the availableSeats hint."""
    return {"PK": f"CONCERT#{concert_id}", "SK": f"{SCHEDULE_PREFIX}{starts_at}#{schedule_id}"}


def schedule_key(schedule_id: str) -> Item:
    return {"PK": f"SCHEDULE#{schedule_id}", "SK": "META"}


def seat_key(schedule_id: str, number: int) -> Item:
    """Sort keys in seat-number order: five digits as ever (SEAT#00042), and a stadium's six-digit numbers after ':'
    (SEAT#:100000), which sorts after every digit, so the keys written before stadiums existed keep their meaning."""
    digits = f"{number:05d}" if number < SIX_DIGITS else f":{number:06d}"
    return {"PK": f"SCHEDULE#{schedule_id}", "SK": f"{SEAT_PREFIX}{digits}"}


def schedule_of_seat(key: Mapping[str, Any]) -> str | None:
    """The schedule id in a seat's key (as a stream record carries it); None for any other item."""
    partition, sort = str(key.get("PK", "")), str(key.get("SK", ""))
    if not (partition.startswith(SCHEDULE_PREFIX) and sort.startswith(SEAT_PREFIX)):
        return None
    return partition.removeprefix(SCHEDULE_PREFIX)


class CatalogRepository:
    def __init__(self, table_name: str | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table = table_name or get_settings().table_name
        self._sleep = sleep

    # ---- items ----
    @staticmethod
    def concert_item(
        concert_id: str,
        *,
        title: str,
        capacity: int,
        shards: int,
        sales_open_at: int,
        starts: list[str],
        now: int,
        owner: str,
        fingerprint: str,
        status: SaleStatus = SaleStatus.ON_SALE,
    ) -> Item:
        """The concert's META, listed for discovery from the start (every seat is for sale: sellable until the
        last date starts); one PUBLISHING is listed when it opens. `createdBy` and `requestHash`: the operator and
        the request it was created from, which a retry with the same Idempotency-Key must match."""
        listing = listing_attributes(starts)
        if status is SaleStatus.PUBLISHING:
            del listing["GSI2PK"], listing["GSI2SK"]
        return {
            **concert_key(concert_id),
            "concertId": concert_id,
            "status": status.value,
            "createdBy": owner,
            "requestHash": fingerprint,
            "title": title,
            "queueCapacity": capacity,
            "queueShards": shards,
            "scheduleCount": len(starts),
            "createdAt": now,
            "salesOpenAt": sales_open_at,
            **listing,
            "sellableUntil": int(clock.from_iso(max(starts))),
        }

    @staticmethod
    def schedule_items(concert_id: str, schedule_id: str, starts_at: str, seat_count: int) -> tuple[Item, Item]:
        """The schedule's META (in its own partition) and its entry in the concert's partition."""
        common = {"concertId": concert_id, "scheduleId": schedule_id, "startsAt": starts_at, "seatCount": seat_count}
        figures = {"availableSeats": seat_count, "heldSeats": 0, "soldSeats": 0}
        return (
            {**schedule_key(schedule_id), **common},
            {**concert_schedule_key(concert_id, starts_at, schedule_id), **common, **figures},
        )

    @staticmethod
    def seat_item(schedule_id: str, number: int, price: int, starts_at: str, section: str | None = None) -> Item:
        """`startsAt` (the date's, ISO UTC): a hold's condition refuses a seat whose date has started."""
        return {
            **seat_key(schedule_id, number),
            "number": number,
            "price": price,
            "section": section,  # to_raw leaves out None: no attribute for a seat without a section
            "status": SeatStatus.FREE.value,
            "startsAt": starts_at,
        }

    def range_items(self, seat_range: SeatRangeMessage) -> Iterator[Item]:
        """The FREE seats of a range."""
        for number in range(seat_range.first, seat_range.last + 1):
            yield self.seat_item(
                seat_range.schedule_id, number, seat_range.price, seat_range.starts_at, seat_range.section
            )

    # ---- writes ----
    def batch_put(self, items: Iterable[Item]) -> int:
        """Unconditional puts, 25 per BatchWriteItem, several requests in flight; returns the requests made."""
        chunk: list[Item] = []
        chunks: list[list[Item]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) == BATCH_WRITE_LIMIT:
                chunks.append(chunk)
                chunk = []
        if chunk:
            chunks.append(chunk)
        if len(chunks) <= 1:
            return sum(self._write_chunk(c) for c in chunks)
        with ThreadPoolExecutor(max_workers=BATCH_WRITE_WORKERS) as pool:  # boto3 clients are thread-safe
            return sum(pool.map(self._write_chunk, chunks))

    def _write_chunk(self, items: list[Item]) -> int:
        pending: Any = [{"PutRequest": {"Item": to_raw(item)}} for item in items]
        for attempt in range(BATCH_WRITE_ATTEMPTS):
            response = dynamodb().batch_write_item(RequestItems={self.table: pending})
            pending = (response.get("UnprocessedItems") or {}).get(self.table)
            if not pending:
                return attempt + 1
            # Unprocessed items mean throttling: back off (full jitter) before sending the rest again.
            self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
        logger.warning("batch write left items unprocessed", extra={"items": len(pending)})
        raise ServiceUnavailable(
            retry_after_seconds=1, message="The catalog could not be written in time; retry later."
        )

    def publish(self, items: list[Item]) -> bool:
        """Puts that make a concert visible, all or nothing, each refusing to overwrite. False: one of them exists
        already (a retry with the same Idempotency-Key published it first); nothing was written."""
        if len(items) > TRANSACTION_LIMIT:
            raise ValueError(f"at most {TRANSACTION_LIMIT} items can be published together")
        return conditional_transaction(new_items(self.table, items), conflicts_refuse=True)

    def set_figures(
        self, schedule: ScheduleRef, counted: DateFigures, sequence: str | None, counted_at_ms: int
    ) -> bool:
        """Store a recount of the date's figures, unless the stream added a change since the entry was read (its
        `figuresSequence` then was `sequence`, None: none yet) or a recount that started later is stored already.

        A change made before the count whose record arrives after it is added again; the next recount of the quiet
        date corrects it. False: refused so, or the entry is not published yet (its concert is being created)."""
        added = "figuresSequence = :seq" if sequence else "attribute_not_exists(figuresSequence)"
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(concert_schedule_key(schedule.concert_id, schedule.starts_at, schedule.schedule_id)),
                UpdateExpression="SET availableSeats = :free, heldSeats = :held, soldSeats = :sold, "
                "revenue = :revenue, cancelledSeats = :cancelled, availableCountedAt = :at",
                ConditionExpression=f"attribute_exists(PK) AND {added} AND "
                "(attribute_not_exists(availableCountedAt) OR availableCountedAt <= :at)",
                ExpressionAttributeValues=values(
                    **asdict(counted), at=counted_at_ms, **({"seq": sequence} if sequence else {})
                ),
            )
        )

    def add_figures(self, schedule: ScheduleRef, change: FiguresChange, now_ms: int) -> str | None:
        """Add a stream batch's changes to the date's figures, unless records from `change.first` on were added
        already (a batch delivered again): the entry keeps the last stream sequence number added. One UpdateItem;
        None when added (or the entry is not published), else the sequence number stored, for the caller to add
        only the records after it."""
        refused = refusal(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(concert_schedule_key(schedule.concert_id, schedule.starts_at, schedule.schedule_id)),
                UpdateExpression="ADD availableSeats :free, heldSeats :held, soldSeats :sold, revenue :revenue, "
                "cancelledSeats :cancelled SET figuresSequence = :last, availableCountedAt = :at",
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(figuresSequence) OR figuresSequence < :first)",
                ExpressionAttributeValues=values(
                    **asdict(change.figures), first=change.first, last=change.last, at=now_ms
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        )
        return str(refused.item["figuresSequence"]) if refused is not None and refused.item is not None else None

    def set_sellable_until(self, concert_id: str, sellable_until: int, counted_at_ms: int) -> bool:
        """Store the concert's sold-out figure on its META (discovery) and its queue state (joins, polls, admission)
        in one transaction, so the two never disagree; a figure computed from an older read never wins.
        False: a later count is stored, or the concert is not published yet."""
        condition = "attribute_exists(PK) AND (attribute_not_exists(sellableCountedAt) OR sellableCountedAt <= :at)"
        update = {
            "TableName": self.table,
            "UpdateExpression": "SET sellableUntil = :until, sellableCountedAt = :at",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values(until=sellable_until, at=counted_at_ms),
        }
        return conditional_transaction(
            [{"Update": {**update, "Key": to_raw(key)}} for key in (concert_key(concert_id), state_key(concert_id))]
        )

    def list_concert(self, concert_id: str, starts: list[str]) -> bool:
        """Backfill: give a concert created before discovery existed its listing attributes (once: a concert
        already listed is left alone). False when it was listed already."""
        listing = listing_attributes(starts)
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(concert_key(concert_id)),
                UpdateExpression="SET firstStartsAt = :first, lastStartsAt = :last, GSI2PK = :partition, "
                "GSI2SK = :deadline",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(GSI2PK)",
                ExpressionAttributeValues=values(
                    first=listing["firstStartsAt"],
                    last=listing["lastStartsAt"],
                    partition=listing["GSI2PK"],
                    deadline=listing["GSI2SK"],
                ),
            )
        )

    # ---- reads ----
    def concert_meta(self, concert_id: str) -> Item | None:
        """The concert's META, strongly consistent (a retry of its creation must see it): one GetItem."""
        raw = dynamodb().get_item(TableName=self.table, Key=to_raw(concert_key(concert_id)), ConsistentRead=True)
        return from_raw(raw["Item"]) if "Item" in raw else None

    def future_schedules(self, concert_id: str, after: str) -> list[Item]:
        """The concert's schedule entries starting after `after` (ISO), soonest first: one Query."""
        return list(
            self._query(
                KeyConditionExpression="PK = :pk AND SK BETWEEN :from AND :to",
                ExpressionAttributeValues=values(
                    pk=f"CONCERT#{concert_id}",
                    # "SCHEDULE#<after>#~" sorts after every schedule starting at `after` itself.
                    **{"from": f"{SCHEDULE_PREFIX}{after}#{_AFTER_ALL}", "to": f"{SCHEDULE_PREFIX}{_AFTER_ALL}"},
                ),
                ProjectionExpression="scheduleId, startsAt, availableSeats",
            )
        )

    def schedule(self, schedule_id: str) -> ScheduleRef | None:
        """The schedule's META (which concert, when): one GetItem. It never changes once written."""
        raw = dynamodb().get_item(
            TableName=self.table,
            Key=to_raw(schedule_key(schedule_id)),
            ProjectionExpression="scheduleId, concertId, startsAt",
        )
        return schedule_ref(from_raw(raw["Item"])) if "Item" in raw else None

    def count_figures(self, schedule_id: str) -> DateFigures:
        """The date's figures from its seats (by status; the prices of those SOLD; the cancellations each has had):
        one strongly consistent Query of every seat (paginated).

        Not for the request path: it reads every seat of the date (~65 RCU for 5,000 seats)."""
        counted = DateFigures()
        for seat in self._query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :seat)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values(pk=f"SCHEDULE#{schedule_id}", seat=SEAT_PREFIX),
            ProjectionExpression="#status, price, cancellations",
            ConsistentRead=True,
        ):
            status = SeatStatus(seat["status"])
            counted += DateFigures(
                free=int(status is SeatStatus.FREE),
                held=int(status is SeatStatus.HELD),
                sold=int(status is SeatStatus.SOLD),
                revenue=int(seat["price"]) if status is SeatStatus.SOLD else 0,
                cancelled=int(seat.get("cancellations", 0)),
            )
        return counted

    def concert_with_schedules(self, concert_id: str, consistent: bool = False) -> tuple[Item | None, list[Item]]:
        """The concert's META and every schedule entry (all its dates, soonest first): one Query of its partition
        (its queue state, which sorts between them, is left out)."""
        meta: Item | None = None
        entries: list[Item] = []
        for item in self._query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :meta AND :last",
            ExpressionAttributeValues=values(
                pk=f"CONCERT#{concert_id}", meta="META", last=f"{SCHEDULE_PREFIX}{_AFTER_ALL}"
            ),
            ConsistentRead=consistent,
        ):
            if item["SK"] == "META":
                meta = item
            elif str(item["SK"]).startswith(SCHEDULE_PREFIX):
                entries.append(item)
        return meta, entries

    def listed_concerts(self, now: int, limit: int, after: tuple[int, str] | None) -> tuple[list[Item], bool]:
        """Up to `limit` listed concerts whose last date starts after `now`, by that start (then id), from after
        the (lastStartsAt, concertId) of the previous page; and whether more follow. One Query of GSI2."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :partition AND GSI2SK > :now",
            "ExpressionAttributeValues": values(partition=LISTING_PARTITION, now=now),
            "Limit": limit + 1,  # one more than shown tells whether a next page exists, without an empty last page
        }
        if after is not None:
            deadline, concert_id = after
            request["ExclusiveStartKey"] = to_raw(
                {**concert_key(concert_id), "GSI2PK": LISTING_PARTITION, "GSI2SK": deadline}
            )
        items = [from_raw(raw) for raw in dynamodb().query(**request)["Items"]]
        return items[:limit], len(items) > limit

    def free_seats_page(
        self, schedule_id: str, now: int, page: SeatPage
    ) -> tuple[ScheduleRef | None, list[Seat], bool]:
        """The schedule's META (first page only: None on later ones) and up to `page.limit` free seats (never sold, or
        held by a lapsed hold) by number after `page.after`, of `page.section` when given; and whether more may follow.

        One Query, paginated by DynamoDB's 1 MB pages until the page is full (a filter reads past the seats it drops).
        """
        schedule: ScheduleRef | None = None
        seats: list[Seat] = []
        section_filter = " AND (attribute_not_exists(#status) OR #section = :section)" if page.section else ""
        request: dict[str, Any] = {
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :from AND :last",
            # META sorts before SEAT#: the first page's Query returns both; the filter drops taken seats server-side.
            # (A filter cannot name key attributes: META is the one item without a status.)
            "FilterExpression": "(attribute_not_exists(#status) OR #status = :free OR (#status = :held AND "
            "holdExpiresAt <= :now))" + section_filter,
            "ExpressionAttributeNames": {"#status": "status", "#number": "number", "#section": "section"},
            "ExpressionAttributeValues": values(
                pk=f"SCHEDULE#{schedule_id}",
                last="SEAT#~",
                free=SeatStatus.FREE.value,
                held=SeatStatus.HELD.value,
                now=now,
                **{"from": "META"},
                **({"section": page.section} if page.section else {}),
            ),
            "ProjectionExpression": "SK, concertId, startsAt, #number, price, #section",
            # Read no further than the page needs (the META, the page and one more) when nothing is filtered out,
            # rather than DynamoDB's whole 1 MB page: ~5,000 seats are ~0.5 MB. The paginator reads on past it when
            # the filter dropped seats.
            "Limit": page.limit + 2,
        }
        if page.after is not None:
            request["ExclusiveStartKey"] = to_raw(seat_key(schedule_id, page.after))
        for item in self._query(**request):
            if item["SK"] == "META":
                schedule = ScheduleRef(schedule_id, str(item["concertId"]), str(item["startsAt"]))
                continue
            if len(seats) == page.limit:  # one more than the page: a next page exists
                return schedule, seats, True
            section = item.get("section")
            seats.append(
                Seat(
                    schedule_id,
                    int(item["number"]),
                    int(item["price"]),
                    SeatStatus.FREE,
                    None,
                    None,
                    str(section) if section is not None else None,
                )
            )
        return schedule, seats, False

    def _query(self, **request: Any) -> Iterator[Item]:
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **request):
            for raw in page["Items"]:
                yield from_raw(raw)


def listing_attributes(starts: list[str]) -> Item:
    """What lists a concert for discovery: its first and last dates, and its GSI2 keys (by its last date's start,
    so the listing's key condition leaves out every concert that has ended)."""
    last = max(starts)
    return {
        "firstStartsAt": min(starts),
        "lastStartsAt": last,
        "GSI2PK": LISTING_PARTITION,
        "GSI2SK": int(clock.from_iso(last)),
    }


def sellable_until(entries: Iterable[Item]) -> int:
    """The latest start among the dates with a seat not SOLD (0: none); see models.catalog.is_sold_out.

    An entry never counted by status (written before the figures existed) counts as having seats to sell."""
    return max(
        (
            int(clock.from_iso(str(entry["startsAt"])))
            for entry in entries
            if "soldSeats" not in entry or int(entry["soldSeats"]) < int(entry["seatCount"])
        ),
        default=0,
    )


def schedule_ref(item: Item) -> ScheduleRef:
    return ScheduleRef(str(item["scheduleId"]), str(item["concertId"]), str(item["startsAt"]))


def seat_from_item(item: Item) -> Seat:
    reservation_id = item.get("reservationId")
    hold_expires_at = item.get("holdExpiresAt")
    return Seat(
        schedule_id=str(item["PK"]).removeprefix("SCHEDULE#"),
        number=int(item["number"]),
        price=int(item["price"]),
        status=SeatStatus(item["status"]),
        reservation_id=str(reservation_id) if reservation_id is not None else None,
        hold_expires_at=int(hold_expires_at) if hold_expires_at is not None else None,
        section=str(item["section"]) if "section" in item else None,
    )
