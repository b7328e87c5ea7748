"""DynamoDB Streams consumer: when a seat changes status (to or from FREE, or HELD to SOLD), recount its date's
figures (FREE, HELD, SOLD seats) and then its concert's sold-out figure, and add the batch's sales (money taken,
tickets cancelled) to the date's sales figures (services/operator.py: O(changes), a retry adds nothing twice).

The template's filter sends only those changes; each date is recounted once per batch, whatever the batch holds.
Partial batch responses (ReportBatchItemFailures): a date whose recount fails fails its records only, and Lambda
delivers the batch again from the first of them. A retry is safe: a recount stores the same numbers again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord, StreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.catalog import schedule_of_seat
from ticketline.services.catalog import CatalogService
from ticketline.services.operator import SalesFiguresService, SeatSale, seat_sale

catalog = CatalogService()
sales = SalesFiguresService()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class SeatChanges:
    """One batch: the first record of a date recounts the date, then its concert (so the concert's last recount
    in the batch sees every date of it that changed), and adds the date's sales of the whole batch; later records of
    the date share that outcome."""

    def __init__(self, records: list[DynamoDBRecord]) -> None:
        self.outcomes: dict[str, Exception | None] = {}
        self.sales: dict[str, list[SeatSale]] = {}
        for record in records:
            schedule_id = schedule_of_seat(record.dynamodb.keys if record.dynamodb else {})
            if schedule_id is not None and record.dynamodb is not None:
                self.sales.setdefault(schedule_id, []).append(_sale(record.dynamodb))

    def handle(self, record: DynamoDBRecord) -> None:
        schedule_id = schedule_of_seat(record.dynamodb.keys if record.dynamodb else {})
        if schedule_id is None:
            return
        if schedule_id not in self.outcomes:
            try:
                catalog.recount_changed([schedule_id])
                sales.add(schedule_id, self.sales.get(schedule_id, []))
                self.outcomes[schedule_id] = None
            except Exception as error:  # kept: every record of this date fails with it
                self.outcomes[schedule_id] = error
        failure = self.outcomes[schedule_id]
        if failure is not None:
            raise failure


def _sale(stream: StreamRecord) -> SeatSale:
    old, new = stream.old_image or {}, stream.new_image or {}  # a MODIFY's record has both (NEW_AND_OLD_IMAGES)
    price = int(new.get("price", old.get("price", 0)))
    return seat_sale(str(stream.sequence_number), str(old.get("status")), str(new.get("status")), price)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = SeatChanges([DynamoDBRecord(record) for record in event.get("Records", [])])
    response = process_partial_response(
        event=event, record_handler=changes.handle, processor=processor, context=context
    )
    failed = [date for date, outcome in changes.outcomes.items() if outcome is not None]
    logger.info("seat figures recounted", extra={"dates": len(changes.outcomes), "failedDates": failed})
    return dict(response)
