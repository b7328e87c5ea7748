"""The API's one OpenAPI 3 document, generated from the functions' own Powertools resolvers.

`python -m devserver.openapi` (`make openapi`) writes docs/openapi.json; `--check` fails when that file is
stale. The local server serves the same document at GET /openapi.json, and Swagger UI at GET /docs.

Nothing here names a route: the functions come from template.yaml (every function with an Api event), each
one's `app` resolver gives its operations (Powertools' OpenAPIMerge merges them), and the template says which
routes need the Cognito JWT. What the resolvers cannot say is read from the route functions themselves:
- headers read by hand (`queue_token_from_headers`, any `*_HEADER` constant such as IDEMPOTENCY_KEY_HEADER)
  become documented header parameters;
- a body validated by hand (`SomeModel.model_validate_json(...)`, e.g. to refuse non-admins before parsing)
  becomes the operation's requestBody;
- Powertools' 422 becomes API.md's error shape, with the 4xx (and 429/503) responses the route can give: the
  codes its description names, and those its auth, headers and parameters imply.
"""

from __future__ import annotations

import argparse
import dis
import inspect
import json
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from devserver import DEFAULT_TEMPLATE, PROJECT_ROOT
from devserver.lambda_host import load_module, temporary_environment
from devserver.template import ApiRoute, FunctionSpec, Template, load_template

DOCUMENT_PATH = PROJECT_ROOT / "docs" / "openapi.json"
SECURITY_SCHEME = "CognitoJWT"
ERROR_SCHEMA = "Error"
EXAMPLE_ID = "01JD4Y7Z0K3M5Q8R2T6V9W1X3Y"
_COMPONENT_REF = "#/components/schemas/{model}"
_DESCRIPTION = """\
A fair virtual waiting room in front of a seat-booking and payment API.

**Flow**: join a concert's queue (`POST /concerts/{concertId}/queue/tokens`), poll your position after
`retryAfterSeconds` until your token is `ACTIVE`, then list dates and free seats, hold a seat, top up the
wallet and pay, each with your token in `X-Queue-Token`.

**Identity**: `Authorization: Bearer <JWT>`. On AWS a Cognito user pool ID token (`sub` is the user id, the
group `admin` marks an operator); locally an HS256 token from `make token` (or the demo page).

**Errors**: every error is `{"error": {"code", "message", "details": [{"field", "message"}]}}`; each operation
lists the codes it can answer. 429 and 503 carry `Retry-After`.

**Money** is an integer amount in won; times are ISO-8601 UTC; ids are opaque strings.
"""

# Headers a route may read by hand, as the API documents them.
KNOWN_HEADERS: dict[str, dict[str, Any]] = {
    "X-Queue-Token": {
        "description": "Your queue token for this concert (from POST /concerts/{concertId}/queue/tokens). "
        "Bound to one user and one concert.",
        "schema": {"type": "string", "minLength": 1, "examples": ["q1Yk2mZ0c2VyLWFsaWNl"]},
    },
    "Idempotency-Key": {
        "description": "A key you choose per intended operation (a UUID). A retry with the same key and body "
        "returns the first answer and acts once; the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "pattern": "^[\\x20-\\x7e]+$",
            "examples": ["8d0c7a52-4a8e-4f43-9d1e"],
        },
    },
}
_QUEUE_TOKEN_CODES = ("QUEUE_TOKEN_INVALID", "QUEUE_TOKEN_EXPIRED")
_IDEMPOTENCY_CODES = ("IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_IN_PROGRESS")
_BODY_CODES = ("UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE")
_HEADER_CONSTANT = re.compile(r"^[A-Z0-9_]*_HEADER$")


# ---------- the document ----------
def build_document(template: Template | None = None) -> dict[str, Any]:
    """The merged, post-processed OpenAPI document of every API function of the template."""
    template = template or load_template(DEFAULT_TEMPLATE)
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(
        title="Ticketline API",
        version=_project_version(),
        description=_DESCRIPTION,
        servers=_servers(template),  # plain dicts: the merge writes them as given
        security_schemes={SECURITY_SCHEME: _security_scheme()},
        on_conflict="error",
    )
    route_functions: dict[tuple[str, str], Callable[..., Any]] = {}
    for function in template.functions:
        if not function.routes:
            continue
        resolver = _load_resolver(function)
        merge.add_schema(resolver.get_openapi_schema())
        for route in [*resolver._static_routes, *resolver._dynamic_routes]:
            route_functions[(route.openapi_path, route.method.lower())] = route.func
    document: dict[str, Any] = json.loads(merge.get_openapi_json_schema())  # validated, plain JSON types
    _post_process(document, template.routes, route_functions)
    return document


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _project_version() -> str:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def _servers(template: Template) -> list[dict[str, Any]]:
    stage = template.parameters.get("StageName", "v1")
    return [
        {"url": "http://127.0.0.1:3000", "description": "Local server (make run)"},
        {
            "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
            "description": "AWS: the stack's ApiUrl output",
            "variables": {
                "restApiId": {"default": "abcdef1234", "description": "The REST API id (stack output ApiUrl)"},
                "region": {"default": "us-east-1"},
                "stage": {"default": stage, "description": "The StageName parameter"},
            },
        },
    ]


def _security_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Cognito user pool ID token on AWS (API Gateway's Cognito authorizer checks it; `sub` is "
        'the user id, group `admin` marks an operator). Locally an HS256 token: `make token ARGS="--user alice"` '
        "or the demo page's sign-in.",
    }


def _load_resolver(function: FunctionSpec) -> Any:
    """The function's `app` resolver, from its handler file, with its layers importable as on Lambda."""
    with temporary_environment(function.environment):  # its services read their validated settings on import
        module = load_module(f"_openapi_function_{function.logical_id}", function.handler_file, function.layer_dirs)
    resolver = getattr(module, "app", None)
    if resolver is None or not hasattr(resolver, "get_openapi_schema"):
        raise AttributeError(f"{function.handler_file} has no Powertools resolver named `app`")
    return resolver


# ---------- post-processing ----------
def _post_process(
    document: dict[str, Any], routes: Iterable[ApiRoute], route_functions: Mapping[tuple[str, str], Callable[..., Any]]
) -> None:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_error_schemas())
    authorizers = {(route.path, route.method.lower()): route.authorizer for route in routes}
    registry = error_registry()
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            func = route_functions.get((path, method))
            reads = _route_reads(func) if func is not None else _RouteReads(set(), [])
            _document_headers(operation, reads.headers)
            _document_hand_validated_body(operation, reads.models, schemas)
            _add_parameter_examples(operation)
            authorized = authorizers.get((path, method)) is not None
            operation["security"] = [{SECURITY_SCHEME: []}] if authorized else []
            _document_errors(operation, authorized, registry, func)
    # Powertools' own validation shapes, unused once its 422 is gone (ours is the Error schema).
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        others = {name: schema for name, schema in schemas.items() if name != unused}
        if f'"#/components/schemas/{unused}"' not in json.dumps([document.get("paths", {}), others]):
            schemas.pop(unused, None)
    document["components"]["schemas"] = dict(sorted(schemas.items()))


def _error_schemas() -> dict[str, Any]:
    from pydantic import BaseModel, ConfigDict, Field
    from pydantic.json_schema import models_json_schema

    class ErrorDetail(BaseModel):
        field: str = Field(examples=["amount"], description="The request field, e.g. `body`, `seatNumber`.")
        message: str = Field(examples=["Input should be greater than or equal to 1"])

    class ErrorInfo(BaseModel):
        code: str = Field(examples=["SEAT_UNAVAILABLE"], description="UPPER_SNAKE; the contract (API.md).")
        message: str = Field(examples=["The seat is already held or sold."], description="For humans.")
        details: list[ErrorDetail] = Field(description="The bad fields of a VALIDATION_ERROR; empty otherwise.")

    class Error(BaseModel):
        """Every error the API answers (API.md)."""

        model_config = ConfigDict(
            json_schema_extra={
                "examples": [
                    {
                        "error": {
                            "code": "VALIDATION_ERROR",
                            "message": "amount: Input should be greater than or equal to 1",
                            "details": [{"field": "amount", "message": "Input should be greater than or equal to 1"}],
                        }
                    }
                ]
            }
        )
        error: ErrorInfo

    _, definitions = models_json_schema([(Error, "validation")], ref_template=_COMPONENT_REF)
    return dict(definitions["$defs"])


class _RouteReads:
    def __init__(self, headers: set[str], models: list[Any]) -> None:
        self.headers = headers
        self.models = models


def _route_reads(func: Callable[..., Any]) -> _RouteReads:
    """Headers (by their *_HEADER constants) and pydantic models (validated by hand) a route function uses,
    directly or through plain functions it calls (its module's helpers, ticketline.auth and the like)."""
    from pydantic import BaseModel

    headers: set[str] = set()
    models: list[Any] = []
    seen: set[int] = set()

    def visit(function: types.FunctionType, depth: int) -> None:
        if id(function) in seen:
            return
        seen.add(id(function))
        for code, name, following in _global_loads(function.__code__):
            value = function.__globals__.get(name)
            if isinstance(value, str) and _HEADER_CONSTANT.match(name):
                headers.add(value)
            elif isinstance(value, type) and issubclass(value, BaseModel) and following.startswith("model_validate"):
                if value not in models:
                    models.append(value)
            elif isinstance(value, types.FunctionType) and depth > 0 and _is_project_code(value):
                visit(value, depth - 1)
            del code

    if isinstance(func, types.FunctionType):
        visit(func, depth=2)
    return _RouteReads(headers, models)


def _global_loads(code: types.CodeType) -> Iterable[tuple[types.CodeType, str, str]]:
    """(code, global name, the attribute read right after it) for every global a function (and its nested
    functions) reads."""
    instructions = list(dis.get_instructions(code))
    for index, instruction in enumerate(instructions):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            following = ""
            if index + 1 < len(instructions) and instructions[index + 1].opname in ("LOAD_ATTR", "LOAD_METHOD"):
                following = str(instructions[index + 1].argval)
            yield code, str(instruction.argval), following
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _global_loads(constant)


def _is_project_code(function: types.FunctionType) -> bool:
    module = function.__module__ or ""
    return module.startswith(("ticketline", "_openapi_function_")) or module == "__main__"


def _document_headers(operation: dict[str, Any], headers: Iterable[str]) -> None:
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    canonical = {name.lower(): name for name in KNOWN_HEADERS}
    for parameter in parameters:  # Powertools lower-cases Header(alias=...) names: show them as clients send them
        if parameter.get("in") == "header" and parameter["name"].lower() in canonical:
            known = KNOWN_HEADERS[canonical[parameter["name"].lower()]]
            parameter["name"] = canonical[parameter["name"].lower()]
            parameter.setdefault("description", known["description"])
            schema = parameter.setdefault("schema", {})
            for key, value in known["schema"].items():  # Powertools leaves out a Header's pattern
                schema.setdefault(key, value)
    declared = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    for name in sorted(headers):
        if name.lower() in declared:
            continue
        known = KNOWN_HEADERS.get(name, {"description": f"The {name} header.", "schema": {"type": "string"}})
        parameters.append({"name": name, "in": "header", "required": True, **known})
    if not parameters:
        operation.pop("parameters")


def _document_hand_validated_body(operation: dict[str, Any], models: list[Any], schemas: dict[str, Any]) -> None:
    if "requestBody" in operation or not models:
        return
    from pydantic.json_schema import models_json_schema

    model = models[0]
    references, definitions = models_json_schema([(model, "validation")], ref_template=_COMPONENT_REF)
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": references[(model, "validation")]}},
    }


def _add_parameter_examples(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        schema = parameter.setdefault("schema", {})
        if "example" in parameter or "examples" in schema or "examples" in parameter:
            continue
        if parameter["name"].endswith("Id") and schema.get("type") == "string":
            schema["examples"] = [EXAMPLE_ID]


# ---------- errors ----------
def error_registry() -> dict[str, tuple[int, str]]:
    """Every error code of the domain: code -> (HTTP status, default message), from ticketline.errors."""
    from ticketline.errors import DomainError

    registry: dict[str, tuple[int, str]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        registry.setdefault(cls.code, (cls.status, cls.default_message))
    registry.pop("BAD_REQUEST", None)
    registry.pop("CONFLICT", None)
    return registry


def _document_errors(
    operation: dict[str, Any],
    authorized: bool,
    registry: Mapping[str, tuple[int, str]],
    func: Callable[..., Any] | None,
) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # Powertools' validation shape; ours is a 400 (API.md)
    description = " ".join(str(operation.get(key, "")) for key in ("summary", "description"))
    header_names = {p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"}
    # What the route's code can raise, what its description names, and what the gateway and the layer add.
    codes: set[str] = reachable_error_codes(func) if func is not None else set()
    codes |= {code for code in registry if re.search(rf"\b{code}\b", description)}
    if operation.get("parameters") or operation.get("requestBody"):
        codes.add("VALIDATION_ERROR")
    if operation.get("requestBody"):
        codes.update(_BODY_CODES)  # ticketline.api.json_object_body: what every body is
    if authorized:
        codes |= {"UNAUTHENTICATED", "SERVICE_UNAVAILABLE"}  # the authorizer; DynamoDB unavailable (api.py)
    if "x-queue-token" in header_names:
        codes.update(_QUEUE_TOKEN_CODES)
    if "idempotency-key" in header_names:
        codes.update(_IDEMPOTENCY_CODES)
    codes.add("THROTTLED")  # API Gateway's throttling, or DynamoDB's once retries are spent
    grouped: dict[int, list[str]] = {}
    for code in sorted(codes):
        if code in registry:
            grouped.setdefault(registry[code][0], []).append(code)
    for status in sorted(grouped):
        responses[str(status)] = _error_response(status, grouped[status], registry)
    operation["responses"] = dict(sorted(responses.items()))


_UNKNOWN = object()
_MAX_CALL_DEPTH = 8


def reachable_error_codes(func: Callable[..., Any]) -> set[str]:
    """The codes of the DomainErrors that code reachable from `func` names: a walk over the globals, `self.x`
    attributes and methods it reads, through project code only (ticketline and the handler modules).
    An over-approximation by design: an error named is an error the route may answer."""
    from ticketline.errors import DomainError

    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    methods = _project_methods()

    def note(value: Any, depth: int) -> None:
        # A decorated function or method (tracer.capture_method): follow the body it wraps.
        if isinstance(value, types.MethodType) and hasattr(value.__func__, "__wrapped__"):
            value = types.MethodType(inspect.unwrap(value.__func__), value.__self__)
        elif isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__"):
            value = inspect.unwrap(value)
        if isinstance(value, type) and issubclass(value, DomainError):
            found.add(value.code)
        elif isinstance(value, types.FunctionType) and _is_project_code(value):
            visit(value, None, depth - 1)
        elif isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType):
            if _is_project_code(value.__func__):
                visit(value.__func__, value.__self__, depth - 1)
        elif isinstance(value, dict | tuple | list | frozenset | set):
            items = value.values() if isinstance(value, dict) else value
            for item in items:
                if isinstance(item, type) and issubclass(item, DomainError):
                    found.add(item.code)

    def attribute(owner: Any, name: str) -> Any:
        try:
            value = inspect.getattr_static(owner, name)
        except AttributeError:
            return _UNKNOWN
        if isinstance(value, staticmethod | classmethod):
            return value.__get__(None, owner if isinstance(owner, type) else type(owner))
        if isinstance(value, property):
            return types.MethodType(value.fget, owner) if value.fget is not None else _UNKNOWN
        if isinstance(value, types.FunctionType) and not isinstance(owner, type):
            return types.MethodType(value, owner)
        return value

    def visit(function: types.FunctionType, self_object: Any, depth: int) -> None:
        key = (id(function), id(self_object))
        if depth < 0 or key in seen:
            return
        seen.add(key)
        for code in _code_objects(function.__code__):
            current: Any = _UNKNOWN
            for instruction in dis.get_instructions(code):
                name = str(instruction.argval)
                if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    current = function.__globals__.get(name, _UNKNOWN)
                elif instruction.opname in ("LOAD_FAST", "LOAD_DEREF") and name in ("self", "cls"):
                    current = self_object if self_object is not None else _UNKNOWN
                elif instruction.opname in ("LOAD_ATTR", "LOAD_METHOD") and current is not _UNKNOWN:
                    current = attribute(current, name)
                elif instruction.opname in ("LOAD_ATTR", "LOAD_METHOD") and depth == _MAX_CALL_DEPTH:
                    # In the route function, a method of an object we cannot follow (a call's result, like
                    # caller_from_event(...).require_admin()): a name that only one project class defines.
                    candidates = methods.get(name, [])
                    if len(candidates) == 1:
                        visit(candidates[0], None, depth - 1)
                else:
                    current = _UNKNOWN
                if current is not _UNKNOWN:
                    note(current, depth)

    if isinstance(func, types.FunctionType):
        visit(func, None, _MAX_CALL_DEPTH)
    return found


def _project_methods() -> dict[str, list[types.FunctionType]]:
    """Method name -> the functions of that name defined by classes of the loaded ticketline modules."""
    index: dict[str, list[types.FunctionType]] = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("ticketline"):
            continue
        for cls in vars(module).values():
            if not isinstance(cls, type) or cls.__module__ != module_name:
                continue
            for method_name, value in vars(cls).items():
                function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
                if isinstance(function, types.FunctionType):
                    index.setdefault(method_name, []).append(function)
    return index


def _code_objects(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _error_response(status: int, codes: list[str], registry: Mapping[str, tuple[int, str]]) -> dict[str, Any]:
    examples = {}
    for code in codes:
        message = registry[code][1]
        details: list[dict[str, str]] = []
        if code == "VALIDATION_ERROR":
            details = [{"field": "body", "message": "is not valid JSON"}]
            message = "body: is not valid JSON"
        examples[code] = {
            "summary": message,
            "value": {"error": {"code": code, "message": message, "details": details}},
        }
    response: dict[str, Any] = {
        "description": " ".join(f"`{code}`: {registry[code][1]}" for code in codes),
        "content": {
            "application/json": {"schema": {"$ref": _COMPONENT_REF.format(model=ERROR_SCHEMA)}, "examples": examples}
        },
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        }
    return response


# ---------- command line ----------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devserver.openapi", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default=str(DOCUMENT_PATH), help="where to write (default docs/openapi.json; - for stdout)"
    )
    parser.add_argument("--check", action="store_true", help="fail if the file differs from the generated document")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    arguments = parser.parse_args(argv)
    text = render(build_document(load_template(arguments.template)))
    if arguments.output == "-":
        sys.stdout.write(text)
        return
    output = Path(arguments.output)
    if arguments.check:
        if not output.exists() or output.read_text() != text:
            raise SystemExit(f"{output} is stale: run `make openapi` and commit it")
        print(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    paths = json.loads(text)["paths"]
    print(f"wrote {output}: {sum(len(item) for item in paths.values())} operations")


if __name__ == "__main__":
    main()
