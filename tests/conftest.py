"""Shared fixtures: unit tests run on moto with the tables built from template.yaml itself.

Every handler runs under its IAM role from the translated template (devserver/iam.py), here and in the local
server the integration tests start. The session records what each function was allowed (TICKETLINE_IAM_USAGE,
inherited by those servers); when the whole suite ran and passed, a grant no test used fails the run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

    from devserver.iam import RolePolicy
    from devserver.proxy import LambdaContext
    from devserver.template import FunctionSpec, Template

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
if not os.environ.get("TICKETLINE_IAM_USAGE"):  # set before any enforcer or server process exists
    os.environ["TICKETLINE_IAM_USAGE"] = tempfile.mkstemp(prefix="ticketline-iam-usage-", suffix=".txt")[1]


@cache
def template() -> Template:
    from devserver.template import load_template

    return load_template(ROOT / "template.yaml")


def function_spec(function: str) -> FunctionSpec:
    """The template's function whose code is functions/<function>/."""
    (spec,) = (spec for spec in template().functions if spec.code_dir.name == function)
    return spec


def role_of(function: str) -> RolePolicy:
    """The IAM role of the function whose code is functions/<function>/."""
    return function_spec(function).role


def lambda_context(function: str) -> LambdaContext:
    """The context Lambda gives functions/<function>/'s handler (the local server's, from the template)."""
    from devserver.proxy import LambdaContext

    return LambdaContext(function_spec(function))


def load_handler(function: str, module_name: str) -> ModuleType:
    """functions/<function>/app.py, executed afresh (its module-level clients made inside the current moto)."""
    from devserver.lambda_host import load_module

    return load_module(module_name, ROOT / "functions" / function / "app.py")


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

    from devserver import iam
    from devserver.template import create_tables
    from ticketline.config import get_settings
    from ticketline.db import dynamodb

    get_settings.cache_clear()
    dynamodb.cache_clear()
    with mock_aws():
        create_tables(boto3.client("dynamodb"), template())
        iam.enforcer()  # on moto's fresh default session, before the handlers' client exists
        yield
    dynamodb.cache_clear()


def load_event(name: str, **changes: Any) -> dict[str, Any]:
    """A sample event from events/, with top-level keys replaced (e.g. body=..., pathParameters=...)."""
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return event | changes


@pytest.fixture
def invoke(aws: None) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Call a function's handler in-process, as Lambda would, under its IAM role: invoke("issue_token", event)."""
    from devserver import iam
    from devserver.lambda_host import temporary_environment
    from ticketline.config import get_settings

    def call(function: str, event: dict[str, Any], without: frozenset[str] = frozenset()) -> dict[str, Any]:
        """`without`: variables the template gives the function that this call leaves out (a broken deployment)."""
        # The function's own template variables, and none of the others', as on Lambda (and the local server).
        spec_of_function = function_spec(function)
        own = {name: value for name, value in spec_of_function.environment.items() if name not in without}
        get_settings.cache_clear()
        try:
            with (
                temporary_environment(own, unset=template().environment_names - own.keys()),
                iam.enforcer().acting_as(spec_of_function.role),
            ):
                module = load_handler(function, f"test_fn_{function}")  # fresh per call: clients in this test's moto
                return dict(module.lambda_handler(event, lambda_context(function)))
        finally:
            get_settings.cache_clear()

    return call


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on moto is a component test: `-m "not component"` leaves the pure logic alone."""
    for item in items:
        if "aws" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.component)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The template's grants against what the handlers used, once the whole suite has passed (`make test`)."""
    from devserver import iam

    config = session.config
    whole_suite = config.args_source is pytest.Config.ArgsSource.TESTPATHS  # `pytest` with no paths
    narrowed = (
        config.option.keyword
        or config.option.markexpr
        or config.option.deselect
        or getattr(config.option, "lf", False)
        or config.option.collectonly
    )
    if exitstatus != 0 or not whole_suite or narrowed:
        return
    usage_path = Path(os.environ["TICKETLINE_IAM_USAGE"])
    roles = [function.role for function in template().functions]
    unused = iam.unused_grants(roles, iam.read_usage(usage_path))
    if unused:
        print(
            "\nIAM: template.yaml grants what no test used (remove it, or test the code path that needs it):\n"
            + "\n".join(f"  {function}: {grant}" for function, grants in unused.items() for grant in grants)
            + f"\nFull report: .venv/bin/python -m devserver.iam {usage_path}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
