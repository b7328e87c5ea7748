"""Shared fixtures: unit tests run on moto with the tables built from template.yaml itself.

Every handler runs under its IAM role from the translated template (devserver/iam.py), here and in the local
server the integration tests start. The session records what each function was allowed (TICKETLINE_IAM_USAGE,
inherited by those servers); when the whole suite ran and passed, a grant no test used fails the run.
"""

from __future__ import annotations

import copy
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
    TABLE_NAME="TicketlineTable",  # the name create_tables gives the template's table on moto
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


class MotoTables:
    """moto's DynamoDB with every table of template.yaml, built once per session and handed to each test as new.

    Starting moto and creating the tables costs a third of a second (moto resets boto3's default session, so the
    first client loads botocore's service models again): once per session, not per test. Before each test every
    moto service returns to new: its backends reset, as a fresh mock_aws() leaves them, and DynamoDB's state
    restored from a copy taken once the tables existed (items, streams, TTL settings: as just created). Between
    tests that do not ask for it, moto is paused (keeping its state), so nothing else in the session runs on it.
    """

    def __init__(self) -> None:
        self._mock: Any = None
        self._active = False
        self._tables_as_created: dict[str, Any] = {}

    def start_clean(self) -> None:
        """moto on, every service as new, the template's tables empty."""
        from moto.core.base_backend import BackendDict
        from moto.dynamodb.models import dynamodb_backends

        from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION

        if self._mock is None:
            self._begin()
        elif not self._active:
            self._mock.start(reset=False)  # a new boto3 default session, as at the first start
            self._active = True
        BackendDict.reset()  # what mock_aws() does on start: every service's data gone
        # The DynamoDB backend's whole state, as moto's own reset rebuilds it (BaseBackend.reset sets __dict__).
        dynamodb_backends[LOCAL_ACCOUNT_ID][LOCAL_REGION].__dict__ = copy.deepcopy(self._tables_as_created)

    def _begin(self) -> None:
        import boto3
        from moto import mock_aws
        from moto.dynamodb.models import dynamodb_backends

        from devserver.template import LOCAL_ACCOUNT_ID, LOCAL_REGION, create_tables

        self._mock = mock_aws()
        self._mock.start()
        self._active = True
        create_tables(boto3.client("dynamodb", region_name=LOCAL_REGION), template())
        self._tables_as_created = copy.deepcopy(dynamodb_backends[LOCAL_ACCOUNT_ID][LOCAL_REGION].__dict__)

    def pause(self) -> None:
        """moto off until the next test that asks for it; its state kept."""
        if self._active:
            self._mock.stop(remove_data=False)
            self._active = False

    def stop(self) -> None:
        if self._active:
            self._mock.stop()
            self._active = False


moto_tables = MotoTables()


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Iterator[None]:
    """moto's DynamoDB with every table of template.yaml, empty, as if created for this test (see MotoTables).

    `@pytest.mark.fresh_moto` gives the test a moto of its own, started and torn down around it (a test that must
    see moto's first start, say).
    """
    from devserver import iam
    from ticketline.config import get_settings
    from ticketline.db import dynamodb

    get_settings.cache_clear()
    dynamodb.cache_clear()
    if request.node.get_closest_marker("fresh_moto"):
        yield from _fresh_moto()
    else:
        moto_tables.start_clean()
        iam.enforcer()  # on moto's default session, before the handlers' client exists
        yield
    dynamodb.cache_clear()


def _fresh_moto() -> Iterator[None]:
    import boto3
    from moto import mock_aws

    from devserver import iam
    from devserver.template import create_tables

    moto_tables.pause()
    with mock_aws():
        create_tables(boto3.client("dynamodb"), template())
        iam.enforcer()
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """moto paused after the last of a run of tests on it, so the tests after them never run on moto."""
    yield
    if nextitem is None:
        moto_tables.stop()
    elif "aws" not in getattr(nextitem, "fixturenames", ()) or nextitem.get_closest_marker("fresh_moto"):
        moto_tables.pause()


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
