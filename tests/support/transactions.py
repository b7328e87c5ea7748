"""A TransactWriteItems cancellation as DynamoDB sends it, one reason per item, for tests of the decoders."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ticketline.db import to_raw


def cancellation(*codes: str, items: dict[int, dict[str, Any]] | None = None) -> ClientError:
    """A TransactionCanceledException whose reason i has codes[i] (and the ALL_OLD item items[i], if given)."""
    reasons: list[dict[str, Any]] = [{"Code": code} for code in codes]
    for index, item in (items or {}).items():
        reasons[index]["Item"] = to_raw(item)
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons},  # type: ignore[typeddict-unknown-key]
        "TransactWriteItems",
    )
