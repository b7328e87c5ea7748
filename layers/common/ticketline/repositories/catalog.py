"""Catalog items in the single table (see docs/DATA_MODEL.md, docs/CATALOG.md).

- concert META      PK=CONCERT#<cid>    SK=META                          title, queueCapacity, queueShards
- schedule entry    PK=CONCERT#<cid>    SK=SCHEDULE#<startsAt>#<sid>     scheduleId, startsAt, seatCount,
                                                                         availableSeats (a hint, see CATALOG.md)
- schedule META     PK=SCHEDULE#<sid>   SK=META                          concertId, startsAt, seatCount
- seat              PK=SCHEDULE#<sid>   SK=SEAT#00042                    number, price, status FREE|HELD|SOLD,
                                                                         startsAt (the date's), reservationId,
                                                                         holdExpiresAt (when HELD)

Listing a concert's dates is one Query of its partition; listing a date's seats is one Query of the
schedule's partition (META sorts just before the seats, so the same Query finds it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from ticketline.config import get_settings
from ticketline.db import Item, dynamodb, from_raw, put_new, to_raw, values
from ticketline.errors import ServiceUnavailable
from ticketline.models.catalog import ScheduleRef, Seat, SeatStatus
from ticketline.observability import logger
from ticketline.repositories.queue import is_condition_failure

BATCH_WRITE_LIMIT = 25  # DynamoDB's most items per BatchWriteItem
BATCH_WRITE_ATTEMPTS = 8
BATCH_WRITE_WORKERS = 8
TRANSACTION_LIMIT = 100  # DynamoDB's most items per TransactWriteItems
SCHEDULE_PREFIX = "SCHEDULE#"
SEAT_PREFIX = "SEAT#"
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
    return {"PK": f"SCHEDULE#{schedule_id}", "SK": f"{SEAT_PREFIX}{number:05d}"}


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
    def concert_item(concert_id: str, *, title: str, capacity: int, shards: int, schedules: int, now: int) -> Item:
        return {
            **concert_key(concert_id),
            "concertId": concert_id,
            "title": title,
            "queueCapacity": capacity,
            "queueShards": shards,
            "scheduleCount": schedules,
            "createdAt": now,
        }

    @staticmethod
    def schedule_items(concert_id: str, schedule_id: str, starts_at: str, seat_count: int) -> tuple[Item, Item]:
        """The schedule's META (in its own partition) and its entry in the concert's partition."""
        common = {"concertId": concert_id, "scheduleId": schedule_id, "startsAt": starts_at, "seatCount": seat_count}
        return (
            {**schedule_key(schedule_id), **common},
            {**concert_schedule_key(concert_id, starts_at, schedule_id), **common, "availableSeats": seat_count},
        )

    @staticmethod
    def seat_item(schedule_id: str, number: int, price: int, starts_at: str) -> Item:
        """`startsAt` (the date's, ISO UTC): a hold's condition refuses a seat whose date has started."""
        return {
            **seat_key(schedule_id, number),
            "number": number,
            "price": price,
            "status": SeatStatus.FREE.value,
            "startsAt": starts_at,
        }

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

    def publish(self, items: list[Item]) -> None:
        """Puts that make a concert visible, all or nothing, each refusing to overwrite."""
        if len(items) > TRANSACTION_LIMIT:
            raise ValueError(f"at most {TRANSACTION_LIMIT} items can be published together")
        put_new(self.table, items)

    def set_available(self, schedule: ScheduleRef, free_seats: int, counted_at_ms: int) -> bool:
        """Store a recount of the date's FREE seats, unless a recount that started later is already stored.

        Recounts of one date may finish out of order (two stream batches at once); the condition keeps the
        freshest. False: a later recount won, or the entry is not published yet (its concert is being created).
        """
        try:
            dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(concert_schedule_key(schedule.concert_id, schedule.starts_at, schedule.schedule_id)),
                UpdateExpression="SET availableSeats = :free, availableCountedAt = :at",
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(availableCountedAt) OR availableCountedAt <= :at)",
                ExpressionAttributeValues=values(free=free_seats, at=counted_at_ms),
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    # ---- reads ----
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

    def count_free_seats(self, schedule_id: str) -> int:
        """How many of the date's seats are FREE: one strongly consistent Query (Select=COUNT, paginated).

        Not for the request path: it reads every seat of the date (~65 RCU for 5,000 seats)."""
        paginator = dynamodb().get_paginator("query")
        return sum(
            page["Count"]
            for page in paginator.paginate(
                TableName=self.table,
                KeyConditionExpression="PK = :pk AND begins_with(SK, :seat)",
                FilterExpression="#status = :free",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=values(
                    pk=f"SCHEDULE#{schedule_id}", seat=SEAT_PREFIX, free=SeatStatus.FREE.value
                ),
                Select="COUNT",
                ConsistentRead=True,
            )
        )

    def schedule_and_free_seats(self, schedule_id: str, now: int) -> tuple[ScheduleRef | None, list[Seat]]:
        """The schedule's META and its free seats (never sold, or held by a lapsed hold): one Query, paginated."""
        schedule: ScheduleRef | None = None
        seats: list[Seat] = []
        for item in self._query(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :meta AND :last",
            # META sorts before SEAT#: the same Query returns both; the filter drops taken seats server-side.
            # (A filter cannot name key attributes: META is the one item without a status.)
            FilterExpression=(
                "attribute_not_exists(#status) OR #status = :free OR (#status = :held AND holdExpiresAt <= :now)"
            ),
            ExpressionAttributeNames={"#status": "status", "#number": "number"},
            ExpressionAttributeValues=values(
                pk=f"SCHEDULE#{schedule_id}",
                meta="META",
                last="SEAT#~",
                free=SeatStatus.FREE.value,
                held=SeatStatus.HELD.value,
                now=now,
            ),
            ProjectionExpression="SK, concertId, startsAt, #number, price",
        ):
            if item["SK"] == "META":
                schedule = ScheduleRef(schedule_id, str(item["concertId"]), str(item["startsAt"]))
            else:
                seats.append(Seat(schedule_id, int(item["number"]), int(item["price"]), SeatStatus.FREE, None, None))
        return schedule, seats

    def _query(self, **request: Any) -> Iterator[Item]:
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **request):
            for raw in page["Items"]:
                yield from_raw(raw)


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
    )
