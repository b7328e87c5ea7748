"""The template's SQS queues locally, and their functions invoked as Lambda's SQS event source mapping does.

The queues themselves are moto's SQS in server mode (a real SQS HTTP endpoint on loopback), created from the
template at start-up: FIFO and its deduplication, the visibility timeout, the redrive to the dead-letter queue after
maxReceiveCount and the queue's MaximumMessageSize (1 MiB unless the template says less, as SQS) are moto's, not
ours. This module is the event source mapping: it long-polls each queue with an SQS event, hands the function a
batch of up to BatchSize messages in Lambda's event shape, and deletes what succeeded:

- the function raises: nothing is deleted; every message comes back after the visibility timeout (and goes to the
  dead-letter queue after maxReceiveCount receives);
- FunctionResponseTypes: [ReportBatchItemFailures]: the messages named in `batchItemFailures` come back, the others
  are deleted; an answer Lambda cannot read (an identifier not in the batch) fails the whole batch.

A FIFO queue hands out no message of a group while another of that group is in flight (moto, as SQS), so a group's
messages reach the function in order, one batch at a time.
"""

import base64
import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import boto3

from devserver.dynamodb_local import running_moto_server
from devserver.lambda_host import Invoker, invoke_batch
from devserver.template import LOCAL_REGION, QueueEvent, QueueSpec, Template, create_queues

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = logging.getLogger("devserver")

RECEIVE_LIMIT = 10  # SQS's most messages per ReceiveMessage
LONG_POLL_SECONDS = 1  # Lambda waits 20 s; 1 s keeps a stop prompt
_WINDOW_POLL_SECONDS = 0.1  # within a batching window: how often to look for more messages
# The attributes Lambda puts in a record (and, on a FIFO queue, the group, sequence and deduplication id).
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


@contextlib.contextmanager
def running_queues(template: Template) -> Iterator[str]:
    """moto's SQS server with the template's queues created on it: its endpoint; "" when the template has none."""
    if not template.queues:
        yield ""
        return
    with running_moto_server() as endpoint:
        # Closed before the server forks: no connection of it may be shared.
        with contextlib.closing(boto3.client("sqs", endpoint_url=endpoint, region_name=LOCAL_REGION)) as client:
            create_queues(client, template)
        yield endpoint


class QueuePoller:
    def __init__(self, template: Template, host: Invoker, sqs_endpoint: str) -> None:
        self._template = template
        self._host = host
        self._client = boto3.client("sqs", endpoint_url=sqs_endpoint, region_name=LOCAL_REGION)
        self._mappings = [(event, template.queue(event.queue_id)) for event in template.queue_events if event.enabled]

    def run(self, stop: threading.Event) -> None:
        if not self._mappings:  # every SQS event disabled (Enabled: false): nothing to poll
            stop.wait()
            return
        while not stop.is_set():
            try:
                self.poll_once(LONG_POLL_SECONDS)
            except Exception:  # the queue's server unreachable, say: Lambda's poller keeps trying
                logger.exception("polling the queues failed; retrying")
                stop.wait(LONG_POLL_SECONDS)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """One batch per queue, if any message is visible; returns the messages handed to functions."""
        delivered = 0
        for event, queue in self._mappings:
            messages = self._receive(event, queue, wait_seconds)
            if messages:
                self._deliver(event, queue, messages)
                delivered += len(messages)
        return delivered

    def drain(self) -> int:
        """Delivers until no message is visible (tests); messages that failed stay invisible meanwhile."""
        return sum(iter(self.poll_once, 0))

    def _receive(self, event: QueueEvent, queue: QueueSpec, wait_seconds: int) -> list["MessageTypeDef"]:
        """Up to BatchSize messages: more receives while the batch is not full and MaximumBatchingWindowInSeconds,
        counted from the first message, has not passed."""
        messages: list[MessageTypeDef] = []
        deadline = 0.0
        while len(messages) < event.batch_size:
            limit = min(RECEIVE_LIMIT, event.batch_size - len(messages))
            received = self._client.receive_message(
                QueueUrl=queue.url,
                MaxNumberOfMessages=limit,
                WaitTimeSeconds=0 if messages else wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if not received:
                    break
                deadline = time.monotonic() + event.batching_window_seconds
            messages.extend(received)
            if len(received) < limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(min(_WINDOW_POLL_SECONDS, remaining))
        return messages

    def _deliver(self, event: QueueEvent, queue: QueueSpec, messages: list["MessageTypeDef"]) -> None:
        records = [_lambda_record(message, queue) for message in messages]
        function = self._template.function(event.function_id)
        ids = [record["messageId"] for record in records]
        failed = set(invoke_batch(self._host, function, event, records, ids))
        done = [message for index, message in enumerate(messages) if index not in failed]
        for start in range(0, len(done), RECEIVE_LIMIT):
            chunk = done[start : start + RECEIVE_LIMIT]
            self._client.delete_message_batch(
                QueueUrl=queue.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
        logger.info(
            "queue %s: %d messages -> %d done, %d back after the visibility timeout",
            event.qualified_name,
            len(messages),
            len(done),
            len(failed),
        )


def _lambda_record(message: Mapping[str, Any], queue: QueueSpec) -> dict[str, Any]:
    """A ReceiveMessage message as Lambda hands it over (camel-cased fields, the source ARN and region)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            name: value for name, value in (message.get("Attributes") or {}).items() if name in _RECORD_ATTRIBUTES
        },
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": LOCAL_REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": None if binary is None else base64.b64encode(binary).decode(),
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues") or []],
        "dataType": value["DataType"],
    }
