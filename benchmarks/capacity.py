"""The capacity units AWS would bill for a recorded request (on-demand: WRU and RRU).

AWS's rules (DynamoDB Developer Guide, "Read/write capacity mode" and "Managing capacity for transactions"):
- a write costs 1 WRU per started 1 KB of the item (the larger of its before and after images); a read
  1 RRU per started 4 KB, half that when eventually consistent (GSI reads always are); a Query sums the
  sizes of the items it reads and rounds once; BatchGetItem rounds each item;
- every item of a transaction costs twice (prepare and commit): 2 WRU per KB written, 2 RRU per 4 KB read;
- a write also writes each GSI the item enters, leaves or changes in (1 WRU per KB of the index entry; a
  changed index key is a delete plus a put);
- a conditional write whose condition fails is still billed (at least 1 WRU per item named).

For a request that succeeded, the engine's own `ConsumedCapacity` (DynamoDB Local applies these rules:
checked in docs/BENCHMARKS.md's method notes) is used. For a failed request, which carries no
ConsumedCapacity, and on engines that report none (moto), the units are estimated here at the 1 KB minimum per
item (every Ticketline item is < 1 KB).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.recorder import DynamoRequest, ItemKey


@dataclass(frozen=True)
class Units:
    wru: float = 0.0
    rru: float = 0.0
    reported: bool = False  # True: from the engine's ConsumedCapacity; False: estimated here

    def __add__(self, other: Units) -> Units:
        return Units(self.wru + other.wru, self.rru + other.rru, self.reported and other.reported)


def billed_units(request: DynamoRequest) -> Units:
    if request.consumed and not request.failed:
        total = sum(float(entry.get("CapacityUnits", 0.0)) for entry in request.consumed)
        return Units(wru=total, reported=True) if request.is_write else Units(rru=total, reported=True)
    if request.failed:
        return _failed_units(request)
    return _estimated_units(request)


def total_units(requests: Iterable[DynamoRequest]) -> Units:
    return sum((billed_units(request) for request in requests), start=Units())


def _failed_units(request: DynamoRequest) -> Units:
    # Imported here, not at the top: a benchmark sets the functions' environment before ticketline loads.
    from ticketline.db import CONDITION_FAILED_EXCEPTION, TRANSACTION_CANCELED_EXCEPTION

    if not request.is_write:
        return Units()  # a failed read (validation, throttling) consumes nothing
    if request.error_code == CONDITION_FAILED_EXCEPTION:
        return Units(wru=1.0)
    if request.error_code == TRANSACTION_CANCELED_EXCEPTION:
        # Upper bound: every action billed as committed (AWS bills the prepared actions).
        return Units(wru=2.0 * len(request.item_keys()))
    return Units()  # throttled or refused before any work


def _estimated_units(request: DynamoRequest) -> Units:  # noqa: PLR0911 - one return per operation
    """Successful requests on an engine that reports nothing: the minimum per item."""
    keys = request.item_keys()
    consistent = bool(request.params.get("ConsistentRead"))
    match request.operation:
        case "GetItem":
            return Units(rru=_read_units(consistent))
        case "BatchGetItem":
            return Units(rru=sum(_read_units(_batch_consistent(request, key.table)) for key in keys))
        case "TransactGetItems":
            return Units(rru=2.0 * len(keys))
        case "Query" | "Scan":
            return Units(rru=_read_units(consistent and request.index is None))
        case "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem":
            return Units(wru=len(keys) + _index_units(request))
        case "TransactWriteItems":
            return Units(wru=2.0 * len(keys) + _index_units(request))
    return Units()


def _batch_consistent(request: DynamoRequest, table: str) -> bool:
    return bool(request.params["RequestItems"][table].get("ConsistentRead"))


def _read_units(consistent: bool) -> float:
    return 1.0 if consistent else 0.5


def _index_units(request: DynamoRequest) -> float:
    """GSI writes of a successful write."""
    return float(sum(len(index_writes(request, key)) for key in request.item_keys()))


def index_writes(request: DynamoRequest, key: ItemKey) -> list[tuple[str, str]]:
    """(index, partition) of every GSI entry the write put or deleted, from the request itself: a Put's index
    keys; an Update's `SET GSIxPK = :v` or `REMOVE GSIxPK`."""
    if not request.is_write or request.failed:
        return []
    actions: list[tuple[str, dict[str, Any]]] = []
    if request.operation in ("PutItem", "UpdateItem", "DeleteItem"):
        actions = [(request.operation, request.params)]
    elif request.operation == "TransactWriteItems":
        actions = [(f"{kind}Item", body) for action in request.params["TransactItems"] for kind, body in action.items()]
    writes: list[tuple[str, str]] = []
    for kind, body in actions:
        named = body.get("Key") or body.get("Item") or {}
        if str(next(iter(named.get("PK", {}).values()), "")) != key.pk:
            continue
        for index in ("GSI1", "GSI2"):
            if kind == "PutItem" and f"{index}PK" in body["Item"]:
                writes.append((index, str(next(iter(body["Item"][f"{index}PK"].values())))))
            elif kind == "UpdateItem":
                expression = str(body.get("UpdateExpression", ""))
                set_part, _, remove_part = expression.partition("REMOVE")
                for clause in set_part.removeprefix("SET").split(","):
                    name, _, placeholder = (part.strip() for part in clause.partition("="))
                    if name == f"{index}PK":
                        value = body.get("ExpressionAttributeValues", {}).get(placeholder, {})
                        writes.append((index, str(next(iter(value.values()), placeholder))))
                if f"{index}PK" in remove_part:
                    writes.append((index, "(entry removed)"))
    return writes
