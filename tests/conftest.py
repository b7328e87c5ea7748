"""Shared fixtures: unit tests run on moto with the tables built from template.yaml itself."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Set before any ticketline module reads its settings.
os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_SERVICE_NAME="ticketline",
    POWERTOOLS_METRICS_NAMESPACE="Ticketline",
    POWERTOOLS_LOG_LEVEL="WARNING",
    QUEUE_STATE_CACHE_SECONDS="0",
    TABLE_NAME="TicketlineTable",  # the names create_tables gives the template's tables on moto
    IDEMPOTENCY_TABLE_NAME="IdempotencyTable",
)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.current = start

    def __call__(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    from ticketline import clock as ticketline_clock

    fake = FakeClock()
    ticketline_clock.set_clock(fake)
    yield fake
    ticketline_clock.set_clock(None)


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto DynamoDB with every table of template.yaml."""
    import boto3
    from moto import mock_aws

    from devserver.template import create_tables, load_template
    from ticketline.config import get_settings
    from ticketline.db import dynamodb

    get_settings.cache_clear()
    dynamodb.cache_clear()
    with mock_aws():
        create_tables(boto3.client("dynamodb"), load_template(ROOT / "template.yaml"))
        yield
    dynamodb.cache_clear()


class LambdaContext:
    function_name = "test"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    """A sample event from events/, with top-level keys replaced (e.g. body=..., pathParameters=...)."""
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return event | changes


@pytest.fixture
def invoke(aws: None) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Call a function's handler in-process, as Lambda would: invoke("issue_token", event)."""

    from devserver.lambda_host import temporary_environment
    from devserver.template import load_template
    from ticketline.config import get_settings

    template = load_template(ROOT / "template.yaml")

    def call(function: str, event: dict[str, Any], without: frozenset[str] = frozenset()) -> dict[str, Any]:
        """`without`: variables the template gives the function that this call leaves out (a broken deployment)."""
        # The function's own template variables, and none of the others', as on Lambda (and the local server).
        declared = next(spec for spec in template.functions if spec.code_dir.name == function).environment
        own = {name: value for name, value in declared.items() if name not in without}
        spec = importlib.util.spec_from_file_location(f"test_fn_{function}", ROOT / "functions" / function / "app.py")
        assert spec is not None and spec.loader is not None
        get_settings.cache_clear()
        try:
            with temporary_environment(own, unset=template.environment_names - own.keys()):
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)  # fresh module per call: new clients inside this test's moto
                return dict(module.lambda_handler(event, LambdaContext()))
        finally:
            get_settings.cache_clear()

    return call
