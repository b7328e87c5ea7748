"""The local server's processes: a parent that owns the DynamoDB engine and the listening socket,
pre-forked HTTP workers that accept on that socket, and one scheduler process.

Why processes: a Powertools resolver keeps the current event on a class attribute, so one process
runs one invocation at a time (lambda_host.py); concurrent requests need several processes.
The parent forks before any thread exists and before any handler (or its boto3 clients) is loaded.
"""

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NoReturn

import boto3

from devserver import DEFAULT_TEMPLATE, PROJECT_ROOT, faults
from devserver.dynamodb_local import running_engine, use_local_credentials
from devserver.gateway import MAX_BODY_BYTES, Gateway
from devserver.lambda_host import LambdaHost
from devserver.proxy import HttpRequest, HttpResponse, error_response
from devserver.schedules import ScheduleRunner, timer_rates
from devserver.streams import StreamPoller
from devserver.template import ScheduleEvent, Template, create_tables, load_template
from devserver.throttling import Throttle

logger = logging.getLogger("devserver")

LISTENING_BANNER = "Ticketline local API on"
DYNAMODB_LOCAL_DIR = PROJECT_ROOT / ".local" / "dynamodb-local"
_STOP_GRACE_SECONDS = 5.0
_RESPAWN_DELAY_SECONDS = 0.5  # keeps a worker that dies at once from spinning the parent


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


class _StopRequested(Exception):
    """SIGTERM in the parent: unwinds it through the same clean-up as Ctrl-C."""


def serve(options: ServerOptions) -> None:
    """Runs the server until Ctrl-C or SIGTERM; returns after the workers and the engine have stopped."""
    signal.signal(signal.SIGTERM, _raise_stop_requested)
    _configure_output()
    try:
        _serve(options)
    except (_StopRequested, KeyboardInterrupt):
        logger.info("stopped")


def _serve(options: ServerOptions) -> None:
    use_local_credentials()
    fault_plan = faults.FaultPlan.parse(os.environ.get(faults.FAULTS_ENV, ""))  # a bad spec fails here, not per worker
    template = load_template(options.template_path, options.parameter_overrides)
    rates = timer_rates(template, options.schedule_rates) if options.scheduler else []
    if options.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("listening on %s: the local API has no real authentication, keep it off networks", options.host)
    with (
        _listen(options.host, options.port) as listener,
        running_engine(DYNAMODB_LOCAL_DIR, options.dynamodb_endpoint) as engine,
        tempfile.TemporaryDirectory(prefix="ticketline-devserver-") as lock_dir,
    ):
        _create_tables(engine.endpoint_url, template)
        processes = _Processes(template, listener, engine.endpoint_url, Path(lock_dir))
        try:
            for _ in range(options.workers):
                processes.spawn_worker()
            if rates:
                processes.spawn_scheduler(rates)
            if template.streams:
                processes.spawn_stream_poller()
            _print_banner(
                listener,
                engine=engine.description,
                template=template,
                workers=options.workers,
                rates=rates,
                fault_plan=fault_plan,
            )
            processes.supervise()
        finally:
            processes.stop()


def _raise_stop_requested(signum: int, frame: object) -> None:
    raise _StopRequested


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


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.create_server((host, port), family=_address_family(host), backlog=512)
    # Every worker waits on this socket; the one that loses the race for a connection must not block.
    listener.setblocking(False)
    return listener


def _address_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _create_tables(endpoint_url: str, template: Template) -> None:
    # A short-lived client, closed before the fork: no connection of it may be shared with a worker.
    client = boto3.client("dynamodb", endpoint_url=endpoint_url)
    try:
        create_tables(client, template)
    finally:
        client.close()


def _print_banner(
    listener: socket.socket,
    *,
    engine: str,
    template: Template,
    workers: int,
    rates: list[tuple[ScheduleEvent, float]],
    fault_plan: faults.FaultPlan,
) -> None:
    host, port = listener.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    lines = [
        f"{LISTENING_BANNER} http://{url_host}:{port}",
        f"DynamoDB: {engine} (tables: {', '.join(template.table_names.values())})",
        f"Workers: {workers}",
        "Scheduler: "
        + (", ".join(f"{schedule.name} every {rate:g} s" for schedule, rate in rates) or "off (run on demand)"),
        "Streams: "
        + (
            ", ".join(f"{stream.table_id} -> {stream.function_id}" for stream in template.streams)
            or "none in the template"
        ),
        f"Injected DynamoDB faults: {fault_plan}",
        "Routes:",
    ]
    for route in template.routes:
        access = "user JWT" if route.authorizer else "public"
        lines.append(f"  {route.method:7} {route.path}  -> {route.function_id} ({access})")
    lines.append("  GET     /_local/info")
    lines.append("  POST    /_local/token  (a dev JWT for the demo page)")
    lines.extend(f"  POST    /_local/schedules/{schedule.name}" for schedule in template.schedules)
    lines.append(f"Demo client: http://{url_host}:{port}/   API docs: http://{url_host}:{port}/docs (/openapi.json)")
    print("\n".join(lines), flush=True)


class _Processes:
    """Forks, supervises (restarting a child that dies) and stops the worker, scheduler and stream processes."""

    def __init__(self, template: Template, listener: socket.socket, dynamodb_endpoint: str, lock_dir: Path) -> None:
        self._template = template
        self._listener = listener
        self._dynamodb_endpoint = dynamodb_endpoint
        self._lock_dir = lock_dir
        self._parent_pid = os.getpid()
        self._children: dict[int, Callable[[], None]] = {}
        self._throttle = Throttle(template)  # before the fork: every worker draws from the same buckets

    def spawn_worker(self) -> None:
        self._spawn(self.spawn_worker, self._run_worker)

    def spawn_scheduler(self, rates: list[tuple[ScheduleEvent, float]]) -> None:
        self._spawn(lambda: self.spawn_scheduler(rates), lambda stop: self._run_scheduler(rates, stop))

    def spawn_stream_poller(self) -> None:
        self._spawn(self.spawn_stream_poller, self._run_stream_poller)

    def supervise(self) -> None:
        while True:
            pid, status = os.wait()
            respawn = self._children.pop(pid, None)
            if respawn is None:  # the only other child: the DynamoDB engine
                logger.error("the DynamoDB engine exited (%s): stopping", _exit_description(status))
                return
            logger.error("process %d exited (%s); starting another", pid, _exit_description(status))
            time.sleep(_RESPAWN_DELAY_SECONDS)
            respawn()

    def stop(self) -> None:
        # Nothing may interrupt the clean-up: a second Ctrl-C would orphan the children.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pid in self._children:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        while self._children and time.monotonic() < deadline:
            for pid in list(self._children):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    del self._children[pid]
            time.sleep(0.02)
        for pid in self._children:
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._children.clear()

    def _spawn(self, respawn: Callable[[], None], run: Callable[[threading.Event], None]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(run)
        self._children[pid] = respawn

    def _child(self, run: Callable[[threading.Event], None]) -> NoReturn:
        status = 0
        try:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
            # Ctrl-C reaches the whole process group: the parent decides, and sends SIGTERM.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            faults.install_from_env()  # before any boto3 client exists: clients copy the session's hooks
            run(stop)
        except BaseException:
            logger.exception("process %d failed", os.getpid())
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # Never return into the parent's stack (its finally blocks would stop the engine).
            os._exit(status)

    def _wait_for_stop(self, stop: threading.Event) -> None:
        # getppid() changes when the parent dies without stopping us (e.g. SIGKILL): stop too.
        while not stop.wait(1.0):
            if os.getppid() != self._parent_pid:
                return

    def _run_worker(self, stop: threading.Event) -> None:
        host = LambdaHost(self._dynamodb_endpoint, self._template.environment_names)
        runner = ScheduleRunner(self._template, host, self._lock_dir)
        gateway = Gateway(self._template, host, runner, self._dynamodb_endpoint, self._throttle)
        http_server = _WorkerHttpServer(self._listener, gateway)
        threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        self._wait_for_stop(stop)
        http_server.shutdown()
        host.wait_until_idle(_STOP_GRACE_SECONDS)

    def _run_scheduler(self, rates: list[tuple[ScheduleEvent, float]], stop: threading.Event) -> None:
        self._listener.close()  # this process serves no HTTP
        host = LambdaHost(self._dynamodb_endpoint, self._template.environment_names)
        runner = ScheduleRunner(self._template, host, self._lock_dir)
        threading.Thread(target=runner.run_on_timer, args=(rates, stop), daemon=True).start()
        self._wait_for_stop(stop)
        stop.set()
        host.wait_until_idle(_STOP_GRACE_SECONDS)

    def _run_stream_poller(self, stop: threading.Event) -> None:
        self._listener.close()  # this process serves no HTTP
        host = LambdaHost(self._dynamodb_endpoint, self._template.environment_names)
        poller = StreamPoller(self._template, host, self._dynamodb_endpoint)
        threading.Thread(target=poller.run, args=(stop,), daemon=True).start()
        self._wait_for_stop(stop)
        stop.set()
        host.wait_until_idle(_STOP_GRACE_SECONDS)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _exit_description(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.waitstatus_to_exitcode(status)}"


class _WorkerHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listener: socket.socket, gateway: Gateway) -> None:
        super().__init__(listener.getsockname()[:2], _RequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener  # bound by the parent, shared by every worker
        self.server_port = listener.getsockname()[1]
        self.gateway = gateway


_HTTP_ERROR_CODES = {
    400: "VALIDATION_ERROR",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    414: "URI_TOO_LONG",
    431: "HEADERS_TOO_LARGE",
    501: "METHOD_NOT_ALLOWED",
    505: "HTTP_VERSION_NOT_SUPPORTED",
}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients expect of API Gateway
    timeout = 60  # an idle keep-alive connection holds a thread, not the worker
    server: _WorkerHttpServer

    def do_GET(self) -> None:
        self._serve()

    # http.server dispatches on do_<METHOD>; API Gateway routes every method the same way.
    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = do_GET  # noqa: N815

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too large, a method it has no
        do_<METHOD> for) in the API's error shape, never its HTML page."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # a line it could not parse leaves HTTP/0.9: no status line at all
        self._send(error_response(code, _HTTP_ERROR_CODES.get(code, "BAD_REQUEST"), message or "Bad request."))

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def _serve(self) -> None:
        started = time.monotonic()
        response = self._response()
        self._send(response)
        logger.info("%s %s %d %.1f ms", self.command, self.path, response.status, (time.monotonic() - started) * 1000)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _response(self) -> HttpResponse:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return error_response(411, "LENGTH_REQUIRED", "Send the body with a Content-Length, not chunked.")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return error_response(400, "VALIDATION_ERROR", "Content-Length is not a number.")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return self.server.gateway.body_too_large()
        path, _, query = self.path.partition("?")
        request = HttpRequest(
            method=self.command,
            path=path,
            query=query,
            headers=list(self.headers.items()),
            body=self.rfile.read(length) if length > 0 else b"",
            source_ip=self.client_address[0],
            server_port=self.server.server_port,
        )
        return self.server.gateway.handle(request)
