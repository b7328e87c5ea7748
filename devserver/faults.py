"""Fault injection at the botocore level, for local and test runs only (never loaded on AWS).

Switched on by an environment variable in the processes that run the handlers (the dev server's workers):

    TICKETLINE_FAULTS="throttle=0.03,conflict=0.03,internal=0.02,timeout_after_commit=0.02,seed=7"
    TICKETLINE_FAULTS_LOG=/tmp/faults.log     # optional: one line per injected fault, from every process

Each DynamoDB request (each attempt: botocore's retries draw again) may get, with the given probability:

- `throttle`: a `ProvisionedThroughputExceededException` (HTTP 400), as a hot partition answers;
- `internal`: an `InternalServerError` (HTTP 500);
- `conflict`: on `TransactWriteItems` only, a `TransactionCanceledException` whose reasons carry
  `TransactionConflict` (DynamoDB Local runs transactions one at a time and never says this);
- `timeout_after_commit`: on writes only, the request is really sent (so the write happens), then the
  answer is "lost": `ReadTimeoutError`, which botocore's retry mode resends. This is the hard case for
  idempotency: a conditional write meets its own first attempt.

Throttles and 500s are retried by botocore ("standard" mode, 4 attempts, ticketline/db.py) and surface to
the handler only when every attempt fails; conflicts and ConditionalCheckFailed are never retried by
botocore and are the application's to handle.

The handler is registered on `boto3.DEFAULT_SESSION.events` before any client exists (clients copy the
session's event hooks when they are created), first in line so that it answers before anything else.
Requests are only ever re-sent to a loopback endpoint.
"""

from __future__ import annotations

import functools
import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FAULTS_ENV = "TICKETLINE_FAULTS"
FAULTS_LOG_ENV = "TICKETLINE_FAULTS_LOG"
KINDS = ("throttle", "conflict", "internal", "timeout_after_commit")
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})
_TYPE_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

Sender = Callable[[Any, str], Any]  # (prepared request, event name) -> anything; performs the real request


@dataclass(frozen=True)
class FaultPlan:
    throttle: float = 0.0
    conflict: float = 0.0
    internal: float = 0.0
    timeout_after_commit: float = 0.0
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """`"throttle=0.03,conflict=0.03,seed=7"` -> FaultPlan; unknown names or bad numbers raise ValueError."""
        known = {field.name for field in fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (piece.strip() for piece in spec.split(","))):
            name, sep, raw = part.partition("=")
            name = name.strip()
            if not sep or name not in known:
                raise ValueError(f"{FAULTS_ENV}: unknown fault {part!r}; expected {', '.join(sorted(known))}")
            if name == "seed":
                values[name] = int(raw)
            else:
                probability = float(raw)
                if not 0.0 <= probability <= 1.0:
                    raise ValueError(f"{FAULTS_ENV}: {name} must be a probability in [0, 1], got {raw}")
                values[name] = probability
        return cls(**values)

    def __str__(self) -> str:
        parts = [f"{kind}={getattr(self, kind)}" for kind in KINDS if getattr(self, kind)]
        return ",".join([*parts, f"seed={self.seed}"] if self.seed is not None else parts) or "none"


class FaultInjector:
    """A `before-send.dynamodb` handler that answers some requests with a fault instead of DynamoDB."""

    def __init__(self, plan: FaultPlan, log_path: str | Path | None = None, send: Sender | None = None) -> None:
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._log_path = Path(log_path) if log_path else None
        # Seed + pid: each worker process draws its own, reproducible, sequence.
        self._random = random.Random(None if plan.seed is None else plan.seed * 1_000_003 + os.getpid())
        self._lock = threading.Lock()
        self._send = send or _send_to_loopback
        self._events: Any = None

    # ---- wiring ----
    def install(self, events: Any = None) -> FaultInjector:
        """Register on an event emitter (default: boto3's default session). Clients made later see the faults."""
        if events is None:
            import boto3

            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            assert boto3.DEFAULT_SESSION is not None
            events = boto3.DEFAULT_SESSION.events
        events.register_first("before-send.dynamodb", self, unique_id="ticketline-faults")
        self._events = events
        return self

    def uninstall(self) -> None:
        if self._events is not None:
            self._events.unregister("before-send.dynamodb", unique_id="ticketline-faults")
            self._events = None

    # ---- the handler ----
    def __call__(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        kind = self._draw(operation)
        if kind is None:
            return None
        self._record(kind, operation)
        if kind == "throttle":
            return _error_response(
                request, 400, "ProvisionedThroughputExceededException", "Injected fault: throughput exceeded."
            )
        if kind == "internal":
            return _error_response(request, 500, "InternalServerError", "Injected fault: internal server error.")
        if kind == "conflict":
            with self._lock:
                which = self._random.randrange(1 << 16)
            return _conflict_response(request, which)
        # timeout_after_commit: the write really happens, the answer is lost, botocore resends.
        from botocore.exceptions import ReadTimeoutError

        self._send(request, event_name)
        raise ReadTimeoutError(endpoint_url=request.url, error="injected fault: response lost after the write")

    def _draw(self, operation: str) -> str | None:
        with self._lock:
            roll = self._random.random()
        threshold = 0.0
        for kind in KINDS:
            probability = getattr(self.plan, kind)
            if not probability or not _applies(kind, operation):
                continue
            threshold += probability
            if roll < threshold:
                return kind
        return None

    def _record(self, kind: str, operation: str) -> None:
        with self._lock:
            self.counts[kind] += 1
            if self._log_path is not None:
                with self._log_path.open("a", encoding="utf-8") as log:
                    log.write(f"{os.getpid()} {kind} {operation}\n")


def install_from_env(environ: dict[str, str] | None = None) -> FaultInjector | None:
    """Install the injector described by TICKETLINE_FAULTS, if set (the dev server calls this in each worker)."""
    env = os.environ if environ is None else environ
    spec = env.get(FAULTS_ENV, "").strip()
    if not spec:
        return None
    return FaultInjector(FaultPlan.parse(spec), log_path=env.get(FAULTS_LOG_ENV) or None).install()


def read_fault_log(path: str | Path) -> Counter[str]:
    """Faults injected by every process that wrote to the log (lines "pid kind operation"), by kind."""
    log = Path(path)
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return Counter(parts[1] for parts in map(str.split, lines) if len(parts) == 3)


def _applies(kind: str, operation: str) -> bool:
    if kind == "conflict":
        return operation == "TransactWriteItems"
    if kind == "timeout_after_commit":
        return operation in WRITE_OPERATIONS
    return True


def _response(request: Any, status: int, payload: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders
    from urllib3 import HTTPResponse

    headers = HTTPHeaders.from_dict(
        {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault"}
    )
    body = HTTPResponse(BytesIO(json.dumps(payload).encode()), preload_content=False)  # what botocore reads
    return AWSResponse(request.url, status, headers, body)


def _error_response(request: Any, status: int, code: str, message: str) -> Any:
    return _response(request, status, {"__type": _TYPE_PREFIX + code, "message": message})


def _conflict_response(request: Any, which: int) -> Any:
    items = len(json.loads(request.body)["TransactItems"])  # botocore sent at least one (its validation)
    # As DynamoDB words it: one reason per item, the conflicting one named, the others "None".
    reasons: list[dict[str, str]] = [{"Code": "None"} for _ in range(items)]
    reasons[which % items] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    codes = ", ".join(reason["Code"] for reason in reasons)
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
    return _response(
        request,
        400,
        {"__type": _TYPE_PREFIX + "TransactionCanceledException", "Message": message, "CancellationReasons": reasons},
    )


@functools.cache  # one connection pool per process, made on first use
def _http_session() -> Any:
    from botocore.httpsession import URLLib3Session

    return URLLib3Session(max_pool_connections=8)


def _send_to_loopback(request: Any, _event_name: str) -> None:
    """Send the prepared (signed) request as botocore would have, and drop the answer."""
    host = urlsplit(request.url).hostname or ""
    if host not in _LOOPBACK_HOSTS and not host.startswith("127."):
        raise RuntimeError(f"fault injection only re-sends to a loopback DynamoDB, not {host!r}")
    _http_session().send(request)
