"""Settings are validated when a function starts serving (issue 11): no default table names, no silent defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import load_event
from ticketline.config import Settings, SettingsError


def test_the_template_environment_is_read_as_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVE_TOKEN_TTL_SECONDS", "60")
    monkeypatch.setenv("QUEUE_STATE_CACHE_SECONDS", "0.5")

    settings = Settings.from_env()

    assert (settings.table_name, settings.active_token_ttl_seconds) == ("TicketlineTable", 60)
    assert settings.queue_state_cache_seconds == 0.5


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("TABLE_NAME", None, "TABLE_NAME: is not set"),
        ("MAX_HOLDS_PER_SCHEDULE", "0", "MAX_HOLDS_PER_SCHEDULE: Input should be greater than or equal to 1"),
        ("SEAT_HOLD_TTL_SECONDS", "five", "SEAT_HOLD_TTL_SECONDS: Input should be a valid integer"),
        ("QUEUE_COUNTER_SHARDS", "65", "QUEUE_COUNTER_SHARDS: Input should be less than or equal to 64"),
    ],
)
def test_a_missing_or_invalid_setting_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str | None, says: str
) -> None:
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError, match=says):
        Settings.from_env()


def test_a_function_without_its_table_name_fails_its_first_call(invoke: Callable[..., dict[str, Any]]) -> None:
    # invoke runs the function with its template variables only: the tests' own TABLE_NAME does not leak in.
    with pytest.raises(SettingsError, match="TABLE_NAME"):
        invoke("wallet", load_event("wallet_balance.json"), without=frozenset({"TABLE_NAME"}))
