"""Who is calling: claims put in the request context by the API Gateway Cognito authorizer (or the local server)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ticketline.errors import Forbidden, Unauthenticated

ADMIN_GROUP = "admin"
QUEUE_TOKEN_HEADER = "X-Queue-Token"


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    groups: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("This operation is for administrators.")


def caller_from_event(event: dict[str, Any]) -> Caller:
    """The user id comes only from verified claims, never from a body, query or path."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims") or {}
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise Unauthenticated()
    return Caller(user_id=user_id, groups=_groups(claims.get("cognito:groups")))


def queue_token_from_headers(headers: dict[str, str] | None) -> str | None:
    return header_value(headers, QUEUE_TOKEN_HEADER)


def header_value(headers: dict[str, str] | None, wanted: str) -> str | None:
    """HTTP header names are case-insensitive; API Gateway passes them as the client sent them."""
    return next((value for name, value in (headers or {}).items() if name.lower() == wanted.lower()), None)


def _groups(raw: Any) -> frozenset[str]:
    """API Gateway REST flattens Cognito's list claim to a string: "admin", "admin,staff" or "[admin, staff]"."""
    if isinstance(raw, list):
        return frozenset(str(group) for group in raw)
    if not isinstance(raw, str) or not raw.strip():
        return frozenset()
    text = raw.strip()
    if text.startswith("["):
        try:
            return frozenset(str(group) for group in json.loads(text))
        except json.JSONDecodeError:
            text = text.strip("[]")
    return frozenset(part.strip() for part in text.replace(" ", ",").split(",") if part.strip())
