"""Who is calling: claims put in the request context by the API Gateway Cognito authorizer (or the local server)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ticketline.errors import Forbidden, Unauthenticated
from ticketline.observability import logger

ADMIN_GROUP = "admin"
QUEUE_TOKEN_HEADER = "X-Queue-Token"
# A user id goes into DynamoDB keys ("WALLET#<sub>", "HOLDS#<schedule>#<sub>"): Cognito's subs are UUIDs; no "#",
# no spaces or controls, and short enough that every key stays far below DynamoDB's 2,048 bytes.
MAX_USER_ID_LENGTH = 128
_USER_ID = re.compile(rf"[A-Za-z0-9._@:+-]{{1,{MAX_USER_ID_LENGTH}}}")
_DATE_CLAIMS = ("exp", "iat", "nbf")
# How API Gateway REST renders Cognito's NumericDate claims ("Tue Apr 14 17:39:50 UTC 2020").
_GATEWAY_DATE_FORMAT = "%a %b %d %H:%M:%S %Z %Y"
_NUMERIC_DATE = re.compile(r"\d{1,20}(\.\d{1,9})?")
_LATEST_TIMESTAMP = datetime.max.replace(tzinfo=UTC).timestamp()


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
    problem = claims_problem(claims) if isinstance(claims, dict) else "the claims are not an object"
    if problem is not None:
        logger.info("claims refused", extra={"reason": problem})
        raise Unauthenticated()
    return Caller(user_id=claims["sub"], groups=_groups(claims.get("cognito:groups")))


def claims_problem(claims: dict[str, Any]) -> str | None:
    """Why the authorizer's claims cannot be used (shape and range; the authorizer checked the signature and
    the expiry), or None. A 401 like any invalid token, never a key DynamoDB refuses or a date Python cannot hold."""
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
        return f"sub must be 1..{MAX_USER_ID_LENGTH} letters, digits or . _ @ : + -"
    for name in _DATE_CLAIMS:
        if name in claims and not _is_date(claims[name]):
            return f"{name} is not a date"
    return None


def _is_date(value: Any) -> bool:
    """A NumericDate (seconds since 1970, a number or its digits) or API Gateway's rendering of one, that a
    datetime can hold."""
    if isinstance(value, str):
        if _NUMERIC_DATE.fullmatch(value):
            value = float(value)
        else:
            return _is_gateway_date(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return 0 <= value <= _LATEST_TIMESTAMP  # an int of any size compares exactly (math.isfinite would overflow)


def _is_gateway_date(text: str) -> bool:
    try:
        datetime.strptime(text, _GATEWAY_DATE_FORMAT)
    except ValueError:
        return False
    return True


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
        except (ValueError, RecursionError):  # not JSON after all, or a hostile one
            text = text.strip("[]")
    return frozenset(part.strip() for part in text.replace(" ", ",").split(",") if part.strip())
