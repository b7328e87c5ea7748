"""What an operator reads of a sale: the concert's whole partition in one Query (docs/DATA_MODEL.md); and the
sales figures (money taken, tickets cancelled) the stream consumer adds to and the recount task heals.

PK=CONCERT#<cid> holds, in SK order, the concert's META, its queue's audit trail (QCHANGE#...), its queue state
(QUEUE) and one entry per date (SCHEDULE#...) carrying the stream-fed seat and sales figures: every figure the
operator's view needs, at the cost of one Query (a page per 1 MB: 50 dates and a sale's changes are a few KB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ticketline.config import get_settings
from ticketline.db import Item, conditional_write, dynamodb, from_raw, to_raw, values
from ticketline.models.catalog import ScheduleRef, SeatStatus
from ticketline.models.queue import QueueChange, QueueState
from ticketline.repositories.catalog import SCHEDULE_PREFIX, SEAT_PREFIX, concert_key, concert_schedule_key
from ticketline.repositories.queue import CHANGE_PREFIX, change_from_item, state_from_item

# A DynamoDB stream sequence number has up to 40 digits: zero-padded to that width, they compare as strings.
SEQUENCE_WIDTH = 40


def padded_sequence(sequence_number: str) -> str:
    return sequence_number.zfill(SEQUENCE_WIDTH)


@dataclass(frozen=True, slots=True)
class SalesFigures:
    """Money taken (the prices of the seats SOLD, a refund taking its seat's back) and tickets cancelled."""

    revenue: int = 0
    cancelled: int = 0

    def __add__(self, other: SalesFigures) -> SalesFigures:
        return SalesFigures(self.revenue + other.revenue, self.cancelled + other.cancelled)


@dataclass
class ConcertSale:
    meta: Item
    state: QueueState | None = None
    schedules: list[Item] = field(default_factory=list)  # soonest first (their SK starts with startsAt)
    changes: list[QueueChange] = field(default_factory=list)  # oldest first


class OperatorRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name

    def concert_sale(self, concert_id: str) -> ConcertSale | None:
        """The concert's partition, read once (eventually consistent: the figures are seconds old anyway)."""
        items: list[Item] = []
        paginator = dynamodb().get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=values(pk=concert_key(concert_id)["PK"]),
        ):
            items += map(from_raw, page["Items"])
        meta = next((item for item in items if item["SK"] == "META"), None)
        if meta is None:
            return None
        sale = ConcertSale(meta)
        for item in items:
            sort_key = str(item["SK"])
            if sort_key == "QUEUE":
                sale.state = state_from_item(item)
            elif sort_key.startswith(SCHEDULE_PREFIX):
                sale.schedules.append(item)
            elif sort_key.startswith(CHANGE_PREFIX):
                sale.changes.append(change_from_item(item))
        return sale

    # ---- the sales figures of a date (its entry in the concert's partition) ----
    def add_sales(self, schedule: ScheduleRef, delta: SalesFigures, first: str, last: str, now_ms: int) -> bool:
        """Add a stream batch's changes of one date (sequence numbers `first`..`last`, padded), unless changes at or
        past `first` are added already (a retried batch). False: they are, or the date has no entry."""
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(_entry_key(schedule)),
                UpdateExpression="ADD revenue :revenue, cancelledSeats :cancelled "
                "SET salesSequence = :last, salesChangedAt = :now",
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(salesSequence) OR salesSequence < :first)",
                ExpressionAttributeValues=values(
                    revenue=delta.revenue, cancelled=delta.cancelled, first=first, last=last, now=now_ms
                ),
            )
        )

    def sales_sequence(self, schedule: ScheduleRef) -> str | None:
        """The last change added to the date's sales figures ("" none yet); None: the date has no entry."""
        raw = dynamodb().get_item(
            TableName=self.table,
            Key=to_raw(_entry_key(schedule)),
            ProjectionExpression="PK, salesSequence",
            ConsistentRead=True,
        )
        return str(from_raw(raw["Item"]).get("salesSequence", "")) if "Item" in raw else None

    def count_sales(self, schedule_id: str) -> SalesFigures:
        """The date's sales figures from its seats (prices of those SOLD, cancellations each seat has had): one
        strongly consistent Query of every seat, for the recount task only, never the request path."""
        paginator = dynamodb().get_paginator("query")
        figures = SalesFigures()
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :seat)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values(pk=f"SCHEDULE#{schedule_id}", seat=SEAT_PREFIX),
            ProjectionExpression="#status, price, cancellations",
            ConsistentRead=True,
        ):
            for seat in map(from_raw, page["Items"]):
                sold = seat["status"] == SeatStatus.SOLD.value
                figures += SalesFigures(int(seat["price"]) if sold else 0, int(seat.get("cancellations", 0)))
        return figures

    def set_sales(self, schedule: ScheduleRef, counted: SalesFigures, sequence: str, now_ms: int) -> bool:
        """Store a recount of the date's sales figures, unless the stream added a change since `sequence` was read
        (that change may be in the count or not: a later recount decides). The recount task heals only dates the
        stream has left alone for minutes, so a change counted here and then added again is as rare as a record
        minutes late; the next recount of the quiet date corrects it."""
        condition = "salesSequence = :seq" if sequence else "attribute_not_exists(salesSequence)"
        read = {"seq": sequence} if sequence else {}
        return conditional_write(
            lambda: dynamodb().update_item(
                TableName=self.table,
                Key=to_raw(_entry_key(schedule)),
                UpdateExpression="SET revenue = :revenue, cancelledSeats = :cancelled, salesCountedAt = :now",
                ConditionExpression=f"attribute_exists(PK) AND {condition}",
                ExpressionAttributeValues=values(
                    revenue=counted.revenue, cancelled=counted.cancelled, now=now_ms, **read
                ),
            )
        )


def _entry_key(schedule: ScheduleRef) -> Item:
    return concert_schedule_key(schedule.concert_id, schedule.starts_at, schedule.schedule_id)
