"""Local-only pages around the API: the demo client (GET / and /web/*), its operator page (GET /operator), the
OpenAPI document (GET /openapi.json), Swagger UI (GET /docs, offline: Powertools ships its assets) and a dev token
endpoint for the demo pages (POST /_local/token). None of this is in template.yaml: it never reaches AWS."""

import json
import logging
import mimetypes
import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from devserver import PROJECT_ROOT
from devserver.auth import mint_token
from devserver.proxy import HttpRequest, HttpResponse, error_response, json_response
from devserver.template import Template

logger = logging.getLogger("devserver")

WEB_DIR = PROJECT_ROOT / "web"
TOKEN_PATH = "/_local/token"
_USER_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_NO_CACHE = ("Cache-Control", "no-cache")


def _swagger_assets_dir() -> Path:
    from aws_lambda_powertools.event_handler.openapi import swagger_ui

    return Path(swagger_ui.__file__).parent


def _swagger_asset(name: str) -> HttpResponse | None:
    return _file(_swagger_assets_dir() / name)


_SWAGGER_ASSETS = {"/docs/swagger-ui.js": "swagger-ui-bundle.min.js", "/docs/swagger-ui.css": "swagger-ui.min.css"}
# Above Powertools' Swagger UI page: how to authorize on the local API.
_LOCAL_HINT = """
  <p style="font: 14px/1.4 system-ui, sans-serif; background: #fff8e1; padding: 8px 16px; margin: 0">Local API.
  <b>Authorize</b> with a token from <code>make token ARGS="--user alice"</code> (add <code>--admin</code> to create
  concerts), or use the <a href="/">demo page</a>.</p>"""

_PAGES: dict[str, Callable[[], HttpResponse | None]] = {
    "/": lambda: _file(WEB_DIR / "index.html"),
    "/index.html": lambda: _file(WEB_DIR / "index.html"),
    "/operator": lambda: _file(WEB_DIR / "operator.html"),
    **{path: partial(_swagger_asset, name) for path, name in _SWAGGER_ASSETS.items()},
}


class Pages:
    """Serves the local pages; `handle` returns None for a path that is not one of them."""

    def __init__(self, template: Template) -> None:
        self._template = template
        self._generated: dict[str, Any] | None = None

    def handle(self, request: HttpRequest) -> HttpResponse | None:
        if request.path == TOKEN_PATH:
            return self._token(request)
        if request.method not in ("GET", "HEAD"):
            return None
        # /docs?format=json: where Powertools' Swagger page (below) links the document, as its own resolver serves it
        if request.path == "/openapi.json" or (request.path == "/docs" and request.query == "format=json"):
            return json_response(200, self._document(request), [_NO_CACHE])
        if request.path == "/docs":
            from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

            html = generate_swagger_html(
                json.dumps(self._document(request)),
                swagger_js="/docs/swagger-ui.js",
                swagger_css="/docs/swagger-ui.css",
                swagger_base_url="/docs",  # the assets above, served offline
                oauth2_config=None,
                persist_authorization=True,
            )
            html = html.replace("<body>", "<body>" + _LOCAL_HINT, 1)
            return HttpResponse(200, [("Content-Type", "text/html; charset=utf-8"), _NO_CACHE], html.encode())
        if request.path.startswith("/web/"):
            return _file(WEB_DIR / request.path.removeprefix("/web/"), root=WEB_DIR)
        page = _PAGES.get(request.path)
        return page() if page is not None else None

    def _document(self, request: HttpRequest) -> dict[str, Any]:
        """The OpenAPI document, with this server first in its `servers`."""
        if self._generated is None:
            # In a child process: generating imports every handler and the ticketline package, whose settings
            # and Powertools objects must be made inside a function's environment (lambda_host.py), not here.
            command = [
                sys.executable,
                "-m",
                "devserver.openapi",
                "--output",
                "-",
                "--template",
                str(self._template.path),
            ]
            result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, timeout=120, check=False)
            if result.returncode != 0:
                logger.error("cannot generate the OpenAPI document, serving docs/openapi.json:\n%s", result.stderr)
                return dict(json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_bytes()))
            self._generated = json.loads(result.stdout)
        document = dict(self._generated)
        origin = f"http://{request.header('Host') or '127.0.0.1'}"
        local = {"url": origin, "description": "This local server"}
        document["servers"] = [local, *[s for s in document.get("servers", []) if "127.0.0.1" not in s["url"]]]
        return document

    def _token(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return error_response(405, "METHOD_NOT_ALLOWED", "Use POST.")
        # Only the demo page (this server's own origin) or a tool without a browser may mint: another web page
        # the developer visits sends its own Origin. No CORS headers are ever sent, so no preflight passes.
        origin = request.header("Origin")
        if origin is not None and origin != f"http://{request.header('Host')}":
            return error_response(403, "FORBIDDEN", f"Tokens are minted for this server's own pages, not {origin}.")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return error_response(400, "VALIDATION_ERROR", "body: is not valid JSON")
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not _USER_PATTERN.match(user):
            return error_response(400, "VALIDATION_ERROR", "user: 1..64 letters, digits or _ . @ -")
        admin = bool(body.get("admin", False))
        return json_response(200, {"token": mint_token(user, admin=admin), "user": user, "admin": admin})


def _file(path: Path, root: Path | None = None) -> HttpResponse | None:
    resolved = path.resolve()
    if root is not None and not resolved.is_relative_to(root.resolve()):
        return None
    if not resolved.is_file():
        return None
    content_type = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
        content_type += "; charset=utf-8"
    return HttpResponse(200, [("Content-Type", content_type), _NO_CACHE], resolved.read_bytes())
