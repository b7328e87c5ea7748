"""SQS consumer of the seat-range queue (FIFO, one message group per date): writes a stadium-size concert's seats in
the background and opens its sale once every range is written (services/publishing.py).

Partial batch responses (ReportBatchItemFailures): a FIFO batch stops at its first failed message, which and every
message after it are delivered again; a message that keeps failing goes to the dead-letter queue after the queue's
maxReceiveCount, and its concert stays PUBLISHING (its alarm tells the operator; a retry of the creation with the
same key sends its ranges again).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketline.models.catalog import SeatRangeMessage
from ticketline.observability import logger, metrics, tracer
from ticketline.services.publishing import SeatPublisher

publisher = SeatPublisher()
processor = SqsFifoPartialProcessor()


def publish(record: SQSRecord) -> None:
    publisher.publish_range(SeatRangeMessage.model_validate_json(record.body))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=publish, processor=processor, context=context))
