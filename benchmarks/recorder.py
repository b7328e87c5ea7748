"""Records every DynamoDB request a boto3 client makes, through botocore's event hooks.

    log = RequestLog()
    log.attach(dynamodb())            # ticketline.db's client: every repository and the idempotency store use it
    with log.labelled("GET position"):
        ...                           # each request made here is recorded under that label

`provide-client-params` injects `ReturnConsumedCapacity="INDEXES"` where the operation takes it (the engine
then reports the capacity it consumed, table and indexes apart) and notes the request; `after-call` closes it
with its duration, its error code and the reported capacity. Failed requests are recorded too (AWS bills a
failed conditional write): see capacity.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_CONTEXT_KEY = "ticketline_benchmark_request"


@dataclass(frozen=True)
class ItemKey:
    table: str
    pk: str
    sk: str


@dataclass
class DynamoRequest:
    """One request as sent, and what came back."""

    label: str
    operation: str
    params: dict[str, Any]  # the API parameters as the caller gave them (plus ReturnConsumedCapacity)
    started: float  # time.perf_counter() when the call began
    at: float  # time.time() (or the simulated clock) when the call began
    seconds: float = 0.0
    error_code: str | None = None
    consumed: list[dict[str, Any]] = field(default_factory=list)  # as reported by the engine

    @property
    def is_write(self) -> bool:
        return self.operation in WRITE_OPERATIONS

    @property
    def is_read(self) -> bool:
        return self.operation in READ_OPERATIONS

    @property
    def failed(self) -> bool:
        return self.error_code is not None

    @property
    def is_count(self) -> bool:
        return self.params.get("Select") == "COUNT"

    @property
    def index(self) -> str | None:
        return self.params.get("IndexName")

    def item_keys(self) -> list[ItemKey]:
        """The items a key-addressed request names (Query and Scan name none: see query_partition)."""
        operation, params = self.operation, self.params

        def key_of(table: str, attributes: dict[str, Any]) -> ItemKey:
            pk = attributes.get("PK") or {}
            sk = attributes.get("SK") or {}
            return ItemKey(table, str(next(iter(pk.values()), "")), str(next(iter(sk.values()), "")))

        if operation in ("GetItem", "UpdateItem", "DeleteItem"):
            return [key_of(params["TableName"], params["Key"])]
        if operation == "PutItem":
            return [key_of(params["TableName"], params["Item"])]
        if operation == "BatchGetItem":
            return [key_of(table, key) for table, request in params["RequestItems"].items() for key in request["Keys"]]
        if operation == "BatchWriteItem":
            keys = []
            for table, writes in params["RequestItems"].items():
                for write in writes:
                    body = write.get("PutRequest", {}).get("Item") or write.get("DeleteRequest", {}).get("Key", {})
                    keys.append(key_of(table, body))
            return keys
        if operation in ("TransactWriteItems", "TransactGetItems"):
            keys = []
            for action in params["TransactItems"]:
                (_, body), *_ = action.items()
                keys.append(key_of(body["TableName"], body.get("Key") or body.get("Item") or {}))
            return keys
        return []

    def query_partition(self) -> tuple[str, str] | None:
        """(table or table/index, partition key value) of a Query."""
        if self.operation != "Query":
            return None
        condition = str(self.params.get("KeyConditionExpression", ""))
        first = condition.split(" AND ", maxsplit=1)[0]
        if "=" not in first:
            return None
        placeholder = first.split("=", 1)[1].strip()
        value = self.params.get("ExpressionAttributeValues", {}).get(placeholder, {})
        target = self.params["TableName"] + (f"/{self.index}" if self.index else "")
        return target, str(next(iter(value.values()), ""))


class RequestLog:
    """Every request of the attached clients, in order; thread-safe (labels are per thread)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.requests: list[DynamoRequest] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clock = clock
        self._shared_scope: tuple[str, list[DynamoRequest]] | None = None

    # ---- wiring ----
    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params.dynamodb", self._on_params)
        client.meta.events.register("after-call.dynamodb", self._on_response)

    @contextmanager
    def labelled(self, label: str) -> Iterator[list[DynamoRequest]]:
        """Labels the requests made inside the block; yields the list of them.

        Requests from threads the block starts (a handler's own thread pool) carry the label too: a thread
        without a label of its own takes the one opened last by any thread."""
        mine: list[DynamoRequest] = []
        previous = getattr(self._local, "scope", None)
        previous_shared = self._shared_scope
        self._local.scope = self._shared_scope = (label, mine)
        try:
            yield mine
        finally:
            self._local.scope = previous
            self._shared_scope = previous_shared

    def _scope(self) -> tuple[str, list[DynamoRequest] | None]:
        scope = getattr(self._local, "scope", None) or self._shared_scope
        return scope if scope is not None else ("", None)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- hooks ----
    def _on_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if "ReturnConsumedCapacity" in model.input_shape.members and "ReturnConsumedCapacity" not in params:
            params["ReturnConsumedCapacity"] = "INDEXES"
        label, sink = self._scope()
        request = DynamoRequest(label, model.name, params, started=time.perf_counter(), at=self._clock())
        context[_CONTEXT_KEY] = (request, sink)

    def _on_response(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        noted: tuple[DynamoRequest, list[DynamoRequest] | None] | None = context.get(_CONTEXT_KEY)
        if noted is None:
            return
        request, sink = noted
        request.seconds = time.perf_counter() - request.started
        if http_response.status_code >= 300:
            request.error_code = parsed.get("Error", {}).get("Code", "Unknown")
        consumed = parsed.get("ConsumedCapacity")
        if isinstance(consumed, dict):
            request.consumed = [consumed]
        elif isinstance(consumed, list):
            request.consumed = list(consumed)
        with self._lock:
            self.requests.append(request)
            if sink is not None:
                sink.append(request)
