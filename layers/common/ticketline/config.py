"""Typed settings, read once from the environment the template sets for each function, and validated: a
function deployed without its table name fails its first call with a clear error instead of talking to a
default table, and a setting out of range is refused rather than silently replaced."""

from __future__ import annotations

import os
import re
from functools import cache
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

NonEmpty = Annotated[str, Field(min_length=1)]
Positive = Annotated[int, Field(ge=1)]


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


def schedule_seconds(expression: str) -> int | None:
    """Seconds between runs of an EventBridge `rate(...)` expression; None for a cron expression."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class SettingsError(RuntimeError):
    """The function's environment is not what template.yaml gives it: a deployment bug, not a client's."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    table_name: NonEmpty
    dynamodb_endpoint_url: str | None = None  # only for sam local / the local server; unset on AWS
    # The FIFO queue of seat ranges a stadium-size concert is published through (AdminFunction only).
    publish_seats_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # only for the local server; unset on AWS
    default_queue_capacity: Positive = 100
    queue_counter_shards: Annotated[int, Field(ge=1, le=64)] = 1
    active_token_ttl_seconds: Positive = 300
    seat_hold_ttl_seconds: Positive = 300
    max_holds_per_schedule: Positive = 4
    max_tickets_per_user: Positive = 8
    cancellation_cutoff_hours: Annotated[int, Field(ge=0)] = 24
    queue_state_cache_seconds: Annotated[float, Field(ge=0)] = 1.0
    # Joining opens this long before salesOpenAt, into the lobby (a WAIT token with no place until the line forms).
    pre_queue_minutes: Annotated[int, Field(ge=0, le=1440)] = 30
    # The Admit schedule (AdmissionScheduleRate): the poll times its retries to it.
    admission_schedule_rate: Annotated[str, Field(pattern=r"^(rate|cron)\(.+\)$")] = "rate(5 minutes)"

    @property
    def admission_interval_seconds(self) -> int | None:
        """Seconds between Admit runs; None for a cron schedule (the poll then goes by the runs it sees)."""
        return schedule_seconds(self.admission_schedule_rate)

    @classmethod
    def from_env(cls) -> Settings:
        # Required names have no default: the template sets them. Tunables default to the template's defaults.
        names = {field: field.upper() for field in cls.model_fields}
        present = {field: os.environ[name] for field, name in names.items() if os.environ.get(name, "").strip()}
        try:
            return cls.model_validate(present)
        except ValidationError as error:
            problems = "; ".join(
                f"{names[str(e['loc'][0])]}: {'is not set' if e['type'] == 'missing' else e['msg']}"
                for e in error.errors()
            )
            raise SettingsError(f"invalid function environment: {problems}") from None


@cache
def get_settings() -> Settings:
    return Settings.from_env()
