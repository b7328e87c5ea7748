"""DynamoDB Streams consumer: when seats move between FREE and taken, recount their dates' availableSeats hint.

The template's filter sends only seat changes to or from FREE; one recount per date per batch, whatever the
batch holds. An exception makes Lambda retry the batch, which is safe: a recount stores the same number again.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.observability import logger, metrics, tracer
from ticketline.repositories.catalog import schedule_of_seat
from ticketline.services.catalog import CatalogService

catalog = CatalogService()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def lambda_handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    dates = {
        schedule_id
        for record in event.records
        if record.dynamodb is not None and (schedule_id := schedule_of_seat(record.dynamodb.keys)) is not None
    }
    stored = catalog.recount_available(dates)
    logger.info("availableSeats recounted", extra={"dates": len(dates), "stored": stored})
    return {"dates": len(dates), "stored": stored}
