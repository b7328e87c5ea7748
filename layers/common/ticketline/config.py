"""Typed settings, read once from the environment the template sets for every function."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    idempotency_table_name: str
    dynamodb_endpoint_url: str | None
    default_queue_capacity: int
    queue_counter_shards: int
    active_token_ttl_seconds: int
    seat_hold_ttl_seconds: int
    max_holds_per_schedule: int
    queue_state_cache_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            table_name=os.environ.get("TABLE_NAME", "TicketlineTable"),
            idempotency_table_name=os.environ.get("IDEMPOTENCY_TABLE_NAME", "IdempotencyTable"),
            dynamodb_endpoint_url=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
            default_queue_capacity=_int("DEFAULT_QUEUE_CAPACITY", 100),
            queue_counter_shards=_int("QUEUE_COUNTER_SHARDS", 1),
            active_token_ttl_seconds=_int("ACTIVE_TOKEN_TTL_SECONDS", 300),
            seat_hold_ttl_seconds=_int("SEAT_HOLD_TTL_SECONDS", 300),
            max_holds_per_schedule=_int("MAX_HOLDS_PER_SCHEDULE", 4),
            queue_state_cache_seconds=float(os.environ.get("QUEUE_STATE_CACHE_SECONDS") or 1.0),
        )


@cache
def get_settings() -> Settings:
    return Settings.from_env()
