"""The DynamoDB client every repository uses: one per process, retry mode set explicitly."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from ticketline.config import get_settings
from ticketline.observability import tracer

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from botocore.exceptions import ClientError
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, Any]
RawItem = dict[str, "AttributeValueTypeDef"]

# The codes DynamoDB gives a refused write: a single write's error, and a cancelled transaction's per-item reasons.
CONDITION_FAILED_EXCEPTION = "ConditionalCheckFailedException"
TRANSACTION_CANCELED_EXCEPTION = "TransactionCanceledException"
CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"
NO_REASON = "None"  # this item was not why the transaction was cancelled


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


def new_items(table: str, items: list[Item]) -> list[Any]:
    """Transaction items that put `items`, each refusing to overwrite an existing item."""
    return [
        {"Put": {"TableName": table, "Item": to_raw(item), "ConditionExpression": "attribute_not_exists(PK)"}}
        for item in items
    ]


def put_new(table: str, items: list[Item]) -> None:
    """Put items all or nothing, each refusing to overwrite an existing item (one transaction; a refusal raises)."""
    dynamodb().transact_write_items(TransactItems=new_items(table, items))


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


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def condition_failed(error: ClientError) -> bool:
    """A single write refused by its condition: an answer (someone moved the item first), not a failure."""
    return error_code(error) == CONDITION_FAILED_EXCEPTION


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one item of a cancelled transaction refused, and the item as the refusal saw it (its ALL_OLD, when the
    request asked for it and the item exists)."""

    code: str
    item: Item | None = None

    @property
    def condition_failed(self) -> bool:
        return self.code == CONDITION_FAILED


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A cancelled transaction, one Reason per item, in the order the items were sent; `error` is DynamoDB's, for a
    caller whose rules do not explain the reasons (a throttled item, a validation error) to raise as it came."""

    reasons: tuple[Reason, ...]
    error: ClientError

    def __getitem__(self, index: int) -> Reason:
        return self.reasons[index]

    @property
    def conflict(self) -> bool:
        """Another transaction had one of the items: nothing is wrong with the request, retry later."""
        return any(reason.code == TRANSACTION_CONFLICT for reason in self.reasons)

    def failed(self, indexes: Sequence[int] | range) -> list[Reason]:
        """The reasons of these items whose condition failed."""
        return [self.reasons[index] for index in indexes if self.reasons[index].condition_failed]

    def only(self, *codes: str) -> bool:
        """Every item that refused did so for one of `codes` (nothing else wrong: no item throttled or invalid)."""
        return all(reason.code in (NO_REASON, *codes) for reason in self.reasons)


def cancelled(error: ClientError, item_count: int | None = None) -> Cancelled | None:
    """The per-item reasons of a cancelled transaction (of `item_count` items, when the caller knows it); None for
    any other error (or a cancellation that does not say, item by item, why: the caller re-raises)."""
    if error_code(error) != TRANSACTION_CANCELED_EXCEPTION:
        return None
    raw: list[Mapping[str, Any]] = list(error.response.get("CancellationReasons", []))
    if not raw or (item_count is not None and len(raw) != item_count):
        return None
    return Cancelled(
        tuple(
            Reason(str(reason.get("Code") or NO_REASON), from_raw(reason["Item"]) if reason.get("Item") else None)
            for reason in raw
        ),
        error,
    )


def transact(items: Sequence[Any]) -> Cancelled | None:
    """One TransactWriteItems: None when it committed, else why it was cancelled (any other error raises)."""
    from botocore.exceptions import ClientError

    try:
        dynamodb().transact_write_items(TransactItems=list(items))
    except ClientError as error:
        refused = cancelled(error, len(items))
        if refused is None:
            raise
        return refused
    return None


def conditional_transaction(items: Sequence[Any], *, conflicts_refuse: bool = False) -> bool:
    """One TransactWriteItems whose refusal is an answer: True when it committed, False when only conditions refused
    it (with `conflicts_refuse`, another transaction on its items too: a concurrent copy of the same writes); any
    other cancellation (a throttled item) or error raises."""
    refused = transact(items)
    if refused is None:
        return True
    if refused.only(CONDITION_FAILED, *((TRANSACTION_CONFLICT,) if conflicts_refuse else ())):
        return False
    raise refused.error


def refusal(write: Callable[[], object]) -> Reason | None:
    """Run one conditional write: None when it happened, else its refusal (an answer: another writer moved the item
    first), with the item as the condition saw it when the write asked for ReturnValuesOnConditionCheckFailure
    ALL_OLD and the item exists. Any other error raises."""
    from botocore.exceptions import ClientError

    try:
        write()
    except ClientError as error:
        if not condition_failed(error):
            raise
        item = error.response.get("Item")
        return Reason(CONDITION_FAILED, from_raw(item) if item else None)
    return None


def conditional_write(write: Callable[[], object]) -> bool:
    """Run one conditional write: True when it happened, False when its condition refused it; any other error
    raises."""
    return refusal(write) is None


# ---- derived ids and retry pacing, shared by the services that retry a refused transaction ----
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.25


def derived_id(prefix: str, user_id: str, key: str) -> str:
    """A stable id for (user, Idempotency-Key): the same request always names the same charge or payment."""
    digest = hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()
    return f"{prefix}_{digest[:32]}"


def backoff(
    attempt: int,
    sleep: Callable[[float], None],
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
) -> None:
    """Full jitter, capped: racing writers of one item stop lock-stepping."""
    sleep(random.uniform(0, min(cap, base * 2**attempt)))
