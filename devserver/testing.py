"""Starts `python -m devserver` for tests and benchmarks, and stops it (with its engine) afterwards.

with running_server(parameter_overrides={"SeatHoldTtlSeconds": "2"}, workers=4) as server:
    requests.get(f"{server.url}/health")
    server.run_schedule("Expire")
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from devserver import PROJECT_ROOT
from devserver.auth import mint_token
from devserver.dynamodb_local import die_with_parent, stop_process
from devserver.server import LISTENING_BANNER

_LISTENING_URL = re.compile(re.escape(LISTENING_BANNER) + r" (http://\S+)")
_STOP_TIMEOUT_SECONDS = 15.0


class ServerStartError(RuntimeError):
    """The server exited or did not listen in time; the message carries its log."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    dynamodb_endpoint: str
    tables: Mapping[str, str]  # logical id -> table name
    parameters: Mapping[str, str]
    log_path: Path  # the server's stdout and stderr (handlers' log lines included)
    pid: int

    def table_name(self, logical_id: str) -> str:
        return self.tables[logical_id]

    def token(self, user: str, admin: bool = False, ttl_seconds: int = 3600) -> str:
        """A user JWT the server accepts (same TICKETLINE_DEV_JWT_SECRET: it inherits our environment)."""
        return mint_token(user, admin=admin, ttl_seconds=ttl_seconds)

    def run_schedule(self, name: str) -> Any:
        """Runs a schedule event (e.g. "Admit") now and returns the handler's result."""
        response = requests.post(f"{self.url}/_local/schedules/{name}", timeout=120)
        response.raise_for_status()
        return response.json()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    parameter_overrides: Mapping[str, str] | None = None,
    *,
    workers: int = 2,
    scheduler: bool = False,
    environment: Mapping[str, str] | None = None,
    start_timeout_seconds: float = 60.0,
) -> Iterator[RunningServer]:
    """A server on a free loopback port; scheduler=False leaves schedules to run_schedule()."""
    command = [sys.executable, "-m", "devserver", "--port", "0", "--workers", str(workers)]
    if parameter_overrides:
        command += ["--parameter-overrides", *(f"{key}={value}" for key, value in parameter_overrides.items())]
    if not scheduler:
        command.append("--no-scheduler")
    log_file = tempfile.NamedTemporaryFile(prefix="ticketline-devserver-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(environment or {})},
        # A caller killed without unwinding (a benchmark's SIGTERM) takes the server with it. PR_SET_PDEATHSIG
        # follows the thread that started the server: start it from a thread that outlives it (as every caller does).
        preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call: safe with threads
    )
    log_file.close()
    try:
        yield _wait_until_serving(process, log_path, start_timeout_seconds)
    finally:
        # The server stops its workers and the engine itself; killed, its children notice and exit on their own.
        stop_process(process, _STOP_TIMEOUT_SECONDS)
        log_path.unlink(missing_ok=True)


def _wait_until_serving(process: subprocess.Popen[bytes], log_path: Path, timeout_seconds: float) -> RunningServer:
    deadline = time.monotonic() + timeout_seconds
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"the server exited with status {process.returncode}:\n{log_path.read_text()}")
        if url is None:
            match = _LISTENING_URL.search(log_path.read_text(errors="replace"))
            url = match.group(1) if match else None
        if url is not None:
            try:
                info = requests.get(f"{url}/_local/info", timeout=5).json()
            except requests.RequestException:
                pass
            else:
                return RunningServer(
                    url=url,
                    dynamodb_endpoint=info["dynamodbEndpoint"],
                    tables=info["tables"],
                    parameters=info["parameters"],
                    log_path=log_path,
                    pid=process.pid,
                )
        time.sleep(0.05)
    raise ServerStartError(f"the server did not serve within {timeout_seconds:.0f} s:\n{log_path.read_text()}")
