"""Opaque page cursors: base64url of a short text we minted; anything else given back is a 400, never a 500."""

from __future__ import annotations

import base64
import binascii
import re

from ticketline.errors import ValidationFailed


def encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, minted: re.Pattern[str]) -> re.Match[str]:
    """The cursor's text matched against the shape we mint, and only in the spelling we mint it."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        text = ""
    match = minted.match(text)
    if match is None or encode(text) != cursor:
        raise ValidationFailed.field("cursor", "is not a cursor this API returned")
    return match
