"""Domain errors and their one mapping to the API's error shape (API.md)."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """An error a client can act on; `status` and `code` are part of the public contract."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    default_message: ClassVar[str] = "The request cannot be served."

    def __init__(self, message: str | None = None, details: list[dict[str, Any]] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or []
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


class ValidationFailed(DomainError):
    status, code, default_message = 400, "VALIDATION_ERROR", "The request is invalid."

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unauthenticated(DomainError):
    status, code, default_message = 401, "UNAUTHENTICATED", "A valid bearer token is required."


class QueueTokenInvalid(DomainError):
    status, code, default_message = 401, "QUEUE_TOKEN_INVALID", "A valid X-Queue-Token for this concert is required."


class QueueTokenNotActive(DomainError):
    status, code, default_message = 403, "QUEUE_TOKEN_NOT_ACTIVE", "Your queue token is still waiting."


class Forbidden(DomainError):
    status, code, default_message = 403, "FORBIDDEN", "You may not access this resource."


class NotFound(DomainError):
    status, code, default_message = 404, "NOT_FOUND", "The resource does not exist."


class Conflict(DomainError):
    status, code = 409, "CONFLICT"


class SeatUnavailable(Conflict):
    code, default_message = "SEAT_UNAVAILABLE", "The seat is already held or sold."


class HoldLimitReached(Conflict):
    code, default_message = "HOLD_LIMIT_REACHED", "You already hold the most seats allowed on this date."


class ReservationNotPayable(Conflict):
    code, default_message = "RESERVATION_NOT_PAYABLE", "The reservation cannot be paid."


class IdempotencyKeyReused(Conflict):
    code, default_message = "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used with another request body."


class BalanceLimitExceeded(Conflict):
    code, default_message = "BALANCE_LIMIT_EXCEEDED", "This charge would take your balance past its maximum."


class SaleNotOpen(Conflict):
    code, default_message = "SALE_NOT_OPEN", "The sale of this concert has not opened yet."

    def __init__(self, retry_after_seconds: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class PayloadTooLarge(DomainError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The body is over 1 MiB."


class UnsupportedMediaType(DomainError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    default_message = "Send the body as JSON (Content-Type: application/json)."


class ScheduleClosed(Conflict):
    code, default_message = "SCHEDULE_CLOSED", "The date has started: its sales are over."


class TicketLimitReached(Conflict):
    code, default_message = "TICKET_LIMIT_REACHED", "You already own the most tickets allowed for this concert."


class ReservationNotReleasable(Conflict):
    code, default_message = "RESERVATION_NOT_RELEASABLE", "Only a HELD hold can be given back, a PAID ticket cancelled."


class CancellationClosed(Conflict):
    code, default_message = "CANCELLATION_CLOSED", "The date starts too soon for a cancellation."


class InsufficientBalance(DomainError):
    status, code, default_message = 402, "INSUFFICIENT_BALANCE", "Your balance is too low."


class QueueTokenExpired(DomainError):
    status, code, default_message = 410, "QUEUE_TOKEN_EXPIRED", "Your queue token has expired; join the queue again."


class ReservationExpired(DomainError):
    status, code, default_message = 410, "RESERVATION_EXPIRED", "The hold has lapsed."


class SoldOut(DomainError):
    status, code, default_message = (
        410,
        "SOLD_OUT",
        "Every seat of this concert is sold. Seats may come back: a waiter keeps their place.",
    )


class Throttled(DomainError):
    status, code, default_message = 429, "THROTTLED", "Too many requests, retry later."

    def __init__(self, retry_after_seconds: int = 1, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ServiceUnavailable(Throttled):
    status, code, default_message = 503, "SERVICE_UNAVAILABLE", "A dependency is unavailable, retry later."
