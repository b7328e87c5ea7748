"""The DynamoDB client every repository uses: one per process, retry mode set explicitly."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from ticketline.config import get_settings
from ticketline.observability import tracer

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, Any]
RawItem = dict[str, "AttributeValueTypeDef"]


# boto3 and botocore are imported here, on the first DynamoDB call, not when a handler loads: importing them
# (botocore.client, botocore.config) is 100+ ms of cold start that /health and the requests refused before
# any DynamoDB call (401, 403, 400) never need (docs/BENCHMARKS.md, cold start).
@cache
def dynamodb() -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    tracer.patch(modules=("botocore",))  # X-Ray subsegments per DynamoDB call; a no-op when tracing is off
    # "standard" retries throttles and 5xx with jittered backoff; ConditionalCheckFailed is never retried.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},  # attempts in all, the first included
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )
    return boto3.client("dynamodb", endpoint_url=get_settings().dynamodb_endpoint_url, config=config)


# One DynamoDB call, all its retries included, ends well inside the shortest function Timeout (15 s): past it
# Lambda kills the call and the client gets a 502 instead of our 503 with Retry-After. DynamoDB answers in
# milliseconds in-region, so these bounds only ever bite on a real outage.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 2.5


def worst_case_call_seconds() -> float:
    """Every attempt timing out, plus botocore standard mode's longest backoffs (attempt n waits up to 2**(n-1) s)."""
    backoffs = sum(2.0 ** (attempt - 1) for attempt in range(1, MAX_ATTEMPTS))
    return MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + backoffs


@cache
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_raw(item: Item) -> RawItem:
    serialize = _serializer().serialize
    return {key: serialize(value) for key, value in item.items() if value is not None}


def from_raw(raw: RawItem | Any) -> Item:
    deserialize = _deserializer().deserialize
    return {key: _plain(deserialize(value)) for key, value in raw.items()}


def values(**named: Any) -> RawItem:
    """ExpressionAttributeValues from keyword arguments: values(now=1) -> {":now": {"N": "1"}}."""
    serialize = _serializer().serialize
    return {f":{name}": serialize(value) for name, value in named.items()}


def get_many(table: str, keys: list[Item], *, consistent: bool) -> list[Item]:
    """The items found under `keys` (any order, missing ones left out): one BatchGetItem, plus one more per
    round of UnprocessedKeys (DynamoDB returns those when throttled)."""
    request: Any = {table: {"Keys": [to_raw(key) for key in keys], "ConsistentRead": consistent}}
    found: list[Item] = []
    while request:
        response = dynamodb().batch_get_item(RequestItems=request)
        found.extend(from_raw(raw) for raw in response["Responses"].get(table, []))
        request = response.get("UnprocessedKeys") or None
    return found


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
