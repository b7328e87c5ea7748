"""`Idempotency-Key` on POSTs that move money: a record written INSIDE the operation's own transaction.

A record is keyed by (user id, key) through the operation's derived id, so two users' keys never meet, and
remembers a hash of the body (`fingerprint`) and the answer. It is one more Put in the TransactWriteItems that
makes the effect, conditioned on `attribute_not_exists(PK)`: the effect and its record commit together or not
at all, so there is no in-flight state to keep, and a failed call (4xx, 5xx) leaves no record (the client may
retry with the same key). The operation reads the record with what it reads anyway (one BatchGetItem); when a
concurrent duplicate commits first, the transaction is cancelled on the record's condition and the record it
returns (ALL_OLD) decides: the same body gets the first answer, another body 409 IDEMPOTENCY_KEY_REUSED.

Records of payments and cancellations expire after RECORD_TTL_SECONDS (DynamoDB TTL on `ttl`), as the
Powertools records did: past that, a replay is still answered from the reservation (it names the payment or
refund that moved it). A charge has nothing else that remembers it, so its record never expires.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header
from pydantic import BaseModel, BeforeValidator

from ticketline.db import Item, derived_id, dynamodb, from_raw, to_raw
from ticketline.errors import IdempotencyKeyReused, Throttled

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 64
RECORD_TTL_SECONDS = 24 * 3600


def _without_surrounding_whitespace(value: Any) -> Any:
    # RFC 9110 5.5: spaces and tabs around a field value are not part of it, so "abc" and "abc " are one key.
    return value.strip(" \t") if isinstance(value, str) else value


# What a route that takes the header declares (`idempotency_key: IdempotencyKey`): 1..64 printable ASCII
# characters once trimmed, anything else (or none) a 400 naming the header; documented in the OpenAPI document.
IdempotencyKey = Annotated[
    str,
    BeforeValidator(_without_surrounding_whitespace),
    Header(
        alias=IDEMPOTENCY_KEY_HEADER,
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        pattern=r"^[\x20-\x7e]+$",
        examples=["8d0c7a52-4a8e-4f43-9d1e"],
        description="1..64 printable ASCII characters of the client's choosing (a UUID), one per intended "
        "operation; surrounding whitespace is not part of it. A retry with the same key and body acts once.",
    ),
]


@dataclass(frozen=True, slots=True)
class Record:
    """What one call's record is keyed by (its id, derived from user + key) and must match (the body's hash)."""

    record_id: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class IdempotentOperation[AnswerT: BaseModel]:
    """One operation (say "wallet.charge") whose calls act once per (userId, key) and answer `answer` models.
    Built once per container (module level in the services)."""

    name: str
    id_prefix: str  # of the derived id, which is also the charge's, payment's or refund's id
    answer: type[AnswerT]
    expires_after_seconds: int | None = RECORD_TTL_SECONDS

    def record(self, user_id: str, key: str, body: Mapping[str, Any]) -> Record:
        """`body`: the part of the request that must match for a replay (JSON values)."""
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return Record(derived_id(self.id_prefix, user_id, key), hashlib.sha256(canonical.encode()).hexdigest())

    def put(self, table: str, record: Record, answer: AnswerT, now: int) -> dict[str, Any]:
        """The record as one Put of the effect's transaction: only if no call with this key committed before."""
        item: Item = {
            **record_key(record.record_id),
            "operation": self.name,
            "fingerprint": record.fingerprint,
            "answer": answer.model_dump(mode="json", by_alias=True),
            "at": now,
            "ttl": now + self.expires_after_seconds if self.expires_after_seconds is not None else None,
        }
        return {
            "Put": {
                "TableName": table,
                "Item": to_raw(item),
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def replay(self, record: Record, found: Item) -> AnswerT:
        """The first call's answer, for a call that found this key's record: 409 when the body differs."""
        if found.get("fingerprint") != record.fingerprint:
            raise IdempotencyKeyReused()
        return self.answer.model_validate(found["answer"])

    def replay_refused(self, table: str, record: Record, returned: Item | None) -> AnswerT:
        """A transaction cancelled on the record's condition: another call with this key committed first (a
        concurrent duplicate, or a resent request). Its record decides; read it only if the refusal did not
        return it."""
        found = returned or read_record(table, record.record_id)
        if found is None:  # committed and already expired: cannot be within a call's lifetime, but never guess
            raise Throttled(retry_after_seconds=1)
        return self.replay(record, found)


def record_key(record_id: str) -> Item:
    return {"PK": f"IDEMPOTENCY#{record_id}", "SK": "IDEMPOTENCY"}


def read_record(table: str, record_id: str) -> Item | None:
    raw = dynamodb().get_item(TableName=table, Key=to_raw(record_key(record_id)), ConsistentRead=True)
    return from_raw(raw["Item"]) if "Item" in raw else None
