"""Reads the template's DynamoDB streams locally and invokes their functions, as Lambda's event source
mapping does: records in order per shard, filtered by FilterCriteria, in batches of BatchSize (waiting up to
MaximumBatchingWindowInSeconds for more), a failed batch retried (MaximumRetryAttempts) before moving on.

DynamoDB Local (and moto's server) serve the Streams API on the same endpoint as DynamoDB.
"""

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from devserver.event_filter import matches
from devserver.lambda_host import Invoker, invoke_batch
from devserver.template import LOCAL_REGION, StreamEvent, Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams.literals import ShardIteratorTypeType

logger = logging.getLogger("devserver")

POLL_SECONDS = 0.25  # Lambda polls each shard about four times a second
_RETRY_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)


@dataclass
class _Shard:
    iterator: str | None
    last_sequence: str | None = None


@dataclass
class _Mapping:
    """One event source mapping: a stream event of a function, with its shards' positions and a pending batch."""

    event: StreamEvent
    stream_arn: str
    shards: dict[str, _Shard] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)
    pending_since: float | None = None
    started: bool = False


class StreamPoller:
    def __init__(self, template: Template, host: Invoker, dynamodb_endpoint: str) -> None:
        self._template = template
        self._host = host
        endpoint = dynamodb_endpoint or None  # "": AWS's own endpoint (moto's in-process mock in unit tests)
        self._client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=LOCAL_REGION)
        self._streams = boto3.client(
            "dynamodbstreams",
            endpoint_url=endpoint,
            region_name=LOCAL_REGION,
            # Without an endpoint botocore would address <account>.streams-ddb..., which moto does not serve.
            config=Config(account_id_endpoint_mode="disabled"),
        )
        self._mappings = [self._mapping(event) for event in template.streams]

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            self.poll_once()

    def poll_once(self) -> int:
        """Reads every shard once and delivers the batches that are due; returns the records delivered."""
        delivered = 0
        for mapping in self._mappings:
            try:
                self._read(mapping)
            except ClientError:
                logger.exception("reading the stream of %s failed; retrying", mapping.event.qualified_name)
                continue
            if mapping.pending and self._due(mapping):
                delivered += self._deliver(mapping)
        return delivered

    def drain(self) -> int:
        """Reads and delivers everything written so far, without waiting for batching windows (tests)."""
        delivered = 0
        for mapping in self._mappings:
            self._read(mapping)
            while mapping.pending:
                delivered += self._deliver(mapping)
                self._read(mapping)
        return delivered

    def _mapping(self, event: StreamEvent) -> _Mapping:
        table = self._template.table_names[event.table_id]
        stream_arn = self._client.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if not stream_arn:
            raise RuntimeError(f"{event.qualified_name}: table {table} has no stream (StreamSpecification)")
        return _Mapping(event, stream_arn)

    def _read(self, mapping: _Mapping) -> None:
        description = self._streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]
        for listed in description["Shards"]:
            if listed["ShardId"] not in mapping.shards:
                # Shards that exist when the mapping starts begin at its StartingPosition; later ones (children
                # of a split or a rollover) from their start, so that nothing written after the start is missed.
                position = mapping.event.starting_position if not mapping.started else "TRIM_HORIZON"
                mapping.shards[listed["ShardId"]] = _Shard(self._iterator(mapping, listed["ShardId"], position))
        mapping.started = True
        for shard_id, shard in mapping.shards.items():
            while shard.iterator is not None and len(mapping.pending) < mapping.event.batch_size:
                try:
                    page = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                        raise
                    shard.iterator = (
                        self._iterator(mapping, shard_id, "AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_sequence)
                        if shard.last_sequence is not None
                        else self._iterator(mapping, shard_id, "TRIM_HORIZON")
                    )
                    continue
                shard.iterator = page.get("NextShardIterator")  # None: the shard is closed and read to its end
                for record in page["Records"]:
                    shard.last_sequence = record["dynamodb"]["SequenceNumber"]
                    event_record = _lambda_record(record, mapping.stream_arn)
                    if not mapping.event.filters or any(matches(p, event_record) for p in mapping.event.filters):
                        mapping.pending.append(event_record)
                        mapping.pending_since = mapping.pending_since or time.monotonic()
                if not page["Records"]:
                    break

    def _iterator(
        self, mapping: _Mapping, shard_id: str, position: "ShardIteratorTypeType", **after: str
    ) -> str | None:
        response = self._streams.get_shard_iterator(
            StreamArn=mapping.stream_arn, ShardId=shard_id, ShardIteratorType=position, **after
        )
        return response.get("ShardIterator")

    def _due(self, mapping: _Mapping) -> bool:
        waited = time.monotonic() - (mapping.pending_since or time.monotonic())
        return len(mapping.pending) >= mapping.event.batch_size or waited >= mapping.event.batching_window_seconds

    def _deliver(self, mapping: _Mapping) -> int:
        batch = mapping.pending[: mapping.event.batch_size]
        mapping.pending = mapping.pending[mapping.event.batch_size :]
        mapping.pending_since = time.monotonic() if mapping.pending else None
        function = self._template.function(mapping.event.function_id)
        attempts = mapping.event.maximum_retry_attempts
        attempt = delivered = 0
        while True:
            sequence = [record["dynamodb"]["SequenceNumber"] for record in batch]
            failed = invoke_batch(self._host, function, mapping.event, batch, sequence)
            if not failed:
                return delivered + len(batch)
            # Lambda checkpoints before the first failed record and delivers the rest again.
            delivered += failed[0]
            batch = batch[failed[0] :]
            if attempts is not None and attempt >= attempts:
                logger.error(
                    "%s failed %d times: %d records are given up, as Lambda would",
                    mapping.event.qualified_name,
                    attempt + 1,
                    len(batch),
                )
                return delivered
            logger.warning("%s: retrying %d records", mapping.event.qualified_name, len(batch))
            time.sleep(_RETRY_BACKOFF_SECONDS[min(attempt, len(_RETRY_BACKOFF_SECONDS) - 1)])
            attempt += 1


def _lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it over: the same fields, times as epoch seconds, the source ARN."""
    stream_record = dict(record["dynamodb"])
    created = stream_record.get("ApproximateCreationDateTime")
    if created is not None and not isinstance(created, int | float):
        stream_record["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", LOCAL_REGION),
        "dynamodb": stream_record,
        "eventSourceARN": stream_arn,
    }
