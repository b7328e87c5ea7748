"""The real handlers, driven in this process through the local server's own gateway (routing, JWT check,
API Gateway REST proxy events: devserver/gateway.py), with every DynamoDB request recorded.

    with dynamodb_local() as endpoint:
        api = InProcessApi(endpoint)
        answer = api.call("POST", f"/concerts/{cid}/queue/tokens", user="alice", label="join")
        answer.status, answer.body, answer.requests, answer.handler_seconds

One process is one warm Lambda container per function (module-level services and their caches persist
between calls), as on AWS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.recorder import DynamoRequest, RequestLog
from devserver import DEFAULT_TEMPLATE
from devserver.auth import mint_token
from devserver.dynamodb_local import running_engine, use_local_credentials
from devserver.gateway import Gateway
from devserver.lambda_host import LambdaHost
from devserver.proxy import HttpRequest
from devserver.schedules import ScheduleRunner
from devserver.server import DYNAMODB_LOCAL_DIR
from devserver.streams import StreamPoller
from devserver.template import FunctionSpec, Template, create_tables, load_template

# A stable user agent and loopback address for the events (API Gateway fills these from the client).
_CLIENT_IP = "127.0.0.1"


@contextlib.contextmanager
def dynamodb_local() -> Iterator[str]:
    """DynamoDB Local (the real engine) on a free loopback port, via the local server's engine module."""
    use_local_credentials()
    with running_engine(DYNAMODB_LOCAL_DIR) as engine:
        yield engine.endpoint_url


class _TimedLambdaHost(LambdaHost):
    """LambdaHost that notes how long the last invocation spent inside the handler."""

    last_seconds: float = 0.0

    def invoke(self, function: FunctionSpec, event: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().invoke(function, event)
        finally:
            self.last_seconds = time.perf_counter() - started


@dataclass
class Answer:
    label: str
    status: int
    body: Any
    headers: dict[str, str]
    requests: list[DynamoRequest] = field(default_factory=list)
    handler_seconds: float = 0.0

    @property
    def dynamodb_seconds(self) -> float:
        """Wall time with at least one DynamoDB call in flight (parallel calls are counted once)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted((r.started, r.started + r.seconds) for r in self.requests):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


class InProcessApi:
    def __init__(self, endpoint: str | None) -> None:
        """`endpoint`: DynamoDB Local's, or None for moto in this process (inside mock_aws)."""
        self.template: Template = load_template(DEFAULT_TEMPLATE)
        self.endpoint = endpoint or ""
        self._prepare_environment()
        import boto3

        create_tables(boto3.client("dynamodb", endpoint_url=endpoint or None), self.template)
        self._host = _TimedLambdaHost(self.endpoint)
        self._lock_dir = tempfile.mkdtemp(prefix="ticketline-bench-")
        self._schedules = ScheduleRunner(self.template, self._host, Path(self._lock_dir))
        self.gateway = Gateway(self.template, self._host, self._schedules, self.endpoint)
        self.log = RequestLog()
        from ticketline.db import dynamodb

        self.log.attach(dynamodb())
        self._tokens: dict[tuple[str, bool], str] = {}

    def _prepare_environment(self) -> None:
        """The functions' shared variables in this process, before ticketline's client and logger exist."""
        for layer_dir in self.template.functions[0].layer_dirs:  # importable as under /opt/python on Lambda
            if str(layer_dir) not in sys.path:
                sys.path.insert(0, str(layer_dir))
        # One process runs every function and settings are read once per process: the union of their variables.
        shared = {name: value for function in self.template.functions for name, value in function.environment.items()}
        shared["DYNAMODB_ENDPOINT_URL"] = self.endpoint
        shared["POWERTOOLS_TRACE_DISABLED"] = "true"
        shared["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ.update(shared)
        from ticketline.config import get_settings
        from ticketline.db import dynamodb

        get_settings.cache_clear()
        dynamodb.cache_clear()
        # Handlers log JSON lines to stdout, as on Lambda: the formatting cost stays, the output goes nowhere.
        with contextlib.redirect_stdout(NullWriter()):
            import ticketline.observability  # noqa: F401 - binds the Logger's stream now

    def table_name(self, logical_id: str = "TicketlineTable") -> str:
        return self.template.table_names[logical_id]

    def bearer(self, user: str, admin: bool = False) -> str:
        if (user, admin) not in self._tokens:
            self._tokens[(user, admin)] = mint_token(user, admin=admin, ttl_seconds=24 * 3600)
        return self._tokens[(user, admin)]

    def call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        user: str | None = None,
        admin: bool = False,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        query: str = "",
    ) -> Answer:
        all_headers = [("Host", "localhost"), ("User-Agent", "ticketline-benchmarks")]
        if user is not None:
            all_headers.append(("Authorization", f"Bearer {self.bearer(user, admin)}"))
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers.append(("Content-Type", "application/json"))
        all_headers += list((headers or {}).items())
        request = HttpRequest(method, path, query, all_headers, payload, _CLIENT_IP, 3000)
        response, requests, seconds = self._run(label, lambda: self.gateway.handle(request))
        text = response.body.decode() if response.body else ""
        body = json.loads(text) if text else None
        return Answer(label, response.status, body, dict(response.headers), requests, seconds)

    def run_schedule(self, name: str, *, label: str) -> Answer:
        result, requests, seconds = self._run(label, lambda: self._schedules.run(self.template.schedule(name)))
        return Answer(label, 200, result, {}, requests, seconds)

    def deliver_streams(self, *, label: str) -> Answer:
        """Every stream record written so far through its consumer, in the template's batch size (as Lambda's
        event source mapping would; its reads of the stream are not billed as DynamoDB capacity)."""
        delivered, requests, seconds = self._run(
            label, lambda: StreamPoller(self.template, self._host, self.endpoint).drain()
        )
        return Answer(label, 200, {"records": delivered}, {}, requests, seconds)

    def _run[T](self, label: str, work: Callable[[], T]) -> tuple[T, list[DynamoRequest], float]:
        """`work` with its DynamoDB requests labelled: what it returned, those requests, the time in handlers."""
        self._host.last_seconds = 0.0
        with self.log.labelled(label) as made:
            result = work()
        return result, list(made), self._host.last_seconds


class NullWriter(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)
