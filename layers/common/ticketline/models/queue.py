"""Queue tokens as the API shows them, and as the repository stores them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from ticketline.models import ID_PATTERN, ApiModel, with_examples
from ticketline.models.catalog import MAX_QUEUE_CAPACITY, FiguresAsOfOut, SalesOut, SaleStatus, ScheduleSalesOut

# Ids we mint are URL-safe; anything else is refused before it reaches DynamoDB.
EntityId = Annotated[str, Field(pattern=ID_PATTERN, examples=["01JD4Y7Z0K3M5Q8R2T6V9W1X3Y"])]


class TokenStatus(StrEnum):
    WAIT = "WAIT"
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"


# A lobby token's place key is drawn uniformly from [1, LOBBY_KEYS]: the lobby is lined up in key order.
LOBBY_KEYS = 2**53  # exact in a DynamoDB number and in a float


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
    """One admission run as the queue state records it: when it wrote (epoch seconds), the bound it left, the
    highest sequence number drawn by then (above the bound: people were still waiting) and the live ACTIVE tokens
    it left (None: recorded by a version that did not count them)."""

    at: int
    bound: int
    drawn: int
    active: int | None = None


@dataclass(frozen=True, slots=True)
class QueueState:
    """Per-concert admission state. Only concert creation, the scheduler and an operator's change write it."""

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
    # An operator paused admission: no run raises the bound, no waiter walks in, no join enters (docs/QUEUE.md).
    paused: bool = False
    # The lobby (docs/QUEUE.md, "The lobby"): False while joins before salesOpenAt may wait in it and it has not
    # been let into the line yet; while False no arrival after the opening is entitled (admit_bound stays 0).
    lobby_done: bool = True
    # Lobby joins counted by the last admission run (final once the line has formed).
    lobby_size: int = 0
    # The first admission run at least JOIN_WINDOW_SECONDS after salesOpenAt formed the line: the lobby's order is
    # fixed, positions are given.
    lobby_formed: bool = False
    # Lobby tokens with a place key <= lobby_bound are entitled; lobby_admitted of them were let in so far.
    lobby_bound: int = 0
    lobby_admitted: int = 0


@dataclass(frozen=True, slots=True)
class QueueChange:
    """One operator change of a queue, as the audit trail keeps it: who (their `sub`), when, and what was set."""

    at: int
    operator: str
    paused: bool | None
    capacity: int | None


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
    # A lobby token's random place key (its seq is 0: it drew no number); None for a token drawn after the opening.
    lobby_key: int | None = None

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
    position: int | None = Field(
        ge=0,
        description="Place in line (1 = next to enter); 0 when ACTIVE; null while the line forms (the lobby, until "
        "the first admission run after salesOpenAt).",
    )
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
    position: int | None = Field(
        ge=0,
        description="Place in line (1 = next to enter); 0 when ACTIVE; null while the line forms (the lobby, until "
        "the first admission run after salesOpenAt).",
    )
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


# ---- operators ----
class QueueControlIn(ApiModel):
    model_config = with_examples({"paused": True}, {"capacity": 500}, {"paused": False, "capacity": 200})

    paused: bool | None = Field(default=None, strict=True, description="true: admission stops; false: it resumes.")
    capacity: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_QUEUE_CAPACITY,
        description="Most ACTIVE queue tokens at once, from the next admission run; lowering it admits nobody until "
        "the live ACTIVE tokens fall under it and cuts no one's turn short.",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if self.paused is None and self.capacity is None:
            raise ValueError("give paused, capacity or both")
        return self


class QueueFiguresOut(ApiModel):
    model_config = with_examples(
        {
            "capacity": 500,
            "paused": True,
            "waiting": 1200,
            "active": 480,
            "admitted": 3500,
            "estimatedWaitSeconds": None,
        }
    )

    capacity: int = Field(description="Most ACTIVE queue tokens at once.")
    paused: bool = Field(description="Admission is paused: nobody enters until it resumes.")
    waiting: int = Field(
        ge=0, description="People in line behind the admission bound at the last admission run (0 before any run)."
    )
    active: int | None = Field(
        description="Live ACTIVE tokens as the last admission run left them; null before any run."
    )
    admitted: int = Field(ge=0, description="Queue places admitted so far (the admission bound).")
    estimated_wait_seconds: int | None = Field(
        description="Expected wait of the last in line, from the admission runs' pace; null until the line has been "
        "seen to move, or while paused."
    )


class QueueChangeOut(ApiModel):
    model_config = with_examples(
        {"at": "2030-12-01T10:05:00Z", "operator": "3f1c9a2e-ops", "paused": True, "capacity": None}
    )

    at: str = Field(description="ISO-8601 UTC time of the change.")
    operator: str = Field(description="The operator's `sub`.")
    paused: bool | None = Field(description="What paused was set to; null: left as it was.")
    capacity: int | None = Field(description="What capacity was set to; null: left as it was.")


class ConcertSaleOut(ApiModel):
    model_config = with_examples(
        {
            "concertId": "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y",
            "title": "Winter night",
            "status": "ON_SALE",
            "salesOpenAt": "2030-12-01T10:00:00Z",
            "queue": QueueFiguresOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
            "sales": SalesOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
            "schedules": ScheduleSalesOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
            "figuresAsOf": FiguresAsOfOut.model_config["json_schema_extra"]["examples"][0],  # type: ignore[index]
            "queueChanges": QueueChangeOut.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
        }
    )

    concert_id: str
    title: str
    status: SaleStatus = Field(description="ENDED once the last date has started; SOLD_OUT while nothing is left.")
    sales_open_at: str
    queue: QueueFiguresOut
    sales: SalesOut
    schedules: list[ScheduleSalesOut] = Field(description="Every date, soonest first.")
    figures_as_of: FiguresAsOfOut = Field(description="How old the figures are.")
    queue_changes: list[QueueChangeOut] = Field(
        description="The audit trail: every pause, resume and capacity change, oldest first, with the operator's sub."
    )
