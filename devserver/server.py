"""The local server: gunicorn's pre-forked workers serve the gateway as a WSGI application; its arbiter also keeps
the scheduler and the stream and queue pollers running, each in a process of its own; DynamoDB Local (and moto's
SQS server, for the template's queues) run around them all.

Why processes: a Powertools resolver keeps the current event on a class attribute, so one process runs one
invocation at a time (lambda_host.py); concurrent requests need several processes. gunicorn's sync workers take
a connection only when idle, as Lambda gives an environment one request at a time, so a slow call never queues
others behind it while another worker waits (and a connection serves one request). Everything forks before any
handler (or its boto3 clients) is loaded; the throttle's buckets are made before the fork, so workers share them.
"""

import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from http.client import responses
from pathlib import Path
from typing import Any

import boto3
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import errors as http_errors

# gunicorn 27's; types-gunicorn 26.2 (the newest stubs) lacks them: warn_unused_ignores tells when it has them.
from gunicorn.http.errors import InvalidResponseHeader, InvalidResponseHeaderName  # type: ignore[attr-defined]
from gunicorn.util import write_nonblock
from gunicorn.workers.sync import SyncWorker

from devserver import DEFAULT_TEMPLATE, PROJECT_ROOT, faults
from devserver.dynamodb_local import die_with_parent, running_engine, use_local_credentials
from devserver.gateway import MAX_BODY_BYTES, Gateway
from devserver.lambda_host import LambdaHost
from devserver.proxy import HttpRequest, HttpResponse, error_response
from devserver.queues import QueuePoller, running_queues
from devserver.schedules import ScheduleRunner, timer_rates
from devserver.streams import StreamPoller
from devserver.template import ScheduleEvent, Template, create_tables, load_template
from devserver.throttling import ANY_METHODS, Throttle

logger = logging.getLogger("devserver")

LISTENING_BANNER = "Ticketline local API on"
DYNAMODB_LOCAL_DIR = PROJECT_ROOT / ".local" / "dynamodb-local"
_STOP_GRACE_SECONDS = 5.0
# API Gateway's methods, plus the two http.server answered before: anything else is 501.
_KNOWN_METHODS = frozenset({*ANY_METHODS, "TRACE", "CONNECT"})
Runner = Callable[[threading.Event], None]  # runs until the event is set


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 4
    template_path: Path = DEFAULT_TEMPLATE
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    schedule_rates: Mapping[str, float] = field(default_factory=dict)  # event name -> seconds
    scheduler: bool = True
    dynamodb_endpoint: str | None = None


def serve(options: ServerOptions) -> None:
    """Runs the server until Ctrl-C or SIGTERM; returns after the workers and the engine have stopped."""
    _configure_output()
    use_local_credentials()
    fault_plan = faults.FaultPlan.parse(os.environ.get(faults.FAULTS_ENV, ""))  # a bad spec fails here, not per worker
    template = load_template(options.template_path, options.parameter_overrides)
    rates = timer_rates(template, options.schedule_rates) if options.scheduler else []
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the local API has no real authentication, keep it off networks", options.host)
    with (
        running_engine(DYNAMODB_LOCAL_DIR, options.dynamodb_endpoint) as engine,
        running_queues(template) as sqs_endpoint,
        tempfile.TemporaryDirectory(prefix="ticketline-devserver-") as lock_dir,
    ):
        # A short-lived client, closed before the fork: no connection of it may be shared with a worker.
        with contextlib.closing(boto3.client("dynamodb", endpoint_url=engine.endpoint_url)) as client:
            create_tables(client, template)
        context = _ServerContext(template, engine.endpoint_url, Path(lock_dir), Throttle(template), sqs_endpoint)
        banner = _banner_lines(
            engine.description, template, options.workers, rates, fault_plan, sqs_endpoint=sqs_endpoint
        )
        runners: dict[str, Callable[[LambdaHost], Runner]] = {}
        if rates:
            runners["scheduler"] = lambda host: partial(
                ScheduleRunner(template, host, context.lock_dir).run_on_timer, rates
            )
        if template.streams:
            runners["stream poller"] = lambda host: StreamPoller(template, host, engine.endpoint_url).run
        if template.queue_events:
            runners["queue poller"] = lambda host: QueuePoller(template, host, sqs_endpoint).run
        sidecars = [_Sidecar(name, context, runner) for name, runner in runners.items()]
        with contextlib.suppress(SystemExit):  # gunicorn's arbiter ends with sys.exit(0)
            _LocalServer(options, context, banner, sidecars).run()
    logger.info("stopped")


def _configure_output() -> None:
    # Handlers print their (Powertools) log lines to stdout: line by line, even into a pipe or file.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _banner_lines(
    engine: str,
    template: Template,
    workers: int,
    rates: list[tuple[ScheduleEvent, float]],
    fault_plan: faults.FaultPlan,
    *,
    sqs_endpoint: str,
) -> list[str]:
    scheduled = ", ".join(f"{schedule.name} every {rate:g} s" for schedule, rate in rates)
    streams = ", ".join(f"{stream.table_id} -> {stream.function_id}" for stream in template.streams)
    queues = ", ".join(queue.name for queue in template.queues)
    queue_events = ", ".join(f"{event.queue_id} -> {event.function_id}" for event in template.queue_events)
    lines = [
        f"DynamoDB: {engine} (tables: {', '.join(template.table_names.values())})",
        f"Workers: {workers}",
        f"Scheduler: {scheduled or 'off (run on demand)'}",
        f"Streams: {streams or 'none in the template'}",
        f"SQS: moto server at {sqs_endpoint} (queues: {queues})" if sqs_endpoint else "SQS: no queues in the template",
        f"Queue events: {queue_events or 'none in the template'}",
        f"Injected DynamoDB faults: {fault_plan}",
        "Routes:",
    ]
    for route in template.routes:
        access = "user JWT" if route.authorizer else "public"
        lines.append(f"  {route.method:7} {route.path}  -> {route.function_id} ({access})")
    lines.append("  GET     /_local/info")
    lines.append("  POST    /_local/token  (a dev JWT for the demo page)")
    lines.extend(f"  POST    /_local/schedules/{schedule.name}" for schedule in template.schedules)
    return lines


@dataclass(frozen=True)
class _ServerContext:
    """What every process of the server is built from (made in the arbiter, before any fork)."""

    template: Template
    dynamodb_endpoint: str
    lock_dir: Path
    throttle: Throttle
    sqs_endpoint: str = ""

    def host(self) -> LambdaHost:
        return LambdaHost(self.dynamodb_endpoint, self.template.environment_names, self.sqs_endpoint)

    def gateway(self) -> Gateway:
        host = self.host()
        runner = ScheduleRunner(self.template, host, self.lock_dir)
        return Gateway(
            self.template, host, runner, self.dynamodb_endpoint, self.throttle, sqs_endpoint=self.sqs_endpoint
        )


def _child_started() -> None:
    """In every process the arbiter forks."""
    die_with_parent()  # an arbiter killed without stopping us (SIGKILL): stop too
    faults.install_from_env()  # before any boto3 client exists: clients copy the session's hooks


class _Sidecar:
    """A process next to gunicorn's workers (the scheduler, the pollers), forked and restarted by the arbiter: it runs
    what `make_runner` makes of a Lambda host of its own until stopped, then lets the last invocation finish."""

    def __init__(self, name: str, context: _ServerContext, make_runner: Callable[[LambdaHost], Runner]) -> None:
        self.name = name
        self._context = context
        self._make_runner = make_runner
        self.pid = 0

    def start(self, listeners: Iterable[Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            self._child(listeners)

    def exited(self) -> bool:
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] == self.pid
        except ChildProcessError:  # the arbiter reaps every child it does not know
            return True

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        while not self.exited():
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            time.sleep(0.02)

    def _child(self, listeners: Iterable[Any]) -> None:
        status = 0
        try:
            for listener in listeners:  # this process serves no HTTP
                listener.close()
            stop = threading.Event()
            for signum in (*Arbiter.SIGNALS, signal.SIGCHLD):  # the arbiter's handlers are not ours
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
            # Ctrl-C reaches the whole process group: the arbiter decides, and sends SIGTERM.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _child_started()
            host = self._context.host()
            self._make_runner(host)(stop)
            host.wait_until_idle(_STOP_GRACE_SECONDS)
        except BaseException:
            logger.exception("%s (process %d) failed", self.name, os.getpid())
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)  # never return into the arbiter's stack


class _LocalArbiter(Arbiter):
    """gunicorn's arbiter, also keeping the application's sidecars running."""

    app: "_LocalServer"  # made only by _LocalServer.run()

    def spawn_worker(self) -> int:
        arbiter = os.getpid()
        try:
            return int(super().spawn_worker())
        except SystemExit as ending:
            if os.getpid() == arbiter:
                raise
            # A worker ends with sys.exit: unwound into serve(), it would run serve()'s own cleanup under the workers
            # still serving (seen: the schedules' lock folder deleted, so every schedule run failed).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ending.code if isinstance(ending.code, int) else 1)

    def manage_workers(self) -> None:
        super().manage_workers()
        for sidecar in self.app.sidecars:
            if sidecar.pid == 0 or sidecar.exited():
                if sidecar.pid:
                    logger.error("the %s (process %d) exited; starting another", sidecar.name, sidecar.pid)
                sidecar.start(self.LISTENERS)


class _LocalServer(BaseApplication):
    def __init__(
        self, options: ServerOptions, context: _ServerContext, banner: list[str], sidecars: list[_Sidecar]
    ) -> None:
        self._options = options
        self._context = context
        self._banner = banner
        self.sidecars = sidecars
        super().__init__()

    def load_config(self) -> None:
        bind = f"[{self._options.host}]" if ":" in self._options.host else self._options.host
        settings = {
            "bind": [f"{bind}:{self._options.port}"],
            "workers": self._options.workers,
            "worker_class": f"{__name__}._LocalWorker",
            "timeout": 300,  # a worker silent this long is stuck: past any route's 29 s and a long schedule run
            "graceful_timeout": int(_STOP_GRACE_SECONDS),
            "backlog": 512,
            "control_socket_disable": True,  # its thread in the arbiter would be forked into every worker
            "post_fork": lambda arbiter, worker: _child_started(),
            "when_ready": self._when_ready,
            "on_exit": self._on_exit,
        }
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> Callable[..., Iterable[bytes]]:  # in each worker, after the fork
        return _WsgiGateway(self._context.gateway())

    def run(self) -> None:
        _LocalArbiter(self).run()

    def _on_exit(self, arbiter: Arbiter) -> None:
        for sidecar in self.sidecars:
            sidecar.stop()

    def _when_ready(self, arbiter: Arbiter) -> None:
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        lines = [
            f"{LISTENING_BANNER} {url}",
            *self._banner,
            f"Demo client: {url}/   API docs: {url}/docs (/openapi.json)",
        ]
        print("\n".join(lines), flush=True)


class _WsgiGateway:
    """The gateway behind a WSGI interface, with the HTTP rules API Gateway applies before it."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.monotonic()
        response = self._response(environ)
        reason = responses.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", [*response.headers, ("Content-Length", str(len(response.body)))])
        logger.info(
            "%s %s %d %.1f ms",
            environ["REQUEST_METHOD"],
            environ["RAW_URI"],
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return [response.body]

    def _response(self, environ: dict[str, Any]) -> HttpResponse:
        if environ["REQUEST_METHOD"] not in _KNOWN_METHODS:
            return error_response(501, "METHOD_NOT_ALLOWED", f"Unsupported method {environ['REQUEST_METHOD']!r}.")
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return error_response(411, "LENGTH_REQUIRED", "Send the body with a Content-Length, not chunked.")
        length = int(environ.get("CONTENT_LENGTH") or 0)  # gunicorn refuses one that is not a number
        if length > MAX_BODY_BYTES:
            return self._gateway.body_too_large()
        path, _, query = environ["RAW_URI"].partition("?")
        headers = [
            (name.removeprefix("HTTP_").replace("_", "-").title(), value)
            for name, value in environ.items()
            if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH")
        ]
        request = HttpRequest(
            method=environ["REQUEST_METHOD"],
            path=path,
            query=query,
            headers=headers,
            body=environ["wsgi.input"].read(length) if length > 0 else b"",
            source_ip=environ["REMOTE_ADDR"],
            server_port=int(environ["SERVER_PORT"]),
        )
        return self._gateway.handle(request)


# gunicorn's own refusals (a malformed request line, headers too large...) in the API's error shape.
_REFUSALS: list[tuple[type[Exception], int, str]] = [
    (http_errors.LimitRequestHeaders, 431, "HEADERS_TOO_LARGE"),
    (http_errors.LimitRequestLine, 414, "URI_TOO_LONG"),
    (http_errors.UnsupportedTransferCoding, 411, "LENGTH_REQUIRED"),
    (http_errors.ParseException, 400, "VALIDATION_ERROR"),
]

_APPLICATION_FAULTS = (InvalidResponseHeader, InvalidResponseHeaderName)


def _header_details(exc: BaseException) -> list[dict[str, str]]:
    """A refused header named as clients write it (gunicorn upper-cases it), like a refusal of the handler's."""
    if isinstance(exc, (http_errors.InvalidHeader, http_errors.InvalidHeaderName)):
        name = "-".join(part.capitalize() for part in str(exc.hdr).split("-"))
        return [{"field": name, "message": "has characters an HTTP header may not carry"}]
    return []


class _LocalWorker(SyncWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        refusal = next(((status, code) for kind, status, code in _REFUSALS if isinstance(exc, kind)), None)
        if refusal is None or isinstance(exc, _APPLICATION_FAULTS):  # gunicorn's 500
            super().handle_error(req, client, addr, exc)
            return
        logger.info("refused a request from %s: %s", (addr or ("?",))[0], exc)
        response = error_response(*refusal, str(exc) or "Bad request.", _header_details(exc))
        head = [f"HTTP/1.1 {response.status} {responses[response.status]}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in response.headers]
        head.append(f"Content-Length: {len(response.body)}")
        with contextlib.suppress(OSError):
            write_nonblock(client, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
