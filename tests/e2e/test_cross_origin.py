"""The demo page served from another origin (a second loopback port) in headless Chromium: it calls the API
cross-origin, so every answer it reads, a 401 and a 429 from the gateway included, needs the CORS headers the
template configures. A missing header shows as "cannot reach the API" (status 0), never as the error's code.
Tokens come from the test: /_local/token answers the local server's own pages only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from devserver.seed import demo_concert
from devserver.testing import RunningServer, running_server
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """Polls throttled to a burst of 1 and 1 per second, so that the second quick poll is API Gateway's 429."""
    with running_server({"QueuePollRateLimit": "1", "QueuePollBurstLimit": "1"}, workers=2) as running:
        yield running


# The demo page calls the API by path on its own origin; a client deployed elsewhere calls the API's origin. This
# sends the page's calls there, before app.js runs (the page and its assets stay on the other origin).
API_ON_ANOTHER_ORIGIN = """<script>
  const apiOrigin = %s;
  const sameOriginFetch = window.fetch.bind(window);
  window.fetch = (input, init) =>
    sameOriginFetch(typeof input === "string" && input.startsWith("/") ? apiOrigin + input : input, init);
</script>
"""


@pytest.fixture(scope="module")
def other_origin(server: RunningServer) -> Iterator[str]:
    """web/ on its own loopback port: the page's origin is this server, its API calls go to `server`."""
    index = (ROOT / "web" / "index.html").read_text()
    index = index.replace("<head>", "<head>\n" + API_ON_ANOTHER_ORIGIN % json.dumps(server.url), 1)
    files = {"/": (index.encode(), "text/html; charset=utf-8")}
    for name, kind in (("http.js", "text/javascript"), ("app.js", "text/javascript"), ("style.css", "text/css")):
        files[f"/web/{name}"] = ((ROOT / "web" / name).read_bytes(), kind)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = files.get(self.path.partition("?")[0], (b"", "text/plain"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def open_page(browser: Any, origin: str, user: str, jwt: str) -> tuple[Any, Any]:
    """The page on the other origin, signed in as `user` with `jwt` (its /_local/token refuses other origins)."""
    context = browser.new_context()
    context.add_init_script(
        f"sessionStorage.setItem('ticketline.user', JSON.stringify({{user: {user!r}, jwt: {jwt!r}}}))"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{origin}/")
    assert page.evaluate("location.origin") == origin
    return context, page


def test_the_page_on_another_origin_reads_a_401(browser: Any, server: RunningServer, other_origin: str) -> None:
    from playwright.sync_api import expect

    context, page = open_page(browser, other_origin, "mallory", "not-a-jwt")
    try:
        # On load the page reads the wallet: the authorizer's 401, readable only with its CORS headers.
        expect(page.get_by_test_id("message")).to_have_attribute("data-code", "UNAUTHENTICATED", timeout=TIMEOUT_MS)
    finally:
        context.close()


def test_the_page_on_another_origin_joins_and_reads_a_429(
    browser: Any, server: RunningServer, other_origin: str
) -> None:
    from playwright.sync_api import expect

    concert = demo_concert(title="Other origin", dates=1, seats=5, capacity=10, price=1000)
    operator = {"Authorization": f"Bearer {server.token('ops', admin=True)}", "Idempotency-Key": "cross-origin-1"}
    created = requests.post(f"{server.url}/admin/concerts", json=concert, headers=operator, timeout=30)
    assert created.status_code == 201, created.text
    concert_id = created.json()["concertId"]

    context, page = open_page(browser, other_origin, "erin", server.token("erin"))
    try:
        expect(page.get_by_test_id("who")).to_have_text("signed in as erin", timeout=TIMEOUT_MS)
        page.get_by_test_id("concert-id").fill(concert_id)
        page.get_by_test_id("join").click()  # a preflighted POST with Authorization, cross-origin
        expect(page.get_by_test_id("queue-badge")).to_have_text("ACTIVE", timeout=TIMEOUT_MS)
        # Three quick polls through the page's own client: the poll's bucket holds one token.
        answers = page.evaluate(
            """async (path) => {
                const answers = [];
                for (let i = 0; i < 3; i++) {
                    try { answers.push({status: (await api("GET", path, {queueToken: state.queueToken})).status}); }
                    catch (e) { answers.push({status: e.status, code: e.code, retryAfter: e.retryAfter}); }
                }
                return answers;
            }""",
            f"/concerts/{concert_id}/queue/position",
        )
    finally:
        context.close()

    throttled = [answer for answer in answers if answer["status"] == 429]
    assert throttled, answers
    assert throttled[0]["code"] == "THROTTLED"  # the body of API Gateway's 429, read by the page
    assert throttled[0]["retryAfter"] == 1  # Retry-After, exposed to the page
