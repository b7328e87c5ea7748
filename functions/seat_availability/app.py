"""DynamoDB Streams consumer: when seats change status (to or from FREE, or HELD to SOLD), add the changes to their
date's figures (FREE, HELD, SOLD seats, money taken, tickets cancelled), then recount their concert's sold-out
figure from its dates' figures.

The template's filter sends only those changes. Each date costs its META read (GetItem) and one conditional
UpdateItem per batch whatever its size (the sum of its records' changes, never a recount of its seats: a
100,000-seat date costs what a 100-seat one does), and each concert one Query of its dates and one transaction.
Partial batch responses (ReportBatchItemFailures): a date whose update fails fails its records only, and Lambda
delivers the batch again from the first of them. A retry is safe: the date's figures keep the last stream sequence
number added (`figuresSequence`), and records up to it are not added twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord, StreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.models.catalog import SeatChange
from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.catalog import schedule_of_seat
from ticketline.services.catalog import CatalogService

catalog = CatalogService()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class SeatChanges:
    """One batch: every date's changes added first (one update of its figures, keeping the last sequence number
    added), then each concert's sold-out figure (so it sees every date of it that changed); each record then shares
    its date's outcome."""

    def __init__(self, records: list[DynamoDBRecord]) -> None:
        by_date: dict[str, list[StreamRecord]] = {}
        for record in records:
            schedule_id = schedule_of_seat(record.dynamodb.keys if record.dynamodb else {})
            if schedule_id is not None and record.dynamodb is not None:
                by_date.setdefault(schedule_id, []).append(record.dynamodb)
        self.outcomes: dict[str, Exception | None] = {}
        concerts: dict[str, list[str]] = {}
        for schedule_id, streams in by_date.items():
            try:
                concert_id = catalog.add_changes(schedule_id, [_seat_change(stream) for stream in streams])
                self.outcomes[schedule_id] = None
                if concert_id is not None:
                    concerts.setdefault(concert_id, []).append(schedule_id)
            except Exception as error:  # kept: every record of this date fails with it
                self.outcomes[schedule_id] = error
        for concert_id, dates in sorted(concerts.items()):
            try:
                catalog.recount_sold_out(concert_id)
            except Exception as error:  # its dates' records are delivered again (their changes are not re-added)
                self.outcomes.update(dict.fromkeys(dates, error))

    def handle(self, record: DynamoDBRecord) -> None:
        schedule_id = schedule_of_seat(record.dynamodb.keys if record.dynamodb else {})
        failure = self.outcomes.get(schedule_id) if schedule_id is not None else None
        if failure is not None:
            raise failure


def _seat_change(stream: StreamRecord) -> SeatChange:
    old, new = stream.old_image or {}, stream.new_image or {}  # a MODIFY's record has both (NEW_AND_OLD_IMAGES)
    price = int(new.get("price", old.get("price", 0)))
    return SeatChange.of(str(stream.sequence_number), str(old.get("status")), str(new.get("status")), price)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = SeatChanges([DynamoDBRecord(record) for record in event.get("Records", [])])
    response = process_partial_response(
        event=event, record_handler=changes.handle, processor=processor, context=context
    )
    failed = [date for date, outcome in changes.outcomes.items() if outcome is not None]
    logger.info("seat figures updated", extra={"dates": len(changes.outcomes), "failedDates": failed})
    return dict(response)
