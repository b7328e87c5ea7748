"""The DynamoDB client every repository uses: one per process, retry mode set explicitly."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from ticketline.config import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, Any]
RawItem = dict[str, "AttributeValueTypeDef"]

# "standard" retries throttles and 5xx with jittered backoff; ConditionalCheckFailed is never retried.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2, read_timeout=5)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", endpoint_url=get_settings().dynamodb_endpoint_url, config=_CLIENT_CONFIG)


def to_raw(item: Item) -> RawItem:
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def from_raw(raw: RawItem | Any) -> Item:
    return {key: _plain(_deserializer.deserialize(value)) for key, value in raw.items()}


def values(**named: Any) -> RawItem:
    """ExpressionAttributeValues from keyword arguments: values(now=1) -> {":now": {"N": "1"}}."""
    return {f":{name}": _serializer.serialize(value) for name, value in named.items()}


def put_new(table: str, items: list[Item]) -> None:
    """Put items all or nothing, each refusing to overwrite an existing item (one transaction)."""
    dynamodb().transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": to_raw(item), "ConditionExpression": "attribute_not_exists(PK)"}}
            for item in items
        ]
    )


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; our numbers are all integers."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value
