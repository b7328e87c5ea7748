"""Local stand-in for the API's Cognito authorizer: HS256 user tokens signed with a dev secret.

On AWS a Cognito user pool signs ID tokens and API Gateway checks them; locally we mint and check our
own, and hand the claims to handlers in the shape API Gateway REST uses for Cognito claims.
"""

import math
import os
import time
import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import jwt
from jwt.warnings import InsecureKeyLengthWarning

DEV_SECRET_ENV = "TICKETLINE_DEV_JWT_SECRET"
DEFAULT_DEV_SECRET = "local-dev-secret"
ADMIN_GROUP = "admin"
_ALGORITHM = "HS256"
# API Gateway REST renders Cognito's time claims as Java Date strings ("Tue Apr 14 17:39:50 UTC 2020").
_GATEWAY_DATE_CLAIMS = frozenset({"exp", "iat"})
# NumericDate claims as Cognito issues them: numbers a datetime can hold (0001..9999), which PyJWT does not check
# (it takes int(value): "123", true and 10**20 pass). Anything else is an invalid token, never a crash.
_DATE_CLAIMS = ("exp", "iat", "nbf")
_LATEST_TIMESTAMP = datetime.max.replace(tzinfo=UTC).timestamp()
# API.md fixes the default secret (16 bytes): PyJWT would warn on every call that it is short.
# catch_warnings is not thread-safe; the worst a race can do is leave this warning ignored.
_short_dev_secret_allowed = partial(warnings.catch_warnings, action="ignore", category=InsecureKeyLengthWarning)


class AuthenticationError(Exception):
    """The request carries no valid user token; the message says why (for the 401 and the log)."""


def dev_secret() -> str:
    return os.environ.get(DEV_SECRET_ENV) or DEFAULT_DEV_SECRET


def mint_token(user: str, *, admin: bool = False, ttl_seconds: int = 3600, email: str | None = None) -> str:
    """A user token shaped like a Cognito ID token (`sub`, `cognito:groups`, `token_use: id`)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user,
        "cognito:username": user,
        "cognito:groups": [ADMIN_GROUP] if admin else [],
        "email": email or f"{user}@example.com",
        "token_use": "id",
        "iat": now,
        "exp": now + ttl_seconds,
    }
    with _short_dev_secret_allowed():
        return jwt.encode(claims, dev_secret(), algorithm=_ALGORITHM)


def verify_token(token: str) -> dict[str, Any]:
    try:
        with _short_dev_secret_allowed():
            claims: dict[str, Any] = jwt.decode(
                token,
                dev_secret(),
                algorithms=[_ALGORITHM],
                # Cognito ID tokens carry the app client as `aud`; the local check has no client to match.
                options={"require": ["sub", "exp"], "verify_aud": False},
            )
    except jwt.ExpiredSignatureError as error:
        raise AuthenticationError("the bearer token has expired") from error
    except jwt.InvalidTokenError as error:
        raise AuthenticationError(f"the bearer token is invalid: {error}") from error
    for name in _DATE_CLAIMS:
        if name in claims and not _is_numeric_date(claims[name]):
            raise AuthenticationError(f"the bearer token is invalid: {name} is not a date")
    return claims


def _is_numeric_date(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return 0 <= value <= _LATEST_TIMESTAMP  # an int of any size compares exactly (math.isfinite would overflow)


def claims_from_authorization(header: str | None) -> dict[str, Any]:
    """The verified claims of an `Authorization: Bearer <JWT>` header."""
    if not header:
        raise AuthenticationError("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header is not 'Bearer <token>'")
    return verify_token(token.strip())


def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as API Gateway REST passes Cognito claims: every value a string, lists comma-joined."""
    return {name: _gateway_claim(name, value) for name, value in claims.items()}


def _gateway_claim(name: str, value: Any) -> str:
    if name in _GATEWAY_DATE_CLAIMS and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)
