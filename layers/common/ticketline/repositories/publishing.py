"""A stadium-size concert's publication in the background (docs/CATALOG.md, "Stadium-size concerts").

- progress     PK=PUBLISH#<cid>  SK=PROGRESS              rangesPending (ranges not yet written), ranges
- range done   PK=PUBLISH#<cid>  SK=RANGE#<sid>#<first>   written once its seats are: a redelivery skips the range

The range's marker and the decrement of rangesPending are one transaction, so the counter falls once per range
whatever the redeliveries; the concert opens (META ON_SALE, listed, its queue created) when it reaches 0.

The queue is FIFO with one message group per date: SQS never hands a range to two consumers at once (its
visibility timeout outlasts the function's timeout), so a range is rewritten only while it is still pending, that
is while the concert is not on sale and no seat of it can be HELD or SOLD.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from ticketline.config import Settings, get_settings
from ticketline.db import Item, conditional_transaction, dynamodb, from_raw, new_items, to_raw, values
from ticketline.errors import ServiceUnavailable
from ticketline.models.catalog import SaleStatus, SeatRangeMessage
from ticketline.observability import logger
from ticketline.repositories.catalog import concert_key, listing_attributes

SEND_BATCH_LIMIT = 10  # SQS's most entries per SendMessageBatch
SEND_ATTEMPTS = 3
SEND_WORKERS = 8


def progress_key(concert_id: str) -> Item:
    return {"PK": f"PUBLISH#{concert_id}", "SK": "PROGRESS"}


def range_key(message: SeatRangeMessage) -> Item:
    return {"PK": f"PUBLISH#{message.concert_id}", "SK": f"RANGE#{message.range_id}"}


def progress_item(concert_id: str, ranges: int) -> Item:
    return {**progress_key(concert_id), "concertId": concert_id, "ranges": ranges, "rangesPending": ranges}


class PublishingRepository:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or get_settings().table_name

    def range_written(self, message: SeatRangeMessage) -> bool:
        """Whether the range's seats are all written (its marker exists): one strongly consistent GetItem."""
        raw = dynamodb().get_item(
            TableName=self.table, Key=to_raw(range_key(message)), ConsistentRead=True, ProjectionExpression="PK"
        )
        return "Item" in raw

    def mark_written(self, message: SeatRangeMessage) -> bool:
        """The range's marker and one less range pending, together. False: marked already (nothing changed)."""
        return conditional_transaction(
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_raw({**range_key(message), "concertId": message.concert_id}),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_raw(progress_key(message.concert_id)),
                        "UpdateExpression": "ADD rangesPending :minus_one",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeValues": values(minus_one=-1),
                    }
                },
            ]
        )

    def ranges_pending(self, concert_id: str) -> int | None:
        """Ranges not yet written; None when the concert has no publication (created within its request)."""
        raw = dynamodb().get_item(TableName=self.table, Key=to_raw(progress_key(concert_id)), ConsistentRead=True)
        return int(from_raw(raw["Item"])["rangesPending"]) if "Item" in raw else None

    def open_sale(self, meta: Item, starts: list[str], queue_items: list[Item]) -> bool:
        """PUBLISHING -> ON_SALE, listed for discovery, its queue created: one transaction. False: opened already."""
        listing = listing_attributes(starts)
        return conditional_transaction(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": to_raw(concert_key(str(meta["concertId"]))),
                        "UpdateExpression": "SET #status = :on_sale, GSI2PK = :partition, GSI2SK = :deadline",
                        "ConditionExpression": "#status = :publishing",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": values(
                            on_sale=SaleStatus.ON_SALE.value,
                            publishing=SaleStatus.PUBLISHING.value,
                            partition=listing["GSI2PK"],
                            deadline=listing["GSI2SK"],
                        ),
                    }
                },
                *new_items(self.table, queue_items),
            ]
        )


@cache
def sqs() -> Any:
    """The SQS client (boto3 ships no stubs for it here); made on first use, like the DynamoDB client."""
    import boto3

    return boto3.client("sqs", endpoint_url=get_settings().sqs_endpoint_url)


class SeatRangeQueue:
    """Sends a publication's ranges to the FIFO queue: one message group per date, deduplicated by range."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    def send(self, messages: list[SeatRangeMessage]) -> int:
        """Every message, 10 per SendMessageBatch, several batches in flight; returns the requests made."""
        url = self.settings.publish_seats_queue_url
        if not url:
            raise ServiceUnavailable(message="Large concerts cannot be published: PUBLISH_SEATS_QUEUE_URL is not set.")
        batches = [messages[i : i + SEND_BATCH_LIMIT] for i in range(0, len(messages), SEND_BATCH_LIMIT)]
        with ThreadPoolExecutor(max_workers=SEND_WORKERS) as pool:
            return sum(pool.map(lambda batch: self._send_batch(url, batch), batches))

    @staticmethod
    def _send_batch(url: str, batch: list[SeatRangeMessage]) -> int:
        pending = {
            str(n): {
                "Id": str(n),
                "MessageBody": message.model_dump_json(by_alias=True),
                "MessageGroupId": message.schedule_id,
                # Within SQS's 5-minute window a retried creation's copies are dropped; later ones are skipped by
                # the range's marker.
                "MessageDeduplicationId": hashlib.sha256(
                    f"{message.concert_id}#{message.range_id}".encode()
                ).hexdigest(),
            }
            for n, message in enumerate(batch)
        }
        for attempt in range(1, SEND_ATTEMPTS + 1):
            response = sqs().send_message_batch(QueueUrl=url, Entries=list(pending.values()))
            pending = {failed["Id"]: pending[failed["Id"]] for failed in response.get("Failed") or []}
            if not pending:
                return attempt
        logger.warning("seat ranges not enqueued", extra={"messages": len(pending)})
        raise ServiceUnavailable(message="The concert's seats could not be queued; retry with the same key.")
