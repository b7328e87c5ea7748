"""Queue tokens as the API shows them, and as the repository stores them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from ticketline.models import ApiModel, with_examples

# Ids we mint are URL-safe; anything else is refused before it reaches DynamoDB.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
EntityId = Annotated[str, Field(pattern=ID_PATTERN, examples=["01JD4Y7Z0K3M5Q8R2T6V9W1X3Y"])]


class TokenStatus(StrEnum):
    WAIT = "WAIT"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"


def sequence_number(drawn: int, shard: int, shards: int) -> int:
    """The `drawn`-th number of shard s is s+1, s+1+K, s+1+2K, ...: interleaved, globally unique, ordered per shard."""
    return (drawn - 1) * shards + shard + 1


@dataclass(frozen=True, slots=True)
class CounterReading:
    """What each sequence shard had handed out at `at` (epoch seconds, taken after the read)."""

    at: int
    issued: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AdmissionRun:
    """One admission run as the queue state records it: when it wrote (epoch seconds), the bound it left, and the
    highest sequence number drawn by then (above the bound: people were still waiting)."""

    at: int
    bound: int
    drawn: int


@dataclass(frozen=True, slots=True)
class QueueState:
    """Per-concert admission state. Only concert creation and the scheduler write it."""

    concert_id: str
    capacity: int
    shards: int
    # Every token whose sequence number is <= admit_bound is entitled to be ACTIVE.
    admit_bound: int
    # The scheduler's recent counter readings, oldest first: they date the numbers drawn since (docs/QUEUE.md).
    readings: tuple[CounterReading, ...] = ()
    # Joining opens at this time (epoch seconds); None: a concert created before sales had an opening time.
    sales_open_at: int | None = None
    # The concert's sold-out figure (models.catalog.is_sold_out); None: not counted yet, never sold out.
    sellable_until: int | None = None
    # The latest admission runs, oldest first: the line's pace for the poll's estimate and retry time.
    runs: tuple[AdmissionRun, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueToken:
    concert_id: str
    user_id: str
    token: str
    seq: int
    shard: int
    status: TokenStatus
    issued_at: int
    active_until: int | None

    def effective_status(self, now: float) -> TokenStatus:
        """An ACTIVE token past its time is EXPIRED even before the scheduler writes so."""
        if self.status is TokenStatus.ACTIVE and self.active_until is not None and self.active_until <= now:
            return TokenStatus.EXPIRED
        return self.status


class QueueTokenOut(ApiModel):
    model_config = with_examples(
        {
            "token": "q1Yk2mZ0c2VyLWFsaWNl",
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "status": "ACTIVE",
            "position": 0,
            "activeUntil": "2026-12-24T19:05:00Z",
        },
        {
            "token": "q1Yk2mZ0c2VyLWJvYg",
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "status": "WAIT",
            "position": 17,
            "activeUntil": None,
        },
    )

    token: str = Field(examples=["q1Yk2m...opaque"], description="Send it as X-Queue-Token.")
    concert_id: str
    status: TokenStatus
    position: int = Field(ge=0, description="Place in line (1 = next to enter); 0 when ACTIVE.")
    active_until: str | None = Field(description="ISO-8601 UTC end of the ACTIVE window; null while waiting.")


class QueuePositionOut(ApiModel):
    model_config = with_examples(
        {
            "status": "WAIT",
            "position": 1200,
            "activeUntil": None,
            "retryAfterSeconds": 243,
            "estimatedWaitSeconds": 301,
        },
        {
            "status": "ACTIVE",
            "position": 0,
            "activeUntil": "2026-12-24T19:05:00Z",
            "retryAfterSeconds": 30,
            "estimatedWaitSeconds": 0,
        },
    )

    status: TokenStatus
    position: int = Field(ge=0, description="Place in line (1 = next to enter); 0 when ACTIVE.")
    active_until: str | None
    retry_after_seconds: int = Field(
        ge=1,
        description="Poll again after this many seconds: a handful of polls whatever the wait, back in time to enter.",
    )
    estimated_wait_seconds: int | None = Field(
        ge=0,
        description="Expected seconds until the caller may enter, from the admissions seen; null until the line has "
        "been seen to move; 0 when ACTIVE.",
    )
