"""The OpenAPI document (devserver/openapi.py): committed up to date, complete, and in API.md's terms."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devserver.openapi import DOCUMENT_PATH, ERROR_SCHEMA, SECURITY_SCHEME, build_document, main, render
from devserver.template import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")


def error_registry() -> dict[str, tuple[int, str]]:
    """Every error code of the domain: code -> (HTTP status, default message), from ticketline.errors."""
    from ticketline.errors import Conflict, DomainError

    registry: dict[str, tuple[int, str]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls not in (DomainError, Conflict):  # the bases, never answered as such
            registry.setdefault(cls.code, (cls.status, cls.default_message))
    return registry


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(TEMPLATE)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def test_the_committed_document_is_current(document: dict[str, Any]) -> None:
    committed = DOCUMENT_PATH.read_text() if DOCUMENT_PATH.exists() else ""
    assert committed == render(document), "docs/openapi.json is stale: run `make openapi` and commit it"


@pytest.mark.slow  # runs `python -m devserver.openapi --check` in a new interpreter
def test_check_mode_fails_on_a_stale_file(tmp_path, document: dict[str, Any]) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text(render(document).replace("Ticketline API", "Old API"))
    with pytest.raises(SystemExit, match="stale"):
        main(["--check", "--output", str(stale)])


def test_every_route_of_the_template_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    routes = {(route.path, route.method.lower()) for route in TEMPLATE.routes}
    documented = {(path, method) for path, method, _ in operations(document)}
    assert documented == routes


def test_info_servers_and_the_bearer_scheme(document: dict[str, Any]) -> None:
    assert document["info"]["title"] and document["info"]["version"] and document["info"]["description"]
    assert any("execute-api" in server["url"] for server in document["servers"])
    scheme = document["components"]["securitySchemes"][SECURITY_SCHEME]
    assert scheme == scheme | {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def test_security_follows_the_template_authorizers(document: dict[str, Any]) -> None:
    for route in TEMPLATE.routes:
        operation = document["paths"][route.path][route.method.lower()]
        expected = [{SECURITY_SCHEME: []}] if route.authorizer else []
        assert operation["security"] == expected, (route.method, route.path)
        if route.authorizer:
            assert "UNAUTHENTICATED" in operation["responses"]["401"]["content"]["application/json"]["examples"]


def test_errors_are_documented_in_the_api_shape(document: dict[str, Any]) -> None:
    registry = error_registry()
    for path, method, operation in operations(document):
        assert "422" not in operation["responses"], (method, path)
        errors = {status: r for status, r in operation["responses"].items() if int(status) >= 400}
        assert "429" in errors, (method, path)
        for status, response in errors.items():
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
            for code, example in content["examples"].items():
                assert registry[code][0] == int(status), (method, path, code)
                assert example["value"]["error"]["code"] == code


def test_the_headers_read_by_hand_are_documented_where_used(document: dict[str, Any]) -> None:
    seen: dict[str, int] = {"X-Queue-Token": 0, "Idempotency-Key": 0}
    for path, method, operation in operations(document):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        for name in seen.keys() & headers.keys():
            seen[name] += 1
            assert headers[name]["required"] and headers[name]["description"], (method, path, name)
        if "X-Queue-Token" in headers:
            assert "QUEUE_TOKEN_INVALID" in operation["responses"]["401"]["content"]["application/json"]["examples"]
    assert seen["X-Queue-Token"] >= 1
    served = {route.path for route in TEMPLATE.routes}
    if "/payments" in served or "/wallet/charges" in served:
        assert seen["Idempotency-Key"] >= 1


def test_every_request_has_a_body_schema_when_it_takes_one(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        takes_none = path.endswith(("/tokens", "/cancellation"))  # a join and a cancellation: the path says it all
        if method == "post" and "{" not in path.rsplit("/", 1)[-1] and not takes_none:
            assert "requestBody" in operation, (method, path)


def _has_examples(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> bool:
    """Examples on the schema itself, or on every part of it (fields, items, variants, a referenced model)."""
    if depth > 5 or schema.get("type") == "null" or {"examples", "example", "enum", "const"} & schema.keys():
        return True
    if "$ref" in schema:
        parts = [schemas[schema["$ref"].rsplit("/", 1)[-1]]]
    elif "anyOf" in schema or "oneOf" in schema:
        parts = schema.get("anyOf", schema.get("oneOf", []))
    elif schema.get("type") == "array":
        parts = [schema.get("items", {})]
    elif "properties" in schema:
        parts = list(schema["properties"].values())
    else:
        return False
    return all(_has_examples(part, schemas, depth + 1) for part in parts)


def test_every_schema_has_examples(document: dict[str, Any]) -> None:
    """Swagger UI shows real-looking requests and answers: each model has examples (model-level or on
    every field); see CONTRIBUTING.md."""
    schemas = document["components"]["schemas"]
    missing = [name for name, schema in schemas.items() if not _has_examples(schema, schemas)]
    assert not missing, f"add examples (Field(examples=...) or json_schema_extra) to: {missing}"


def test_the_document_is_valid_json_schema_for_openapi(document: dict[str, Any]) -> None:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

    OpenAPI(**json.loads(render(document)))


# ---------- the document against API.md, route by route ----------
API_MD = ROOT / "docs" / "API.md"  # the contract as this code implements it
SHARED_API_MD = ROOT.parent / "shared" / "API.md"  # the team's copy, next to the repository on our machines
_ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)[^`]*` — ")


_TABLE_ROW = re.compile(r"^\| *(\d{3}) *\|(.*)\|$")
_CODE = re.compile(r"`([A-Z][A-Z_]+)`")
# Sentences where what is served is narrower than the team's contract (its v2 parts add fields or values):
# each converges to the contract's wording when the issue named lands.
_NARROWER_THAN_CONTRACT = {
    # What the contract's "still in flight" means now that the record is in the effect's transaction (#14 item 3):
    # to be added to ../shared/API.md.
    "Charges, payments and cancellations keep their key's record in the same transaction as their effect, so a "
    "duplicate sent while the first is still in flight gets the first answer once it commits (or 429 with "
    "`Retry-After` while it cannot tell), never 409 `IDEMPOTENCY_IN_PROGRESS`.": "#14 item 3, for the contract",
}


def _normalized(text: str) -> str:
    # "*(v2)*" marks what is new; "*(v2: required)*" reads "(required)" once built.
    text = re.sub(r"\*\(v2: ([^)]*)\)\*", r"(\1)", text.replace("*(v2)*", ""))
    return re.sub(r"\s+", " ", text).replace(" ,", ",").strip()


def api_md_parts(text: str) -> tuple[list[str], dict[str, set[str]]]:
    """Its prose as sentences, and its error table as status -> the codes that row names."""
    sentences: list[str] = []
    table: dict[str, set[str]] = {}
    for block in re.split(r"\n\s*\n", text):
        prose = []
        for line in block.strip().splitlines():
            if row := _TABLE_ROW.match(line.strip()):
                table.setdefault(row.group(1), set()).update(_CODE.findall(row.group(2)))
            elif not line.startswith("|"):
                prose.append(line)
        sentences += [s for s in re.split(r"(?<=[.;:])\s+", _normalized("\n".join(prose))) if s]
    return sentences, table


@pytest.mark.skipif(not SHARED_API_MD.exists(), reason="no ../shared next to this clone (CI): nothing to compare")
def test_the_committed_api_md_is_part_of_the_teams_contract() -> None:
    ours, our_table = api_md_parts(API_MD.read_text())
    _, their_table = api_md_parts(SHARED_API_MD.read_text())
    contract = _normalized(SHARED_API_MD.read_text())
    outside = [s for s in ours if s.rstrip(".;:") not in contract and s not in _NARROWER_THAN_CONTRACT]
    assert not outside, f"docs/API.md says what ../shared/API.md does not: {outside}"
    for status, codes in our_table.items():
        assert codes <= their_table.get(status, set()), (status, sorted(codes - their_table.get(status, set())))
    stale = [s for s in _NARROWER_THAN_CONTRACT if s not in ours]
    assert not stale, f"converged to the contract: drop from _NARROWER_THAN_CONTRACT: {stale}"


def test_every_route_api_md_promises_is_served_and_every_code_it_names_exists() -> None:
    served = {(route.path, route.method.lower()) for route in TEMPLATE.routes}
    promised = set(api_md_routes()) - {("/openapi.json", "get")}  # served by the docs page, not a function
    assert promised <= served, f"docs/API.md promises routes nobody serves: {sorted(promised - served)}"
    _, table = api_md_parts(API_MD.read_text())
    registry = error_registry()
    for status, codes in table.items():
        for code in codes:
            assert code in registry and str(registry[code][0]) == status, (status, code)


# Words of a route's paragraph in API.md -> the error codes the route must document.
_IMPLIED_CODES = {
    "JWT": ("UNAUTHENTICATED",),
    "admin JWT": ("FORBIDDEN",),
    "queue token": ("QUEUE_TOKEN_INVALID", "QUEUE_TOKEN_EXPIRED"),
    # As the auth a route asks ("user JWT + ACTIVE token"), not "the live ACTIVE tokens" of the operator's routes.
    "+ ACTIVE token": ("QUEUE_TOKEN_INVALID", "QUEUE_TOKEN_EXPIRED", "QUEUE_TOKEN_NOT_ACTIVE"),
    "Idempotency-Key": ("IDEMPOTENCY_KEY_REUSED",),
    "Body": ("VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"),  # API.md "Requests"
}


def api_md_routes() -> dict[tuple[str, str], str]:
    """(path, method) -> the paragraph API.md writes about that route."""
    text = API_MD.read_text()
    matches = list(_ROUTE.finditer(text))
    routes = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        routes[(match.group(2), match.group(1).lower())] = text[match.end() : end].split("\n\n")[0]
    return routes


def documented_codes(operation: dict[str, Any]) -> dict[str, set[str]]:
    return {
        status: set(response["content"]["application/json"]["examples"])
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }


def test_no_422_anywhere_and_validation_errors_are_400_in_the_api_shape(document: dict[str, Any]) -> None:
    text = render(document)
    assert '"422"' not in text and "HTTPValidationError" not in text
    for path, method, operation in operations(document):
        takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
        codes = documented_codes(operation)
        assert ("VALIDATION_ERROR" in codes.get("400", set())) == takes_input, (method, path)
        if takes_input:
            example = operation["responses"]["400"]["content"]["application/json"]["examples"]["VALIDATION_ERROR"]
            error = example["value"]["error"]
            assert error["code"] == "VALIDATION_ERROR" and error["details"] and error["message"], (method, path)


def test_every_route_documents_the_errors_api_md_gives_it(document: dict[str, Any]) -> None:
    routes = api_md_routes()
    registry = error_registry()
    served = {(route.path, route.method.lower()) for route in TEMPLATE.routes}
    assert served <= routes.keys(), f"routes missing from API.md: {sorted(served - routes.keys())}"
    for path, method in sorted(served):
        paragraph = routes[(path, method)]
        codes = documented_codes(document["paths"][path][method])
        everything = set().union(*codes.values())
        expected = {"THROTTLED"}
        for words, implied in _IMPLIED_CODES.items():
            if words in paragraph:
                expected.update(implied)
        if "{" in path:
            expected.add("VALIDATION_ERROR")
        assert expected <= everything, (method, path, sorted(expected - everything))
        for code in expected:
            assert code in codes[str(registry[code][0])], (method, path, code)
        # A status the paragraph names ("404 for an unknown concert", "403 otherwise") is documented too.
        for status in re.findall(r"\b(4\d\d) (?:when|for|otherwise)", paragraph):
            assert codes.get(status), (method, path, status)


def test_the_admin_body_is_documented_with_the_403_that_comes_first(document: dict[str, Any]) -> None:
    operation = document["paths"]["/admin/concerts"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ConcertIn"}
    assert operation["requestBody"]["required"] is True
    codes = documented_codes(operation)
    assert codes["403"] == {"FORBIDDEN"} and "VALIDATION_ERROR" in codes["400"]
