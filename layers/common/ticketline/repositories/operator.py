"""What an operator reads of a sale: the concert's whole partition in one Query (docs/DATA_MODEL.md).

PK=CONCERT#<cid> holds, in SK order, the concert's META, its queue's audit trail (QCHANGE#...), its queue state
(QUEUE) and one entry per date (SCHEDULE#...) carrying its stream-fed figures (seats by status, money taken, tickets
cancelled: repositories/catalog.py add_figures): every figure the operator's view needs, at the cost of one Query (a
page per 1 MB: 50 dates and a sale's changes are a few KB).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ticketline.config import get_settings
from ticketline.db import Item, dynamodb, from_raw, values
from ticketline.models.queue import QueueChange, QueueState
from ticketline.repositories.catalog import SCHEDULE_PREFIX, concert_key
from ticketline.repositories.queue import CHANGE_PREFIX, change_from_item, state_from_item


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
