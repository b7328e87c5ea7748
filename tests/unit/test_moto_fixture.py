"""The `aws` fixture (tests/conftest.py): one moto per session, yet every test starts from new."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.core.models import MockAWS

from tests.conftest import moto_tables, template

NAMES = sorted(table.name for table in template().tables)


def _item_counts() -> dict[str, int]:
    dynamodb = boto3.client("dynamodb")
    return {name: dynamodb.scan(TableName=name, ConsistentRead=True)["Count"] for name in NAMES}


def _stream_records() -> int:
    # Without it botocore addresses <account>.streams-ddb..., which moto does not serve (as devserver/streams.py).
    streams = boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    records = 0
    for stream in streams.list_streams()["Streams"]:
        for shard in streams.describe_stream(StreamArn=stream["StreamArn"])["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=stream["StreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += len(streams.get_records(ShardIterator=iterator)["Records"])
    return records


def _write_everywhere() -> None:
    dynamodb = boto3.client("dynamodb")
    for name in NAMES:
        keys = dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
        dynamodb.put_item(TableName=name, Item={key["AttributeName"]: {"S": "x"} for key in keys})
    boto3.client("sqs").create_queue(QueueName="left-over")


def _settings() -> list[Any]:
    dynamodb = boto3.client("dynamodb")
    return [
        (
            dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
            dynamodb.describe_table(TableName=name)["Table"].get("StreamSpecification"),
        )
        for name in NAMES
    ]


def test_a_clean_start_empties_tables_streams_and_other_services_and_keeps_table_settings(aws: None) -> None:
    settings = _settings()
    _write_everywhere()
    assert _item_counts() == dict.fromkeys(NAMES, 1) and _stream_records() >= 1
    moto_tables.start_clean()  # what the fixture does before each test
    assert _item_counts() == dict.fromkeys(NAMES, 0)
    assert _stream_records() == 0
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []
    assert _settings() == settings


def test_one_test_writes(aws: None) -> None:
    _write_everywhere()


def test_the_next_test_starts_from_new(aws: None) -> None:
    assert _item_counts() == dict.fromkeys(NAMES, 0)
    assert _stream_records() == 0
    assert boto3.client("sqs").list_queues().get("QueueUrls", []) == []


def test_a_test_without_the_fixture_runs_without_moto() -> None:
    assert MockAWS._nested_count == 0


@pytest.mark.fresh_moto
def test_a_fresh_moto_has_the_tables_too_and_sees_nothing_of_the_session(aws: None) -> None:
    assert _item_counts() == dict.fromkeys(NAMES, 0)
    _write_everywhere()


def test_the_session_moto_after_a_fresh_one_is_clean(aws: None) -> None:
    assert _item_counts() == dict.fromkeys(NAMES, 0)
    assert _stream_records() == 0
