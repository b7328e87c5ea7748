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
ConsumedCapacity, and on engines that report none (moto), the units are estimated here from item sizes
when the recorder tracked item images, else at the 1 KB minimum per item (every Ticketline item is < 1 KB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from benchmarks.recorder import DynamoRequest
from ticketline.db import CONDITION_FAILED_EXCEPTION, TRANSACTION_CANCELED_EXCEPTION

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


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


def _failed_units(request: DynamoRequest) -> Units:
    if not request.is_write:
        return Units()  # a failed read (validation, throttling) consumes nothing
    if request.error_code == CONDITION_FAILED_EXCEPTION:
        return Units(wru=_write_units(_largest_image(request)))
    if request.error_code == TRANSACTION_CANCELED_EXCEPTION:
        # Upper bound: every action billed as committed (AWS bills the prepared actions).
        return Units(wru=2 * sum(_write_units(_image_size(request, key)) for key in request.item_keys()))
    return Units()  # throttled or refused before any work


def _estimated_units(request: DynamoRequest) -> Units:  # noqa: PLR0911 - one return per operation
    """Successful requests on an engine that reports nothing: sizes from images, else minimums."""
    keys = request.item_keys()
    consistent = bool(request.params.get("ConsistentRead"))
    match request.operation:
        case "GetItem":
            return Units(rru=_read_units(0, consistent))
        case "BatchGetItem":
            return Units(rru=sum(_read_units(0, _batch_consistent(request, key.table)) for key in keys))
        case "TransactGetItems":
            return Units(rru=2.0 * len(keys))
        case "Query" | "Scan":
            return Units(rru=_read_units(0, consistent and request.index is None))
        case "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem":
            return Units(wru=sum(_write_units(_image_size(request, key)) for key in keys) + _index_units(request))
        case "TransactWriteItems":
            return Units(wru=2 * sum(_write_units(_image_size(request, key)) for key in keys) + _index_units(request))
    return Units()


def _batch_consistent(request: DynamoRequest, table: str) -> bool:
    return bool(request.params["RequestItems"][table].get("ConsistentRead"))


def _write_units(size: int) -> float:
    return float(max(1, math.ceil(size / WRITE_UNIT_BYTES)))


def _read_units(size: int, consistent: bool) -> float:
    units = float(max(1, math.ceil(size / READ_UNIT_BYTES)))
    return units if consistent else units / 2


def _image_size(request: DynamoRequest, key: Any) -> int:
    sizes = [item_size(image) for image in (request.images_before.get(key), request.images_after.get(key)) if image]
    return max(sizes, default=0)


def _largest_image(request: DynamoRequest) -> int:
    return max((_image_size(request, key) for key in request.item_keys()), default=0)


def _index_units(request: DynamoRequest) -> float:
    """GSI writes of a successful write, from the before and after images (none tracked: none counted)."""
    return float(sum(len(index_writes(request, key)) for key in request.item_keys()))


def index_writes(request: DynamoRequest, key: Any) -> list[tuple[str, str]]:
    """(index, partition) of every GSI entry the write put or deleted: from the tracked images, else from the
    request itself (a Put's index keys; an Update's `SET GSIxPK = :v` or `REMOVE GSIxPK`)."""
    if not request.images_before and not request.images_after:
        return _index_writes_from_params(request, key) if request.is_write and not request.failed else []
    before, after = request.images_before.get(key), request.images_after.get(key)
    writes: list[tuple[str, str]] = []
    for index in ("GSI1", "GSI2"):
        old, new = _index_key(before, index), _index_key(after, index)
        if old is None and new is None:
            continue
        if old == new:
            if before != after:
                writes.append((index, new[0]))  # type: ignore[index]
            continue
        if old is not None:
            writes.append((index, old[0]))
        if new is not None:
            writes.append((index, new[0]))
    return writes


def _index_writes_from_params(request: DynamoRequest, key: Any) -> list[tuple[str, str]]:
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


def _index_key(image: dict[str, Any] | None, index: str) -> tuple[str, str] | None:
    if not image or f"{index}PK" not in image or f"{index}SK" not in image:
        return None
    pk, sk = image[f"{index}PK"], image[f"{index}SK"]
    return str(next(iter(pk.values()))), str(next(iter(sk.values())))


def item_size(raw_item: dict[str, Any]) -> int:
    """Bytes of an item in DynamoDB's wire format, by AWS's sizing rules."""
    return sum(len(name.encode()) + _value_size(value) for name, value in raw_item.items())


def _value_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 - one branch per type
    (kind, content), *_ = value.items()
    match kind:
        case "S":
            return len(str(content).encode())
        case "N":
            return _number_size(str(content))
        case "B":
            return len(content) if isinstance(content, bytes | bytearray) else len(str(content))
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(str(v).encode()) for v in content)
        case "NS":
            return sum(_number_size(str(v)) for v in content)
        case "L":
            return 3 + sum(1 + _value_size(v) for v in content)
        case "M":
            return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in content.items())
    return 0


def _number_size(text: str) -> int:
    significant_digits = len(Decimal(text).normalize().as_tuple().digits)
    return math.ceil(significant_digits / 2) + 1
