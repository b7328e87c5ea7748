"""`python -m devserver` end to end, on Ticketline's own template and DynamoDB Local."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from devserver.testing import RunningServer, running_server

TIMEOUT = 30


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with running_server(workers=3) as running:
        yield running


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    table = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    for row in table.splitlines():
        child, parent = (int(field) for field in row.split())
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        still.add(pid)
    return still


def error_code(response: requests.Response) -> str:
    return str(response.json()["error"]["code"])


def test_health(server: RunningServer) -> None:
    response = requests.get(f"{server.url}/health", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_user_routes_need_a_jwt(server: RunningServer) -> None:
    url = f"{server.url}/concerts/no-such-concert/queue/tokens"

    refused = requests.post(url, timeout=TIMEOUT)
    expired = requests.post(
        url, headers={"Authorization": f"Bearer {server.token('a', ttl_seconds=-1)}"}, timeout=TIMEOUT
    )
    accepted = requests.post(url, headers={"Authorization": f"Bearer {server.token('alice')}"}, timeout=TIMEOUT)

    assert (refused.status_code, error_code(refused)) == (401, "UNAUTHENTICATED")
    assert (expired.status_code, error_code(expired)) == (401, "UNAUTHENTICATED")
    assert accepted.status_code != 401  # reached the handler (which knows no such concert)


def test_gateway_refusals(server: RunningServer) -> None:
    missing = requests.get(f"{server.url}/no/such/path", timeout=TIMEOUT)
    wrong_method = requests.delete(f"{server.url}/health", timeout=TIMEOUT)
    too_large = requests.post(f"{server.url}/reservations", data=b"x" * (10 * 1024 * 1024 + 1), timeout=TIMEOUT)

    assert (missing.status_code, error_code(missing)) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, error_code(wrong_method)) == (404, "NOT_FOUND")
    # API Gateway's 10 MB limit: the template's REQUEST_TOO_LARGE, readable cross-origin
    assert (too_large.status_code, error_code(too_large)) == (413, "PAYLOAD_TOO_LARGE")
    assert too_large.headers["Access-Control-Allow-Origin"] == "*"


def test_polls_are_throttled_across_workers_as_the_template_says_and_holds_are_not() -> None:
    """QueuePoll* overridden to a burst of 3 and 1 per second: the four workers share one bucket."""
    overrides = {"QueuePollRateLimit": "1", "QueuePollBurstLimit": "3"}
    with running_server(overrides, workers=4) as running:
        headers = {"Authorization": f"Bearer {running.token('alice')}"}
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            polls = list(
                pool.map(
                    lambda _: requests.get(f"{running.url}/concerts/c1/queue/position", headers=headers, timeout=30),
                    range(8),
                )
            )
        refilled = math.ceil(time.monotonic() - started)  # 1 token a second while they ran
        holds = [requests.post(f"{running.url}/reservations", headers=headers, timeout=30) for _ in range(5)]

    throttled = [poll for poll in polls if poll.status_code == 429]
    assert max(1, 5 - refilled) <= len(throttled) <= 5  # 8 polls, 3 tokens and what refilled while they ran
    assert throttled[0].headers["Retry-After"] == "1"
    assert throttled[0].headers["Access-Control-Allow-Origin"] == "*"
    assert error_code(throttled[0]) == "THROTTLED"
    assert 429 not in {hold.status_code for hold in holds}  # the hold's own bucket (the stage default)


def test_cors_preflight_follows_the_template(server: RunningServer) -> None:
    response = requests.options(f"{server.url}/reservations", timeout=TIMEOUT)

    assert response.status_code == 200  # the template sets AddDefaultAuthorizerToCorsPreflight: false
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Queue-Token" in response.headers["Access-Control-Allow-Headers"]


def test_local_info_points_at_the_engine(server: RunningServer) -> None:
    info = requests.get(f"{server.url}/_local/info", timeout=TIMEOUT).json()
    client = boto3.client(
        "dynamodb",
        endpoint_url=info["dynamodbEndpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )

    assert set(info["tables"].values()) <= set(client.list_tables()["TableNames"])
    assert server.table_name("TicketlineTable") == info["tables"]["TicketlineTable"]
    assert info["parameters"]["StageName"] == "v1"


def test_each_function_keeps_its_own_settings_in_a_shared_worker(server: RunningServer) -> None:
    """The health check's variables hold no DynamoDB endpoint; the scheduler run after it in the same workers still
    reaches DynamoDB Local: the layer's cached settings are per function, as per Lambda container."""
    for _ in range(9):
        assert requests.get(f"{server.url}/health", timeout=TIMEOUT).status_code == 200
    for _ in range(3):
        assert isinstance(server.run_schedule("Expire"), dict)


def test_schedule_on_demand(server: RunningServer) -> None:
    assert isinstance(server.run_schedule("Expire"), dict)
    assert requests.post(f"{server.url}/_local/schedules/Nope", timeout=TIMEOUT).status_code == 404


def test_requests_run_in_parallel_workers(server: RunningServer) -> None:
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(
            pool.map(lambda _: requests.get(f"{server.url}/health", timeout=TIMEOUT).status_code, range(60))
        )
    with requests.Session() as session:  # keep-alive connections work too
        statuses += [session.get(f"{server.url}/health", timeout=TIMEOUT).status_code for _ in range(5)]

    assert set(statuses) == {200}
    serving_pids = set(re.findall(r"\[(\d+)\] INFO GET /health 200", server.log()))
    assert len(serving_pids) > 1


def test_starts_and_stops_everything() -> None:
    with running_server(workers=2, scheduler=True) as running:
        # 2 workers, the scheduler, the stream and queue pollers, the engine, moto's SQS; gunicorn prints the banner
        # before it forks the workers, so they may still be coming.
        deadline = time.monotonic() + 10
        while len(processes := descendants(running.pid)) < 7 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(processes) >= 7
        assert requests.get(f"{running.url}/health", timeout=TIMEOUT).status_code == 200

    assert alive(processes | {running.pid}) == set()


def test_children_do_not_outlive_a_killed_server() -> None:
    with running_server(workers=2) as running:
        processes = descendants(running.pid)
        os.kill(running.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(processes) and time.monotonic() < deadline:
            time.sleep(0.1)

        assert alive(processes) == set()


def test_a_worker_gunicorn_restarts_leaves_the_engine_and_the_schedules_to_the_others() -> None:
    """A worker ends (gunicorn's timeout, a SIGTERM to it) and the arbiter starts another: the ending worker must
    not unwind into the server's own cleanup, which stopped the engine and deleted the schedules' lock folder."""
    with running_server(workers=2) as running:
        for _ in range(20):
            requests.get(f"{running.url}/health", timeout=TIMEOUT)
        worker = int(re.findall(r"\[(\d+)\] INFO GET /health 200", running.log())[-1])
        os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while alive({worker}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive({worker}) == set()
        time.sleep(2)  # what the ending worker would have stopped has had time to stop

        statuses = [requests.get(f"{running.url}/concerts", timeout=TIMEOUT).status_code for _ in range(10)]
        assert statuses == [200] * 10
        assert "admitted" in json.dumps(running.run_schedule("Admit"))
        assert "stopped" not in running.log()


def test_a_caller_killed_by_sigterm_takes_its_server_with_it() -> None:
    """`python -m benchmarks.sale` stopped by SIGTERM (no Python cleanup runs) once left its server serving."""
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from devserver.testing import running_server\n"
            "with running_server(workers=1) as running:\n"
            "    print(running.pid, flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert caller.stdout is not None
    server_pid = int(caller.stdout.readline())
    processes = descendants(server_pid) | {server_pid}
    caller.terminate()
    caller.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + 20
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert alive(processes) == set()


def test_bad_parameter_override_fails_fast() -> None:
    with pytest.raises(RuntimeError, match="NoSuchParameter"), running_server({"NoSuchParameter": "1"}):
        pass


def raw_http(server: RunningServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request written by hand on a socket, for what `requests` refuses to send."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"TRACE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "NOT_FOUND"),
        (b"BREW /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 501, "METHOD_NOT_ALLOWED"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "HEADERS_TOO_LARGE"),
        (b"GET /health\x00 HTTP/9.9 more\r\n\r\n", 400, "VALIDATION_ERROR"),
    ],
    ids=["trace", "unknown-method", "oversized-header", "malformed-request-line"],
)
def test_every_refusal_of_the_http_layer_is_in_the_error_shape(
    server: RunningServer, request_bytes: bytes, status: int, code: str
) -> None:
    answered, headers, body = raw_http(server, request_bytes)

    assert answered == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code


def test_the_token_minter_serves_only_its_own_pages(server: RunningServer) -> None:
    mint = f"{server.url}/_local/token"
    own_origin = server.url.removesuffix("/")

    foreign = requests.post(mint, json={"user": "eve", "admin": True}, headers={"Origin": "https://evil.example"})
    own = requests.post(mint, json={"user": "ops", "admin": True}, headers={"Origin": own_origin}, timeout=TIMEOUT)
    tool = requests.post(mint, json={"user": "ops"}, timeout=TIMEOUT)

    assert foreign.status_code == 403 and error_code(foreign) == "FORBIDDEN"
    assert "token" not in foreign.json()
    assert not any(name.lower().startswith("access-control-") for name in foreign.headers)
    assert own.status_code == 200 and own.json()["admin"] is True
    assert tool.status_code == 200


def test_a_browser_on_another_origin_can_read_every_refusal(server: RunningServer) -> None:
    other_origin = {"Origin": "https://tickets.example.com"}
    no_jwt = requests.get(f"{server.url}/wallet", headers=other_origin, timeout=TIMEOUT)
    bad_queue_token = requests.get(
        f"{server.url}/concerts/c1/queue/position",
        headers={**other_origin, "Authorization": f"Bearer {server.token('alice')}"},
        timeout=TIMEOUT,
    )
    unknown = requests.get(f"{server.url}/no/such/path", headers=other_origin, timeout=TIMEOUT)

    for refusal in (no_jwt, bad_queue_token, unknown):
        assert refusal.status_code >= 400 and refusal.json()["error"]["code"]
        assert refusal.headers["Access-Control-Allow-Origin"] in ("*", "https://tickets.example.com")
        assert "Retry-After" in refusal.headers["Access-Control-Expose-Headers"]
